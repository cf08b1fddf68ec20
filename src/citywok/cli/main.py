"""``citywok``: a thin command-line shell over the library.

Errors map to exit codes in :data:`EXIT_CODES`, the one place that does so.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, TextIO, cast

import typer

from citywok import defaults, errors
from citywok.cli.common import (
    IndexOpt,
    err,
    out,
    resolve_index,
    say,
)
from citywok.display import clock, plural
from citywok.params import MatchParams
from citywok.result import Candidate, Evidence, IdentifyResult, Status

# What a command needs is imported when it runs (the index, the pipeline, NumPy, SciPy,
# rich's bars and tables): `citywok --help` loads none of it, `identify` only its own.
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from citywok.index import Index
    from citywok.links.fetch import DownloadLimits
    from citywok.web.core.config import Settings

INCOMPLETE = "some inputs could not be read or indexed (each is named), the others were done"
#: Exit code for each error class (most specific first) and what it means; 0 is success,
#: 1 anything unexpected, 2 a command used wrongly (unknown option, no argument). The rule
#: for commands that take inputs (identify, timeline, index): 0 when every input was
#: answered or indexed; 3 when some could not be read; when none could, the code of the
#: (first) input's error, as for a command given one input; 130 and 143 when SIGINT or
#: SIGTERM stopped it (index keeps what it finished).
EXIT_CODES: tuple[tuple[type[errors.CityWokError], int, str], ...] = (
    (errors.IndexingIncompleteError, 3, INCOMPLETE),
    (errors.InputsIncompleteError, 3, INCOMPLETE),
    (errors.IndexNotFoundError, 66, "no index, episode, key or media found"),  # EX_NOINPUT
    (errors.EpisodeNotFoundError, 66, "no index, episode, key or media found"),
    (errors.KeyNotFoundError, 66, "no index, episode, key or media found"),
    (errors.NoMediaFoundError, 66, "no index, episode, key or media found"),
    (errors.IndexLockedError, 75, "another process is writing the index"),  # EX_TEMPFAIL
    (errors.IndexStoreError, 74, "the index cannot be read or written"),  # EX_IOERR
    (errors.IndexingFailedError, 65, "the input cannot be used"),  # EX_DATAERR
    (errors.MediaError, 65, "the input cannot be used"),
    (errors.LibraryError, 65, "the input cannot be used"),
    (errors.FetchError, 69, "a link, snapshot or database could not be reached"),  # EX_UNAVAILABLE
    (errors.SnapshotCorruptError, 65, "the input cannot be used"),
    (errors.SnapshotError, 69, "a link, snapshot or database could not be reached"),
    (errors.DatabaseUnavailableError, 69, "a link, snapshot or database could not be reached"),
    (errors.ConfigError, 78, "settings that cannot work"),  # EX_CONFIG
)


def _exit_codes_help() -> str:
    meanings = {0: "success", 1: "unexpected error", 2: "the command was used wrongly",
                128 + signal.SIGINT: "stopped by Ctrl-C (SIGINT)",
                128 + signal.SIGTERM: "stopped by SIGTERM"}
    for _, code, meaning in EXIT_CODES:
        meanings.setdefault(code, meaning)
    return "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in
                                      sorted(meanings.items())) + "."


app = typer.Typer(
    help="CityWok: tell which TV episode a short clip comes from, and where in it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    epilog=_exit_codes_help(),
)


def _print_version(wanted: bool) -> None:
    if wanted:
        from citywok import __version__

        print(f"citywok {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False,
) -> None:
    """CityWok: tell which TV episode a short clip comes from, and where in it."""


def exit_code_for(exc: errors.CityWokError) -> int:
    for cls, code, _ in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


def fail(exc: errors.CityWokError) -> typer.Exit:
    """Say what went wrong on stderr; the Exit to raise, with the code from
    :data:`EXIT_CODES` (every command, those of the other CLI modules too, fails here)."""
    say(err, ("error:", "red"), f" {exc.message}")
    return typer.Exit(exit_code_for(exc))


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[list[int]]:
    """While inside, SIGINT and SIGTERM raise KeyboardInterrupt (once: a second signal
    waits for the first to be handled, so the commit that follows is not cut); the
    signal received is appended to the list yielded. A signal ignored when the command
    started (a background job's SIGINT) stays ignored."""
    got: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        if not got:
            got.append(signum)
            raise KeyboardInterrupt

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, stop)
    try:
        yield got
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _remove_index(where: Path) -> None:
    """Remove an index this run created, and the folder it made for it."""
    from citywok.store.local import LOCK_NAME, SEGMENT_DIR, discard_index

    discard_index(where)
    for leftover in (where / LOCK_NAME, where / SEGMENT_DIR):
        with contextlib.suppress(OSError):
            leftover.rmdir() if leftover.is_dir() else leftover.unlink()
    with contextlib.suppress(OSError):
        where.rmdir()  # only when nothing else is in it


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders of episodes.")],
    index_dir: IndexOpt = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1,
                                         help="Files fingerprinted in parallel.")] = 1,
    sidecar: Annotated[Path | None, typer.Option(
        "--metadata", help="CSV with file,show,season,episode,title (default: citywok.csv "
        "in each folder).", exists=True, dir_okay=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    dask: Annotated[str | None, typer.Option(
        "--dask", help="Fingerprint on a Dask cluster: tcp://scheduler:8786, or local:N for "
        "N worker processes here (needs the dask extra).", show_default=False)] = None,
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="Discard the index at --index first (one built by another "
        "CityWok version, or damaged) and build it anew.")] = False,
) -> None:
    """Add episodes to the index; files already indexed and unchanged are skipped, and
    episodes stored shorter than their file are done again.

    Files that are not media are left out and named. The exit code tells whether every
    media file was indexed, some were, or none (see the list in 'citywok --help'). Ctrl-C
    or SIGTERM stops it, keeping what it finished; run it again to finish.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from citywok.index import Index
    from citywok.ingest.library import scan_library
    from citywok.pipeline import drive, index_paths
    from citywok.store.local import CATALOG_NAME, discard_index

    # A path that does not exist is an input that cannot be read, as for identify.
    missing = tuple((str(p), "no such file or folder") for p in paths if not p.exists())
    where = resolve_index(index_dir)
    try:
        if len(missing) == len(paths):
            raise errors.NotMediaError(f"{missing[0][0]}: no such file or folder")
        # Scanned before the index is opened (or discarded): with nothing to index,
        # nothing is created or lost.
        found = scan_library([p for p in paths if p.exists()], sidecar=sidecar)
        if not found.files:
            _print_left_out(found.left_out)
            raise errors.NoMediaFoundError(
                "no media found in " + ", ".join(str(p) for p in paths))
        if rebuild:
            discard_index(where)
        created = not (where / CATALOG_NAME).exists()
        with Index.open(where, writable=True) as idx, _stop_on_signals() as stopped:
            runner = None
            if dask is not None:  # after the lock: a busy index starts no cluster
                from citywok.ingest.dask import DaskFingerprinter

                runner = DaskFingerprinter(dask)
            with Progress(TextColumn("{task.description:<14}"), BarColumn(),
                          TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
                          TextColumn("{task.fields[item]}", markup=False), console=err,
                          disable=as_json or not err.is_terminal) as bar:
                task = bar.add_task("scanning", total=None, item="")

                def show(ev: object) -> None:
                    from citywok.result import Progress as Ev
                    assert isinstance(ev, Ev)
                    bar.update(task, description=ev.stage, completed=ev.done, total=ev.total,
                               item=ev.item or "")

                code = 0
                try:
                    summary = drive(index_paths(idx, found, workers=workers,
                                                fingerprinter=runner), show)
                except KeyboardInterrupt as exc:
                    # Fingerprinting says what it kept; before it, nothing new was done,
                    # after it (shared material) all was kept and a rerun finishes.
                    what = (f"kept {exc.kept} of {exc.total}"
                            if isinstance(exc, errors.IndexInterrupted) else "kept what finished")
                    say(err, ("interrupted:", "yellow"), f" {what}; run again to finish")
                    code = 128 + (stopped[0] if stopped else signal.SIGINT)
            stats = idx.stats()
        empty = created and stats.episodes == 0
        if empty:
            # An index that holds nothing would answer every clip "no match"; leave none.
            _remove_index(where)
        if code:
            raise typer.Exit(code)
    except errors.CityWokError as exc:
        raise fail(exc) from None
    failed = missing + summary.failed
    if as_json:
        out.print_json(json.dumps({
            "added": list(summary.added), "updated": list(summary.updated),
            "skipped": list(summary.skipped),
            "failed": [{"file": f, "error": m} for f, m in failed],
            "left_out": [{"file": f, "reason": why} for f, why in summary.left_out],
            "audio_s": round(summary.audio_s, 1), "elapsed_s": round(summary.elapsed_s, 2),
            "episodes": stats.episodes, "index_bytes": stats.index_bytes,
        }))
    else:
        speed = summary.audio_s / summary.elapsed_s if summary.elapsed_s > 0 else 0.0
        say(out, f"added {len(summary.added)}, updated {len(summary.updated)}, "
                  f"unchanged {len(summary.skipped)}, failed {len(failed)}, "
                  f"left out {len(summary.left_out)} "
                  f"({summary.audio_s / 3600:.2f} h of audio in {summary.elapsed_s:.1f} s, "
                  f"{speed:.0f}x real time)")
        for name, message in failed:
            say(out, "  ", ("failed", "red"), f" {name}: {message}")
        _print_left_out(summary.left_out)
        say(out, f"index: {plural(stats.episodes, 'episode')}, {stats.hours:.2f} h, "
                  f"{stats.index_bytes / 1e6:.1f} MB at {stats.path}"
                  + (" (not kept: it holds nothing)" if empty else ""))
    if failed:
        indexed = len(summary.added) + len(summary.updated) + len(summary.skipped)
        media = indexed + len(failed)
        raise fail(errors.IndexingIncompleteError(
            f"{len(failed)} of {media} inputs could not be indexed") if indexed
            else errors.IndexingFailedError(f"none of the {media} inputs could be indexed"
                                            if media > 1 else "the input could not be indexed"))


def _print_left_out(left_out: tuple[tuple[str, str], ...]) -> None:
    for name, why in left_out:
        say(out, "  ", ("left out", "yellow"), f" {name}: {why}")


def _print_result(name: str, res: IdentifyResult) -> None:
    if res.status is Status.NO_MATCH or res.match is None:
        say(out, f"{name}: ", ("no match", "yellow"), f" ({res.elapsed_ms:.0f} ms)")
        return
    # Which evidence decided, once the pictures had a say (a sound file's answer reads
    # as it always did).
    saw = "pictures_ms" in res.timings_ms

    def by(c: Candidate) -> str:
        return f", decided by {_EVIDENCE[c.decided_by]}" if saw else ""

    if res.disagreement is not None:
        d = res.disagreement
        say(out, f"{name}: ", ("sound and picture disagree", "cyan"),
             f" ({res.elapsed_ms:.0f} ms)")
        say(out, f"    the sound:    {d.sound.episode.label}  at {clock(d.sound.offset_s)}")
        say(out, f"    the pictures: {d.picture.episode.label}  at {clock(d.picture.offset_s)}")
        return
    if res.status is Status.AMBIGUOUS:
        what = ("a recurring picture such as a title card"
                if saw and res.match.decided_by is Evidence.PICTURE
                else "shared material such as an intro")
        say(out, f"{name}: ", ("ambiguous", "cyan"),
             f": fits {len(res.candidates)} episodes equally ({what}) "
             f"({res.elapsed_ms:.0f} ms)")
        for c in res.candidates:
            say(out, f"    {c.episode.label}  at {clock(c.offset_s)}")
        return
    c = res.match
    say(out, f"{name}: ", (c.episode.label, "green"),
         f"  at {clock(c.offset_s)}  (confidence {c.confidence:.2f}, speed {c.speed:.2f}x, "
         f"pitch {round(c.pitch_semitones, 1) + 0.0:+.1f} st{by(c)}) "
         f"({res.elapsed_ms:.0f} ms)")


_EVIDENCE = {Evidence.SOUND: "the sound", Evidence.PICTURE: "the pictures",
             Evidence.BOTH: "sound and pictures"}


#: Where each optional part of CityWok comes from.
WEB_EXTRA = defaults.install_hint("web")
LINKS_EXTRA = defaults.install_hint("links")


def link_settings() -> Settings:
    """The link policy and download limits, from the one settings loader (as for
    ``serve``); a bad setting is a ConfigError, a missing extra says what to install."""
    try:
        from citywok.web.core.config import load_settings
    except ModuleNotFoundError:
        raise errors.ConfigError(f"identifying links needs the links extra: {LINKS_EXTRA}"
                                 ) from None
    if importlib.util.find_spec("yt_dlp") is None:
        raise errors.ConfigError(f"identifying links needs yt-dlp: {LINKS_EXTRA}")
    return load_settings()


def fetch_link(url: str, workdir: Path, settings: Settings, *,
               limits: DownloadLimits | None = None) -> Path:
    """Download a link's media into ``workdir`` with the web service's checks and limits
    (a clip's, unless ``limits`` says otherwise)."""
    import asyncio

    from citywok.links.fetch import Downloaded, check_link, download, resolve_checked

    policy = settings.link_policy()
    link = check_link(url, policy)
    resolve_checked(link.host, link.port, policy)

    async def run() -> Path:
        got: Path | None = None
        async for item in download(link, workdir, policy=policy,
                                   limits=limits or settings.download_limits()):
            if isinstance(item, Downloaded):
                got = item.path
        if got is None:
            raise errors.DownloadFailedError("the link gave no media")
        return got

    return asyncio.run(run())


def is_link(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _identify_path(path: str | Path, idx: Index, mp: MatchParams, max_s: float,
                   ) -> IdentifyResult:
    # The same cap as the server's (its container says how long it is): past it, a clip
    # is more likely a whole episode sent by mistake than a clip. The decoder reports the
    # length: one process per file, no ffprobe first.
    from citywok.pipeline import identify_file

    try:
        return identify_file(path, idx, match_params=mp, max_stated_s=max_s or None)
    except errors.MediaTooLongError as exc:
        raise _lifts_the_cap(exc) from None


def _lifts_the_cap(exc: errors.MediaTooLongError) -> errors.MediaTooLongError:
    return errors.MediaTooLongError(f"{exc.message} (--max-duration 0 lifts the cap)")


class _EarlyDecode:
    """A clip's decoding, started ahead on a thread: the first clip's before the engine
    is imported and the index opened, each next one's while the clip before it is
    matched, so that ffmpeg's start and decode (about 0.1 s a clip) overlap them. The
    same call as :func:`citywok.pipeline.identify_file` makes; before the index is open,
    at the default analysis rate (an index built at another rate has the clip decoded
    again)."""

    def __init__(self, path: str, max_s: float, *, sample_rate_hz: int | None = None
                 ) -> None:
        from citywok.analysis.decode import decode_clip
        from citywok.params import AnalysisParams

        self.path = path
        self.sample_rate_hz = sample_rate_hz or AnalysisParams().sample_rate_hz
        self._got: list[tuple[npt.NDArray[np.float32], float] | BaseException] = []

        def run() -> None:
            started = time.perf_counter()
            try:
                samples = decode_clip(path, sample_rate_hz=self.sample_rate_hz,
                                      max_stated_s=max_s or None,
                                      limit_s=MatchParams().max_query_s,
                                      timeout_s=defaults.CLIP_DECODE_TIMEOUT_S).samples
            except BaseException as exc:  # handed to the main thread as it is
                self._got.append(exc)
                return
            self._got.append((samples, (time.perf_counter() - started) * 1000))

        self._thread = threading.Thread(target=run, name="decode", daemon=True)
        self._thread.start()

    def result(self) -> tuple[npt.NDArray[np.float32], float]:
        """The samples and the milliseconds decoding took; what it raised, raised."""
        self._thread.join()
        got = self._got[0]
        if isinstance(got, BaseException):
            raise got
        return got


def _decodes_ahead(source: str) -> bool:
    """Whether a clip's sound may be decoded ahead: not a link (fetched first), not a
    screenshot (no sound to decode)."""
    from citywok.vision import IMAGE_SUFFIXES  # the package's init alone: no NumPy

    return not is_link(source) and not source.lower().endswith(IMAGE_SUFFIXES)


def _identify_one(source: str, idx: Index, mp: MatchParams, settings: Settings | None,
                  max_s: float, early: _EarlyDecode | None = None) -> IdentifyResult:
    # Decoded ahead (the sound only): used where the pictures cannot be asked, an index
    # without pictures; else the clip takes the whole path, sound and pictures.
    if early is not None and early.path == source \
            and early.sample_rate_hz == idx.params.sample_rate_hz and not idx.has_pictures():
        from citywok.pipeline import identify_decoded

        try:
            samples, decode_ms = early.result()
        except errors.MediaTooLongError as exc:
            raise _lifts_the_cap(exc) from None
        return identify_decoded(samples, idx, decode_ms=decode_ms, match_params=mp)
    if not is_link(source):
        return _identify_path(source, idx, mp, max_s)
    assert settings is not None
    with tempfile.TemporaryDirectory(prefix="citywok-link-") as tmp:
        return _identify_path(fetch_link(source, Path(tmp), settings), idx, mp, max_s)


@app.command()
def identify(
    files: Annotated[list[str], typer.Argument(help="Clips to identify: files, or links "
                                               "(http/https; needs the links extra).")],
    index_dir: IndexOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file per "
                                          "line.")] = False,
    max_duration: Annotated[float, typer.Option(
        "--max-duration", min=0, metavar="<seconds>",
        help="Refuse clips longer than this, as the web service does (0: no cap; the first "
        f"{MatchParams().max_query_s:g} s are analysed either way)."
    )] = defaults.MAX_CLIP_DURATION_S,
) -> None:
    """Say which episode each clip comes from, and where in it.

    When damaged segments kept part of the library from being searched, a warning on
    stderr says how many episodes (the answer is still given; `citywok check` names the
    segments). An input that cannot be read is named (on its own line with --json) and
    the others still run; the exit code then says so (see the list in 'citywok --help').
    """
    early = _EarlyDecode(files[0], max_duration) if _decodes_ahead(files[0]) else None
    try:
        settings = link_settings() if any(is_link(f) for f in files) else None
        idx = open_for_queries(index_dir)
    except errors.CityWokError as exc:
        raise fail(exc) from None
    mp = MatchParams()
    failures: list[errors.CityWokError] = []
    with idx:
        for n, f in enumerate(files):
            first, early = early, None
            after = files[n + 1] if n + 1 < len(files) else None
            if after is not None and _decodes_ahead(after) and not idx.has_pictures():
                early = _EarlyDecode(after, max_duration,
                                     sample_rate_hz=idx.params.sample_rate_hz)
            try:
                res = _identify_one(f, idx, mp, settings, max_duration, first)
            except errors.CityWokError as exc:
                failures.append(exc)
                if as_json:
                    print(json.dumps({"file": f, "status": "error", "error": exc.message}),
                          flush=True)
                else:
                    say(err, f"{f}: ", ("error:", "red"), f" {exc.reason(Path(f).name)}")
                continue
            if as_json:
                print(json.dumps(res.to_json(file=f)), flush=True)
            else:
                _print_result(f, res)
            if res.episodes_not_searched:
                # The answer stands (exit 0), but only for the part of the library searched.
                say(err, f"{f}: ", ("warning:", "yellow"),
                    f" {res.episodes_not_searched} indexed episode(s) could not be searched "
                    "(a damaged segment; run `citywok check`)")
    if len(failures) == len(files):
        # Nothing answered: the code the one input's error has (each input was named).
        raise typer.Exit(exit_code_for(failures[0]))
    if failures:
        raise fail(errors.InputsIncompleteError(
            f"{len(failures)} of {len(files)} inputs could not be read"))


