"""A timeline as text a player or a video page understands: WebVTT and SRT captions
(the episode shown while its stretch plays) and YouTube-style chapter lines
(``00:00 S01E02 Title @ 10:15``)."""

from __future__ import annotations

from citywok.display import clock as display_clock
from citywok.long.timeline import Stretch, StretchStatus, Timeline
from citywok.result import Episode

#: Episodes named in an ambiguous stretch's text before "+N more".
_AMBIGUOUS_SHOWN = 3


def clock(seconds: float) -> str:
    """``mm:ss`` (``h:mm:ss`` from an hour on), to the nearest second: the one clock of
    :mod:`citywok.display`, so a timeline reads as identify and the page do."""
    return display_clock(seconds, decimals=0)


def short_label(episode: Episode) -> str:
    """``S01E02 Title`` (the show's name when season and number are unknown)."""
    if episode.season is not None and episode.episode is not None:
        code = f"S{episode.season:02d}E{episode.episode:02d}"
    elif episode.episode is not None:
        code = f"E{episode.episode:02d}"
    else:
        code = episode.show
    return f"{code} {episode.title}" if episode.title else code


def describe(stretch: Stretch) -> str:
    """What a caption or chapter says about a stretch."""
    if stretch.status is StretchStatus.UNKNOWN or stretch.match is None:
        return "Unknown"
    if stretch.status is StretchStatus.AMBIGUOUS:
        names = [short_label(m.candidate.episode) for m in stretch.matches]
        more = len(names) - _AMBIGUOUS_SHOWN
        shown = " / ".join(names[:_AMBIGUOUS_SHOWN]) + (f" / +{more} more" if more > 0 else "")
        return f"{shown} (shared) @ {clock(stretch.match.candidate.offset_s)}"
    c = stretch.match.candidate
    text = f"{short_label(c.episode)} @ {clock(c.offset_s)}"
    if abs(c.speed - 1.0) >= 0.02:
        text += f" ({c.speed:.2f}x)"
    return text


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_vtt(timeline: Timeline) -> str:
    """WebVTT cues, one per matched stretch (``unknown`` stretches show nothing)."""
    lines = ["WEBVTT", ""]
    for n, seg in enumerate(s for s in timeline.stretches
                            if s.status is not StretchStatus.UNKNOWN):
        lines += [f"segment-{n + 1}",
                  f"{_stamp(seg.start_s, '.')} --> {_stamp(seg.end_s, '.')}",
                  describe(seg), ""]
    return "\n".join(lines)


def to_srt(timeline: Timeline) -> str:
    """SubRip cues, one per matched stretch."""
    lines: list[str] = []
    for n, seg in enumerate(s for s in timeline.stretches
                            if s.status is not StretchStatus.UNKNOWN):
        lines += [str(n + 1), f"{_stamp(seg.start_s, ',')} --> {_stamp(seg.end_s, ',')}",
                  describe(seg), ""]
    return "\n".join(lines)


def to_chapters(timeline: Timeline) -> str:
    """YouTube-style chapter lines, ``00:00 S01E02 Title @ 10:15``, one per stretch.

    Chapter times are ``mm:ss`` (``h:mm:ss`` from an hour on), the first at ``00:00`` as
    YouTube requires. YouTube also wants chapters of 10 s or more and at least three of
    them; shorter stretches are still listed, for a person to merge as they see fit.
    """
    out = []
    long = timeline.duration_s >= 3600
    for seg in timeline.stretches:
        stamp = clock(seg.start_s)
        if long and stamp.count(":") == 1:  # one format through a long video's list
            stamp = f"0:{stamp}"
        out.append(f"{stamp} {describe(seg)}")
    return "\n".join(out) + ("\n" if out else "")
