"""How values read to a person, shared by the shells (the page's ``web/src/lib/format.ts``
follows the same rules)."""

from __future__ import annotations

import math


def clock(seconds: float, *, decimals: int = 1) -> str:
    """``21.31`` → ``00:21.3``; ``3723`` → ``1:02:03.0``; ``599.99`` → ``10:00.0``.

    The time is rounded once, half up, to the digits shown, and only then split into
    hours, minutes and seconds, so a carry reaches the minutes (never ``9:60.0``).
    Minutes have two digits; hours appear from one hour on. Negative times read as zero,
    and a time that is not a number as ``?``.
    """
    if not math.isfinite(seconds):
        return "?"
    scale = 10**decimals
    units = _round_half_up(max(0.0, seconds) * scale)
    whole, fraction = divmod(units, scale)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{minutes:02d}:{secs:02d}" + (f".{fraction:0{decimals}d}" if decimals else "")
    return f"{hours}:{text}" if hours else text


def whole_seconds(seconds: float) -> int:
    """A time as the whole seconds :func:`clock` shows for it (``11.6`` → ``12``), for
    links that start playback there: what a link says and what is shown agree."""
    return _round_half_up(max(0.0, seconds)) if math.isfinite(seconds) else 0


def plural(n: int, word: str) -> str:
    """``1 episode``, ``2 episodes``, ``0 episodes``."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)
