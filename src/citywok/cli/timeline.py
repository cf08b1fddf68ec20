"""``citywok timeline`` and ``citywok listen``, added to the main CLI by :func:`register`.

Thin shells: parse the input, run :mod:`citywok.long.timeline` or :mod:`citywok.long.live`, print
(a table, JSON, captions or chapters; one line per live event). Errors map to exit codes
through :data:`citywok.cli.main.EXIT_CODES` only.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Generator, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from citywok import errors
from citywok.cli.common import IndexOpt, err, out, resolve_index

# The engine (NumPy, SciPy, the index) and rich's bars load when a command runs, not when
# `citywok` registers these commands.
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from citywok.long.live import LiveEvent
    from citywok.long.timeline import Timeline, TimelineEvent


def _fail(exc: errors.CityWokError) -> typer.Exit:
    # Imported when used: citywok.cli.main imports this module to register its commands.
    from citywok.cli.main import fail

    return fail(exc)


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    VTT = "vtt"
    SRT = "srt"
    CHAPTERS = "chapters"


def _run(steps: Generator[TimelineEvent, None, Timeline], *, show_bar: bool) -> Timeline:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from citywok.long.timeline import Stretch, StretchStatus
    from citywok.result import Progress as ProgressEvent

    with Progress(TextColumn("{task.description:<10}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
                  TextColumn("{task.fields[found]} segments"), console=err,
                  disable=not show_bar) as bar:
        task = bar.add_task("timeline", total=None, found=0)
        found = 0
        while True:
            try:
                event = next(steps)
            except StopIteration as stop:
                result: Timeline = stop.value
                return result
            if isinstance(event, Stretch):
                found += event.status is not StretchStatus.UNKNOWN
                bar.update(task, found=found)
            elif isinstance(event, ProgressEvent):
                bar.update(task, completed=event.done, total=event.total)


def _table(name: str, tl: Timeline) -> None:
    from rich.table import Table
    from rich.text import Text

    from citywok.long.captions import clock, describe, short_label
    from citywok.long.timeline import StretchStatus

    matched = sum(s.duration_s for s in tl.stretches if s.status is not StretchStatus.UNKNOWN)
    elapsed_s = max(tl.elapsed_ms / 1000, 1e-9)
    shows = sorted({m.candidate.episode.show for s in tl.stretches for m in s.matches})
    out.print(f"{name}: {clock(tl.duration_s)}, {len(tl.stretches)} segments, "
              f"{matched / max(tl.duration_s, 1e-9):.0%} from "
              f"{', '.join(shows) or 'the library'} ({elapsed_s:.1f} s, "
              f"{tl.duration_s / elapsed_s:.0f}x real time)")
    table = Table("from", "to", "status", "episode", "at", "speed", "sure")
    for s in tl.stretches:
        m = s.match
        if m is None:
            table.add_row(clock(s.start_s), clock(s.end_s), s.status.value, "", "", "", "")
            continue
        c = m.candidate
        episode = (short_label(c.episode) if s.status is StretchStatus.MATCH
                   else describe(s).rsplit(" @ ", 1)[0])
        # Cells of a table are parsed as markup whatever the console: user text goes in
        # as Text.
        table.add_row(clock(s.start_s), clock(s.end_s), s.status.value, Text(episode),
                      f"{clock(c.offset_s)}-{clock(m.end_offset_s)}", f"{c.speed:.2f}x",
                      f"{c.confidence:.2f}")
    out.print(table)


def timeline(
    source: Annotated[str, typer.Argument(help="A long file, or a link (http/https; needs the "
                                          "links extra).")],
    index_dir: IndexOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: 'segments' with "
                                          "start_s, end_s, status, match.")] = False,
    vtt: Annotated[bool, typer.Option("--vtt", help="WebVTT captions naming the episode.")
                   ] = False,
    srt: Annotated[bool, typer.Option("--srt", help="SRT captions naming the episode.")] = False,
    chapters: Annotated[bool, typer.Option("--chapters", help="YouTube-style chapter lines "
                                           "('00:00 S01E02 Title @ 10:15').")] = False,
    max_duration: Annotated[float | None, typer.Option(
        "--max-duration", help="Refuse inputs longer than this many seconds.",
        show_default=False)] = None,
) -> None:
    """Name every stretch of a long input (a compilation, a reaction video, a stream
    recording): which episode, where in it, at what speed; 'unknown' where none."""
    chosen = [f for f, on in ((Format.JSON, as_json), (Format.VTT, vtt), (Format.SRT, srt),
                              (Format.CHAPTERS, chapters)) if on]
    if len(chosen) > 1:
        raise typer.BadParameter("choose one of --json, --vtt, --srt, --chapters")
    fmt = chosen[0] if chosen else Format.TABLE
    from citywok.analysis.decode import media_duration_s
    from citywok.cli.main import fetch_link, is_link, link_settings, open_for_queries
    from citywok.long.captions import to_chapters, to_srt, to_vtt
    from citywok.long.timeline import timeline_file_steps

    try:
        settings = link_settings() if is_link(source) else None
        idx = open_for_queries(index_dir)
    except errors.CityWokError as exc:
        raise _fail(exc) from None
    with idx, tempfile.TemporaryDirectory(prefix="citywok-link-") as tmp:
        try:
            # A link brings a long input: the web service's timeline limits apply.
            path = (Path(source) if settings is None else
                    fetch_link(source, Path(tmp), settings,
                               limits=settings.timeline_download_limits()))
            steps = timeline_file_steps(path, idx, max_duration_s=max_duration,
                                        total_s=media_duration_s(path))
            tl = _run(steps, show_bar=err.is_terminal)
        except errors.CityWokError as exc:
            raise _fail(exc) from None
    if fmt is Format.JSON:
        print(json.dumps(tl.to_json(file=source)))
    elif fmt is Format.VTT:
        print(to_vtt(tl), end="")
    elif fmt is Format.SRT:
        print(to_srt(tl), end="")
    elif fmt is Format.CHAPTERS:
        print(to_chapters(tl), end="")
    else:
        _table(source, tl)


def _say(event: LiveEvent) -> str | None:
    """One line for a person per event (positions included, so it reads as a clock)."""
    from citywok.long.captions import clock
    from citywok.long.live import Found, Lost, Position

    at = f"[{clock(event.at_s)}]"
    if isinstance(event, Found):
        what = {"first": "found", "resume": "resumed", "seek": "seek", "episode":
                "another episode", "resolved": "it is"}[event.change.value]
        extra = (f" (or {len(event.candidates) - 1} more: shared material)"
                 if len(event.candidates) > 1 else "")
        return (f"{at} {what}: {event.match.episode.label}, now at "
                f"{clock(event.match.offset_s)}{extra}")
    if isinstance(event, Position):
        return f"{at} {event.match.episode.label}, now at {clock(event.match.offset_s)}"
    if isinstance(event, Lost):
        why = {"pause": "paused", "end": "the episode ended"}.get(event.reason.value, "lost")
        return f"{at} {why} (was at {clock(event.last.offset_s)})"
    return None


def listen(
    source: Annotated[str | None, typer.Argument(
        help="'-' to read a stream on standard input (any format ffmpeg reads); the "
        "microphone when left out.", show_default=False)] = None,
    index_dir: IndexOpt = None,
    backend: Annotated[str | None, typer.Option(
        "--backend", help="ffmpeg input format of the microphone [default: pulse on Linux, "
        "avfoundation on macOS, dshow on Windows].", show_default=False)] = None,
    device: Annotated[str | None, typer.Option(
        "--device", help="Microphone device name for that format [default: the default "
        "one].", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event.")
                       ] = False,
    seconds: Annotated[float | None, typer.Option(
        "--seconds", help="Stop after this much audio [default: until stopped or the "
        "stream ends].", show_default=False)] = None,
) -> None:
    """Keep telling which episode is playing and where it is now, following pauses, seeks
    and changes of episode, until stopped (Ctrl-C) or the stream ends."""
    from citywok.index import Index
    from citywok.long.capture import live_chunks, microphone_input, stdin_input
    from citywok.long.live import LiveTracker

    if source not in (None, "-"):
        raise typer.BadParameter("'-' (standard input) or left out (the microphone)",
                                 param_hint="SOURCE")
    args = stdin_input() if source == "-" else microphone_input(backend=backend, device=device)
    try:
        idx = Index.open(resolve_index(index_dir))
    except errors.CityWokError as exc:
        raise _fail(exc) from None
    rate = idx.params.sample_rate_hz
    tracker = LiveTracker(idx)
    if not as_json:
        err.print("listening ... (Ctrl-C to stop)")
    chunks: Iterator[npt.NDArray[np.float32]] = live_chunks(args, sample_rate_hz=rate)
    heard = 0
    try:
        with idx:
            for chunk in chunks:
                if seconds is not None and heard >= seconds * rate:
                    break
                heard += len(chunk)
                for event in tracker.feed(chunk):
                    if as_json:
                        print(json.dumps(event.to_json()), flush=True)
                    elif (line := _say(event)) is not None:
                        out.print(line)
    except KeyboardInterrupt:
        pass
    except errors.CityWokError as exc:
        raise _fail(exc) from None
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def register(app: typer.Typer) -> None:
    app.command()(timeline)
    app.command()(listen)
