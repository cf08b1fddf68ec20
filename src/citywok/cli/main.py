"""``citywok``: a thin command-line shell over the library.

Errors map to exit codes in :data:`EXIT_CODES`, the one place that does so.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from citywok import defaults, errors
from citywok.cli.common import (
    IndexOpt,
    err,
    out,
    resolve_index,
    say,
)
from citywok.display import clock
from citywok.params import MatchParams
from citywok.result import IdentifyResult, Status

# What a command needs is imported when it runs (the index, the pipeline, NumPy, SciPy,
# rich's bars and tables): `citywok --help` loads none of it, `identify` only its own.
if TYPE_CHECKING:
    from citywok.index import Index
    from citywok.links.fetch import DownloadLimits
    from citywok.web.core.config import Settings

#: Exit code for each error class (most specific first) and what it means; 0 is success,
#: 1 anything unexpected, 2 a command used wrongly (unknown option, missing path).
EXIT_CODES: tuple[tuple[type[errors.CityWokError], int, str], ...] = (
    (errors.IndexingIncompleteError, 3, "some files could not be indexed, the others were"),
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
    meanings = {0: "success", 1: "unexpected error", 2: "the command was used wrongly"}
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


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders of episodes.",
                                                exists=True)],
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
    """Add episodes to the index; files already indexed and unchanged are skipped.

    Files that are not media are left out and named. The exit code tells whether every
    media file was indexed, some were, or none (see the list in 'citywok --help').
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from citywok.index import Index
    from citywok.ingest.library import scan_library
    from citywok.pipeline import drive, index_paths
    from citywok.store.local import discard_index

    try:
        # Scanned before the index is opened (or discarded): with nothing to index,
        # nothing is created or lost.
        found = scan_library(paths, sidecar=sidecar)
        if not found.files:
            _print_left_out(found.left_out)
            raise errors.NoMediaFoundError(
                "no media found in " + ", ".join(str(p) for p in paths))
        if rebuild:
            discard_index(resolve_index(index_dir))
        with Index.open(resolve_index(index_dir), writable=True) as idx:
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

                summary = drive(index_paths(idx, found, workers=workers,
                                            fingerprinter=runner), show)
            stats = idx.stats()
    except errors.CityWokError as exc:
        raise fail(exc) from None
    if as_json:
        out.print_json(json.dumps({
            "added": list(summary.added), "updated": list(summary.updated),
            "skipped": list(summary.skipped),
            "failed": [{"file": f, "error": m} for f, m in summary.failed],
            "left_out": [{"file": f, "reason": why} for f, why in summary.left_out],
            "audio_s": round(summary.audio_s, 1), "elapsed_s": round(summary.elapsed_s, 2),
            "episodes": stats.episodes, "index_bytes": stats.index_bytes,
        }))
    else:
        speed = summary.audio_s / summary.elapsed_s if summary.elapsed_s > 0 else 0.0
        say(out, f"added {len(summary.added)}, updated {len(summary.updated)}, "
                  f"unchanged {len(summary.skipped)}, failed {len(summary.failed)}, "
                  f"left out {len(summary.left_out)} "
                  f"({summary.audio_s / 3600:.2f} h of audio in {summary.elapsed_s:.1f} s, "
                  f"{speed:.0f}x real time)")
        for name, message in summary.failed:
            say(out, "  ", ("failed", "red"), f" {name}: {message}")
        _print_left_out(summary.left_out)
        say(out, f"index: {stats.episodes} episodes, {stats.hours:.2f} h, "
                  f"{stats.index_bytes / 1e6:.1f} MB at {stats.path}")
    if summary.failed:
        indexed = len(summary.added) + len(summary.updated) + len(summary.skipped)
        media = indexed + len(summary.failed)
        raise fail(errors.IndexingIncompleteError(
            f"{len(summary.failed)} of {media} media files could not be indexed") if indexed
            else errors.IndexingFailedError(f"none of the {media} media files could be "
                                            "indexed"))