def open_for_queries(index_dir: Path | None) -> Index:
    """The index to answer from; one that holds no episode is an error, not an index
    where nothing matches. Segments this user's earlier runs verified are not hashed
    again (:func:`citywok.defaults.verified_memo`)."""
    from citywok.index import Index

    where = resolve_index(index_dir)
    idx = Index.open(where, verified_memo=defaults.verified_memo(where))
    if not idx.catalog.episodes():
        where = idx.path
        idx.close()
        raise errors.IndexNotFoundError(
            f"the index at {where} is empty: add episodes with `citywok index FOLDER`")
    return idx


@app.command()
def stats(index_dir: IndexOpt = None,
          as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Size and contents of the index."""
    from citywok.index import Index

    try:
        with Index.open(resolve_index(index_dir)) as idx:
            s = idx.stats()
    except errors.CityWokError as exc:
        raise fail(exc) from None
    data = {"episodes": s.episodes, "shows": s.shows, "hours": round(s.hours, 3),
            "peaks": s.peaks, "hashes": s.hashes, "segments": s.segments,
            "index_bytes": s.index_bytes,
            "mb_per_hour": round(s.index_bytes / 1e6 / s.hours, 3) if s.hours else None,
            "format_version": s.format_version, "path": s.path, "damaged": list(s.damaged)}
    if as_json:
        print(json.dumps(data))
        return
    for k, v in data.items():
        if k != "damaged":
            out.print(f"{k:>15}: {v}", markup=False)
    for line in s.damaged:
        err.print(f"{'damaged':>15}: {line} (run `citywok check`)", markup=False)


@app.command()
def check(index_dir: IndexOpt = None,
          as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Verify every segment of the index (checksums and structure) and every episode's
    stored length against its file, and say which are damaged or cut short; exits
    non-zero when any is."""
    from citywok.index import Index
    from citywok.pipeline import stored_short

    try:
        with Index.open(resolve_index(index_dir), verify=False) as idx:
            damaged = idx.check()
            total = len(idx.catalog.segments())
            rows = idx.catalog.episodes()
            names = {r.key: r.episode.episode_id for r in rows}
            lost = sorted(names[k] for d in damaged for k in d.episode_keys if k in names)
            short = [(r.episode, why) for r, why in zip(rows, stored_short(rows), strict=True)
                     if why is not None]
            pictures = idx.check_pictures()
    except errors.CityWokError as exc:
        raise fail(exc) from None
    if as_json:
        print(json.dumps({"segments": total, "damaged": [
            {"file": d.file, "reason": d.reason, "episodes": len(d.episode_keys)}
            for d in damaged], "cut_short": [
            {"episode_id": e.episode_id, "file": e.source_path, "reason": why}
            for e, why in short], "damaged_pictures": pictures}))
    else:
        if not damaged:
            out.print(f"all {total} segment(s) are whole", markup=False)
        for d in damaged:
            err.print(f"damaged: {d.reason} ({plural(len(d.episode_keys), 'episode')})",
                      markup=False)
        if damaged:
            err.print(f"episodes that cannot be answered: {', '.join(lost)}", markup=False)
            err.print("rebuild them with `citywok index --rebuild FOLDER`", markup=False)
        for e, why in short:
            err.print(f"cut short: {e.episode_id} ({why} in {e.source_path})", markup=False)
        if short:
            err.print("`citywok index FOLDER` indexes them again", markup=False)
        for why in pictures:
            err.print(f"damaged picture file: {why} (its episode answers by sound only; "
                      "`citywok index --rebuild FOLDER` makes it again)", markup=False)
    problems = ([f"{len(damaged)} of {plural(total, 'segment')} damaged"] if damaged else []
                ) + ([f"{plural(len(short), 'episode')} of {len(rows)} stored cut short"]
                     if short else []) + ([f"{plural(len(pictures), 'picture file')} damaged"]
                                          if pictures else [])
    if problems:
        raise fail(errors.IndexFormatError("; ".join(problems)))


@app.command("list")
def list_episodes(index_dir: IndexOpt = None,
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the indexed episodes."""
    from rich.table import Table
    from rich.text import Text

    from citywok.index import Index

    try:
        with Index.open(resolve_index(index_dir)) as idx:
            rows = idx.catalog.episodes()
    except errors.CityWokError as exc:
        raise fail(exc) from None
    if as_json:
        for r in rows:
            e = r.episode
            print(json.dumps({"episode_id": e.episode_id, "show": e.show, "season": e.season,
                              "episode": e.episode, "title": e.title,
                              "duration_s": e.duration_s, "source_path": e.source_path}))
        return
    table = Table("episode_id", "show", "S", "E", "title", "length")
    for r in rows:
        e = r.episode
        table.add_row(*(Text(cell) for cell in (
            e.episode_id, e.show, str(e.season or ""), str(e.episode or ""), e.title or "",
            clock(e.duration_s))))
    out.print(table)


@app.command()
def remove(episode_id: Annotated[str, typer.Argument(help="Id shown by 'citywok list'.")],
           index_dir: IndexOpt = None) -> None:
    """Remove an episode from the index."""
    from citywok.index import Index
    from citywok.pipeline import remove_episode

    try:
        with Index.open(resolve_index(index_dir), writable=True) as idx:
            ep = remove_episode(idx, episode_id)
    except errors.CityWokError as exc:
        raise fail(exc) from None
    say(out, f"removed {ep.episode_id} ({ep.label})")


@app.command()
def compact(index_dir: IndexOpt = None) -> None:
    """Merge index segments and drop the hashes of removed episodes."""
    from citywok.index import Index

    try:
        with Index.open(resolve_index(index_dir), writable=True) as idx:
            idx.compact()
            s = idx.stats()
    except errors.CityWokError as exc:
        raise fail(exc) from None
    say(out, f"{s.segments} segment(s), {s.index_bytes / 1e6:.1f} MB")


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo library and index go.")] = Path(
        "demo-library"),
) -> None:
    """Build a small library from generated audio, index it, identify a distorted clip."""
    from citywok.cli.demo import run_demo

    try:
        run_demo(workdir, lambda line: print(line, flush=True))
    except errors.CityWokError as exc:
        raise fail(exc) from None


from citywok.cli.timeline import register as _register_timeline  # noqa: E402

_register_timeline(app)


def _register_web_stubs(missing: str) -> None:
    """``serve``, ``keys`` and ``usage`` without the web extra: say what to install,
    whatever the arguments (even ``--help``)."""

    def needs_web(ctx: typer.Context) -> None:
        raise fail(errors.ConfigError(f"'citywok {ctx.info_name}' needs the web extra "
                                       f"({missing} is not installed): {WEB_EXTRA}"))

    for name, what in (("serve", "Serve the web API"), ("keys", "Manage API keys"),
                       ("usage", "Usage figures of the web service")):
        app.command(name, help=f"{what} (needs the web extra: {WEB_EXTRA}).",
                    add_help_option=False, context_settings={
                        "ignore_unknown_options": True, "allow_extra_args": True,
                        "help_option_names": []})(needs_web)


from citywok.cli.serve import WEB_MODULES, register  # noqa: E402

# Whether the web extra is there is asked, not imported: its modules load only when a
# web command runs.
_missing_web = next((m for m in WEB_MODULES if importlib.util.find_spec(m) is None), None)
if _missing_web is not None:
    _register_web_stubs(_missing_web)
else:
    register(app)


from citywok.cli.snapshot import snapshot_app  # noqa: E402 - needs the helpers above

app.add_typer(snapshot_app, name="snapshot")


#: ``identify``'s options that :func:`plain_identify` reads, by the name Typer gives them.
_PLAIN_OPTIONS = {"--index": "index_dir", "-i": "index_dir", "--json": "as_json",
                  "--max-duration": "max_duration"}
_PLAIN_SECONDS = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)\Z")


def plain_identify(args: Sequence[str]) -> dict[str, Any] | None:
    """``identify``'s parameters, as Typer would give them, when ``args`` are of the plain
    kinds only: files, ``--index``/``-i``, ``--json``, ``--max-duration`` with a plain
    number, each option once; else ``None``.

    Typer (0.2x) coerces every parameter through pydantic once a command is chosen,
    about 0.1 s of a one-clip run (the import and the type adapters): the one-shot
    command a user types most skips that. Everything else (help, an unknown or repeated
    option, a value Typer would refuse or reads its own way) goes to Typer, which
    answers as before; a test holds the two to the same parameters.
    """
    if not args or args[0] != "identify":
        return None
    params: dict[str, Any] = {"files": [], "index_dir": None, "as_json": False,
                              "max_duration": defaults.MAX_CLIP_DURATION_S}
    seen: set[str] = set()
    rest = iter(args[1:])
    for arg in rest:
        if not arg.startswith("-"):
            params["files"].append(arg)
            continue
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        key = _PLAIN_OPTIONS.get(name)
        if key is None or key in seen or (key == "as_json" and eq):
            return None
        seen.add(key)
        if key == "as_json":
            params[key] = True
            continue
        if not eq:
            value = next(rest, "")
        if not value.strip() or value.startswith("-"):
            return None
        if key == "max_duration":
            if not _PLAIN_SECONDS.match(value):
                return None
            params[key] = float(value)
        else:
            params[key] = Path(value)
    return params if params["files"] else None


#: Commands that answer queries: small products, where a second BLAS thread only costs.
_QUERY_COMMANDS = ("identify", "timeline")


def _one_blas_thread() -> None:
    """Keep NumPy's BLAS (OpenBLAS) and any OpenMP pool to one thread, as the bench runs
    them, unless the caller set these variables; before NumPy loads. A query's products
    are small (a clip's 300 x 200 spectrogram by a 200 x 17 band matrix), and a second
    thread only adds its wake-up, which on a busy machine costs milliseconds a product
    (8 ms against 0.05 ms measured on two shared cores), more than the product itself.
    Indexing keeps the default: the encoder's products over a whole episode are large."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def main() -> None:
    if sys.argv[1:2] and sys.argv[1] in _QUERY_COMMANDS:
        _one_blas_thread()
    plain = plain_identify(sys.argv[1:])
    if plain is None:
        app(prog_name="citywok")
        return
    # What Typer's standalone mode does around a command, for this one.
    try:
        identify(**plain)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        from typer._click.utils import PacifyFlushWrapper

        sys.stdout = cast(TextIO, PacifyFlushWrapper(sys.stdout))
        sys.stderr = cast(TextIO, PacifyFlushWrapper(sys.stderr))
        sys.exit(1)


if __name__ == "__main__":
    main()