def _print_left_out(left_out: tuple[tuple[str, str], ...]) -> None:
    for name, why in left_out:
        say(out, "  ", ("left out", "yellow"), f" {name}: {why}")


def _print_result(name: str, res: IdentifyResult) -> None:
    if res.status is Status.NO_MATCH or res.match is None:
        say(out, f"{name}: ", ("no match", "yellow"), f" ({res.elapsed_ms:.0f} ms)")
        return
    if res.status is Status.AMBIGUOUS:
        say(out, f"{name}: ", ("ambiguous", "cyan"),
             f": fits {len(res.candidates)} episodes equally (shared material such as an "
             f"intro) ({res.elapsed_ms:.0f} ms)")
        for c in res.candidates:
            say(out, f"    {c.episode.label}  at {clock(c.offset_s)}")
        return
    c = res.match
    say(out, f"{name}: ", (c.episode.label, "green"),
         f"  at {clock(c.offset_s)}  (confidence {c.confidence:.2f}, speed {c.speed:.2f}x, "
         f"pitch {round(c.pitch_semitones, 1) + 0.0:+.1f} st) ({res.elapsed_ms:.0f} ms)")


#: Where each optional part of CityWok comes from.
WEB_EXTRA = "pip install 'citywok[web]'"
LINKS_EXTRA = "pip install 'citywok[links]'"


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
        raise errors.MediaTooLongError(f"{exc.message} (--max-duration 0 lifts the cap)"
                                       ) from None


def _identify_one(source: str, idx: Index, mp: MatchParams, settings: Settings | None,
                  max_s: float) -> IdentifyResult:
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
    """Say which episode each clip comes from, and where in it."""
    from citywok.index import Index

    try:
        settings = link_settings() if any(is_link(f) for f in files) else None
        where = resolve_index(index_dir)
        idx = Index.open(where, verified_memo=defaults.verified_memo(where))
    except errors.CityWokError as exc:
        raise fail(exc) from None
    mp = MatchParams()
    with idx:
        for f in files:
            try:
                res = _identify_one(f, idx, mp, settings, max_duration)
            except errors.CityWokError as exc:
                if as_json:
                    print(json.dumps({"file": f, "status": "error", "error": exc.message}),
                          flush=True)
                else:
                    say(err, f"{f}: ", ("error:", "red"), f" {exc.message}")
                continue
            if as_json:
                print(json.dumps(res.to_json(file=f)), flush=True)
            else:
                _print_result(f, res)


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
    """Verify every segment of the index (checksums and structure) and say which are
    damaged; exits non-zero when any is."""
    from citywok.index import Index

    try:
        with Index.open(resolve_index(index_dir), verify=False) as idx:
            damaged = idx.check()
            total = len(idx.catalog.segments())
            names = {r.key: r.episode.episode_id for r in idx.catalog.episodes()}
            lost = sorted(names[k] for d in damaged for k in d.episode_keys if k in names)
    except errors.CityWokError as exc:
        raise fail(exc) from None
    if as_json:
        print(json.dumps({"segments": total, "damaged": [
            {"file": d.file, "reason": d.reason, "episodes": len(d.episode_keys)}
            for d in damaged]}))
    elif not damaged:
        out.print(f"all {total} segment(s) are whole")
    else:
        for d in damaged:
            err.print(f"damaged: {d.reason} ({len(d.episode_keys)} episode(s))", markup=False)
        err.print(f"episodes that cannot be answered: {', '.join(lost)}", markup=False)
        err.print("rebuild them with `citywok index --rebuild FOLDER`", markup=False)
    if damaged:
        raise fail(errors.IndexFormatError(f"{len(damaged)} of {total} segment(s) damaged"))


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


def main() -> None:
    app(prog_name="citywok")


if __name__ == "__main__":
    main()
