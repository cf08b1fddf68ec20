"""The stages composed: files → index, and clip → answer.

Long work is a generator of :class:`~citywok.result.Progress` events whose return value
is the result; :func:`drive` runs one to the end for callers that only want the result.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from citywok import defaults
from citywok.analysis.decode import decode_clip, duration_shortfall, probe
from citywok.errors import (
    CityWokError,
    EmptyMediaError,
    IndexInterrupted,
    MediaError,
    NotMediaError,
    SilentMediaError,
)
from citywok.index import Index, NewEpisode
from citywok.ingest import Fingerprinter, FingerprintJob, JobOutcome
from citywok.ingest.library import LibraryFile, LibraryScan, make_episode_id, scan_library
from citywok.match.decide import decide, shared_material
from citywok.match.fuse import fuse
from citywok.match.query import analyse_clip, match_clip
from citywok.match.sequence import embedding_lists
from citywok.match.shared import find_shared
from citywok.params import BuildParams, FuseParams, MatchParams, SharedParams
from citywok.result import Episode, IdentifyResult, IndexSummary, Progress, Status
from citywok.store.catalog import EpisodeRow
from citywok.store.local import MAX_SEGMENTS
from citywok.vision.errors import NoPicturesIndexedError, PictureError
from citywok.vision.frames import IMAGE_SUFFIXES, Frames
from citywok.vision.params import SearchParams
from citywok.vision.search import PictureAnswer

T = TypeVar("T")

def drive(steps: Generator[Progress, None, T],
          on_progress: Callable[[Progress], None] | None = None) -> T:
    """Run a progress generator to its end and return its result.

    An interrupt that lands in ``on_progress`` is handed to the generator, so that it
    stops as it would had the interrupt landed in its own code (keeping what it finished).
    """
    stopped: KeyboardInterrupt | None = None
    while True:
        try:
            event = next(steps) if stopped is None else steps.throw(stopped)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        stopped = None
        if on_progress is not None:
            try:
                on_progress(event)
            except KeyboardInterrupt as exc:
                stopped = exc


# -- identification ---------------------------------------------------------------------


def identify_samples(samples: npt.NDArray[np.float32], index: Index, *,
                     match_params: MatchParams | None = None) -> IdentifyResult:
    """Identify decoded audio (mono, at the index's sample rate)."""
    return drive(_identify_steps(samples, index, match_params or MatchParams(), {}, 0.0))


def _identify_steps(samples: npt.NDArray[np.float32], index: Index, mp: MatchParams,
                    timings: dict[str, float], started: float,
                    picture: PictureAnswer | None = None,
                    sp: SearchParams | None = None, fp: FuseParams | None = None,
                    ) -> Generator[Progress, None, IdentifyResult]:
    t0 = time.perf_counter()
    yield Progress(stage="fingerprinting")
    analysis = analyse_clip(samples, index.params, mp)
    t1 = time.perf_counter()
    timings["fingerprint_ms"] = (t1 - t0) * 1000
    yield Progress(stage="matching")
    hits = match_clip(samples, index, mp, analysis=analysis)
    clip_s = len(samples) / index.params.sample_rate_hz
    sound = decide(hits, index, mp, clip_s=clip_s)
    fused = fuse(sound, hits, picture, index, mp=mp, sp=sp or SearchParams(),
                 fp=fp or FuseParams())
    status, candidates = fused.status, fused.candidates
    t2 = time.perf_counter()
    timings["match_ms"] = (t2 - t1) * 1000
    return IdentifyResult(
        status=status,
        match=candidates[0] if candidates else None,
        candidates=candidates,
        elapsed_ms=(t2 - (started or t0)) * 1000,
        clip_duration_s=clip_s,
        timings_ms=dict(timings),
        shared=(shared_material(index, candidates, clip_s=clip_s)
                if status is Status.AMBIGUOUS and fused.disagreement is None else None),
        # After the match: a segment found damaged during it counts too.
        episodes_not_searched=index.unsearched_episodes,
        disagreement=fused.disagreement,
    )


def _pictures_only(answer: PictureAnswer, index: Index, mp: MatchParams, sp: SearchParams,
                   fp: FuseParams, *, clip_s: float, timings: dict[str, float],
                   started: float) -> IdentifyResult:
    """The answer of a clip without sound (or a screenshot): the pictures decide."""
    fused = fuse((Status.NO_MATCH, ()), (), answer, index, mp=mp, sp=sp, fp=fp)
    return IdentifyResult(
        status=fused.status, match=fused.candidates[0] if fused.candidates else None,
        candidates=fused.candidates, elapsed_ms=(time.perf_counter() - started) * 1000,
        clip_duration_s=clip_s, timings_ms=dict(timings),
        episodes_not_searched=index.unsearched_episodes)


def _look(index: Index, frames: Frames, sp: SearchParams, timings: dict[str, float]
          ) -> PictureAnswer | None:
    """The pictures' answer of ``frames`` (None: the index has no pictures to ask)."""
    t0 = time.perf_counter()
    searcher = index.picture_searcher()
    if searcher is None or index.pictures is None:
        return None
    answer = index.pictures.look(searcher, frames, sp)
    timings["pictures_ms"] = (time.perf_counter() - t0) * 1000
    return answer


def identify_file_steps(path: str | Path, index: Index, *,
                        match_params: MatchParams | None = None,
                        max_duration_s: float | None = None,
                        max_stated_s: float | None = None,
                        timeout_s: float | None = defaults.CLIP_DECODE_TIMEOUT_S,
                        search_params: SearchParams | None = None,
                        fuse_params: FuseParams | None = None,
                        ) -> Generator[Progress, None, IdentifyResult]:
    """Decode a clip and identify it, yielding a progress event per stage.

    ``max_stated_s`` refuses a file whose container states it is longer (the decoder
    reports the duration: no second process probes it first).

    Where the index holds pictures (issue 17), a clip's video stream is sampled beside
    its sound, and both are weighed (:mod:`citywok.match.fuse`); a video without sound
    is answered by its pictures, and a picture file (PNG, JPEG, WebP ...) is a
    screenshot, answered by its one picture. A sound file, or an index without
    pictures, is answered exactly as before.
    """
    started = time.perf_counter()
    mp = match_params or MatchParams()
    sp, fp = search_params or SearchParams(), fuse_params or FuseParams()
    path = Path(path)
    yield Progress(stage="decoding", item=path.name)
    pictures = index.pictures if index.has_pictures() else None
    if path.suffix.lower() in IMAGE_SUFFIXES:
        # A screenshot: its one picture answers alone (bounded before it is decoded).
        if pictures is None:
            raise NoPicturesIndexedError(
                f"{path.name}: a picture, but the index holds no episode's pictures "
                "(index the episodes' video files to answer screenshots)")
        still = pictures.read_still(path, sp)
        timings = {"decode_ms": (time.perf_counter() - started) * 1000}
        yield Progress(stage="matching")
        answer = _look(index, still, sp, timings)
        assert answer is not None
        return _pictures_only(answer, index, mp, sp, fp, clip_s=0.0, timings=timings,
                              started=started)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The pictures decode in their own ffmpeg while the sound decodes here.
        seen = (pool.submit(pictures.sample_clip, path, sp)
                if pictures is not None and pictures.may_have_pictures(path) else None)
        try:
            # Only what match_clip analyses is decoded: memory follows the clip.
            samples = decode_clip(path, sample_rate_hz=index.params.sample_rate_hz,
                                  max_duration_s=max_duration_s, max_stated_s=max_stated_s,
                                  limit_s=mp.max_query_s, timeout_s=timeout_s).samples
            sound_error: MediaError | None = None
        except (NotMediaError, EmptyMediaError, SilentMediaError) as exc:
            # No usable sound (a video without an audio stream): perhaps pictures.
            samples, sound_error = np.zeros(0, np.float32), exc
        frames = _frames_or_none(seen, sound_error)
    timings = {"decode_ms": (time.perf_counter() - started) * 1000}
    picture = _look(index, frames, sp, timings) if frames is not None else None
    if sound_error is not None:
        if picture is None:
            raise sound_error
        # A video without (usable) sound: the pictures answer alone.
        yield Progress(stage="matching")
        return _pictures_only(picture, index, mp, sp, fp,
                              clip_s=float(frames.times_s[-1]) if frames else 0.0,
                              timings=timings, started=started)
    return (yield from _identify_steps(samples, index, mp, timings, started, picture, sp, fp))


def _frames_or_none(seen: Future[Frames | None] | None,
                    sound_error: MediaError | None) -> Frames | None:
    """A clip's frames; without any, None. A picture fault of a clip whose sound
    decoded is no error (its sound answers); of one without sound it is the error."""
    if seen is None:
        return None
    try:
        return seen.result()
    except PictureError:
        if sound_error is None:
            return None
        raise


def identify_decoded(samples: npt.NDArray[np.float32], index: Index, *, decode_ms: float,
                     match_params: MatchParams | None = None) -> IdentifyResult:
    """Identify a clip decoded beforehand (``decode_ms`` it took, at the index's sample
    rate), timed as :func:`identify_file` times it: decoding plus matching."""
    started = time.perf_counter() - decode_ms / 1000
    return drive(_identify_steps(samples, index, match_params or MatchParams(),
                                 {"decode_ms": decode_ms}, started))


def identify_file(path: str | Path, index: Index, **kwargs: object) -> IdentifyResult:
    return drive(identify_file_steps(path, index, **kwargs))  # type: ignore[arg-type]


# -- indexing ---------------------------------------------------------------------------


def content_hash(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass(frozen=True)
class _Job:
    file: LibraryFile
    size: int
    mtime_ns: int
    digest: str
    replaces: int | None


def index_paths(index: Index, paths: Iterable[str | Path] | LibraryScan, *,
                sidecar: Path | None = None,
                workers: int = 1, fingerprinter: Fingerprinter | None = None,
                build_params: BuildParams | None = None,
                ) -> Generator[Progress, None, IndexSummary]:
    """Index every media file under ``paths``; unchanged files are skipped.

    A file is unchanged when its path, size and modification time match the catalogue,
    or its content hash matches an episode already indexed (a moved or touched file: the
    catalogue is updated, nothing is decoded). Files are fingerprinted by
    ``fingerprinter`` (default: this process, or a pool of ``workers`` processes) and
    committed here, in the order the scan found them, whatever order they finish in, so
    every adapter builds the same index. A commit happens at least every
    ``build_params.commit_every_s`` seconds of work (and every ``batch_audio_s`` of
    audio; see :class:`~citywok.params.BuildParams`), so an interrupted run keeps what it
    finished. ``paths`` may be a scan already made (the CLI scans before it creates an
    index).
    """
    bp = build_params or BuildParams()
    started = time.perf_counter()
    yield Progress(stage="scanning")
    found = paths if isinstance(paths, LibraryScan) else scan_library(paths, sidecar=sidecar)
    files = list(found.files)
    added: list[str] = []
    updated: list[str] = []
    skipped: list[str] = []
    failed: list[tuple[str, str]] = []
    jobs: list[_Job] = []
    #: Files whose episode is stored already: checked below for a stored short decode.
    stored: list[tuple[LibraryFile, EpisodeRow, os.stat_result]] = []
    for i, f in enumerate(files):
        yield Progress(stage="checking", done=i, total=len(files), item=f.path.name)
        st = f.path.stat()
        known = index.catalog.by_path(str(f.path))
        if known and known.file_size == st.st_size and known.file_mtime_ns == st.st_mtime_ns:
            stored.append((f, known, st))
            continue
        digest = content_hash(f.path)
        same = index.catalog.by_hash(digest)
        if same is not None:
            index.update_source(same, source_path=str(f.path), file_size=st.st_size,
                                file_mtime_ns=st.st_mtime_ns)
            stored.append((f, same, st))
            continue
        jobs.append(_Job(f, st.st_size, st.st_mtime_ns, digest, known.key if known else None))
    # An episode an earlier decoder stored cut short (killed, or stopped by a signal, and
    # taken for the whole) is done again: its file says how long it is. Every stored
    # episode is compared until all are known whole; then never again (what this version
    # adds is checked as it is decoded), so a run with nothing to do stays quick.
    short_keys: set[int] = set()
    if not index.lengths_checked:
        yield Progress(stage="checking lengths")
        rows = index.catalog.episodes()
        short_keys = {r.key for r, why in zip(rows, stored_short(rows), strict=True) if why}
    for f, row, st in stored:
        if row.key not in short_keys:
            skipped.append(row.episode.episode_id)
        else:
            jobs.append(_Job(f, st.st_size, st.st_mtime_ns, row.episode.content_hash,
                             row.key))
    # Short ones this run cannot redo (not among its files, or failing again) keep the
    # check going on later runs.
    unrepaired = short_keys - {row.key for _, row, _ in stored}

    total_bytes = float(sum(j.size for j in jobs)) or 1.0
    done_bytes = 0.0
    pending: list[NewEpisode] = []
    replaces: list[int] = []
    pending_s = 0.0
    audio_s = 0.0
    last_commit = time.monotonic()
    # Outcomes that finished before an earlier job: held until their turn.
    waiting: dict[int, JobOutcome] = {}
    next_turn = 0

    def accept(n: int, outcome: JobOutcome) -> None:
        nonlocal pending_s, audio_s
        job = jobs[n]
        if isinstance(outcome, CityWokError):
            failed.append((job.file.path.name, outcome.reason(job.file.path.name)))
            if job.replaces in short_keys:
                unrepaired.add(job.replaces)
            return
        info = job.file.info
        old = index.episodes.get(job.replaces) if job.replaces is not None else None
        if job.replaces is not None:
            replaces.append(job.replaces)
        ep_id = (old.episode_id if old
                 else index.unique_episode_id(make_episode_id(info, job.file.path)))
        if any(p.episode.episode_id == ep_id for p in pending):
            ep_id = index.unique_episode_id(f"{ep_id}-{n}")
        episode = Episode(
            episode_id=ep_id, show=info.show, season=info.season, episode=info.episode,
            title=info.title, duration_s=round(outcome.duration_s, 3),
            source_path=str(job.file.path), content_hash=job.digest, watch_url=info.watch_url,
        )
        pending.append(NewEpisode(episode=episode, peaks=outcome.peaks, sketch=outcome.sketch,
                                  embedding=outcome.embedding, pictures=outcome.pictures,
                                  file_size=job.size,
                                  file_mtime_ns=job.mtime_ns))
        (updated if job.replaces is not None else added).append(ep_id)
        pending_s += outcome.duration_s
        audio_s += outcome.duration_s

    def commit() -> None:
        nonlocal pending, replaces, pending_s, last_commit
        if pending or replaces:
            index.add(pending, replace_keys=replaces)
        pending, replaces, pending_s = [], [], 0.0
        last_commit = time.monotonic()

    # The process pool (multiprocessing) loads when indexing, not for an identification.
    from citywok.ingest.local import local_fingerprinter

    runner = fingerprinter if fingerprinter is not None else local_fingerprinter(workers)
    try:
        requests = [FingerprintJob(j.file.path, index.params, embedder=index.embedder_name,
                                   pictures=index.picture_family_name)
                    for j in jobs]
        if jobs:
            yield Progress(stage="fingerprinting", done=0.0, total=total_bytes,
                           item=jobs[0].file.path.name)
        for n, outcome in runner.run(requests):
            waiting[n] = outcome
            done_bytes += jobs[n].size
            while next_turn in waiting:
                accept(next_turn, waiting.pop(next_turn))
                next_turn += 1
            item = jobs[next_turn].file.path.name if next_turn < len(jobs) else None
            yield Progress(stage="fingerprinting", done=done_bytes, total=total_bytes,
                           item=item)
            if pending and (pending_s >= bp.batch_audio_s
                            or time.monotonic() - last_commit >= bp.commit_every_s):
                yield Progress(stage="committing", done=done_bytes, total=total_bytes)
                commit()
        yield Progress(stage="committing", done=done_bytes, total=total_bytes)
        commit()
    except KeyboardInterrupt:
        # Stopped (Ctrl-C, or a signal the shell turned into this): what finished is kept,
        # the rest is left to the next run, which skips what is kept. Files in flight are
        # abandoned (their workers are stopped below), never stored part-done.
        commit()
        raise IndexInterrupted(kept=len(skipped) + len(added) + len(updated),
                               total=len(files)) from None
    finally:
        runner.close()
    if not index.lengths_checked and not unrepaired:
        index.mark_lengths_checked()
    if len(index.segments) > MAX_SEGMENTS:
        yield Progress(stage="compacting")
        index.compact(max_segments=MAX_SEGMENTS // 2)
    changed = set(added) | set(updated)
    # Shows with new episodes, and any whose shared material a stopped run left behind.
    all_shows = {e.show for e in index.episodes.values()}
    shows = {e.show for e in index.episodes.values() if e.episode_id in changed}
    shows |= {s for s in all_shows - shows if index.shared_is_stale(s)}
    if shows:
        yield Progress(stage="finding shared material")
        update_shared(index, shows, shared_params=bp.shared)
    if changed and index.embedder is not None:
        # A large library's embedding search reads inverted lists: made now, not by
        # the first query that needs them (a no-op below 28 h).
        yield Progress(stage="preparing the embedding search")
        embedding_lists(index, MatchParams())
    yield Progress(stage="done", done=total_bytes, total=total_bytes)
    return IndexSummary(
        added=tuple(added), updated=tuple(updated), skipped=tuple(skipped),
        failed=tuple(failed), audio_s=audio_s, elapsed_s=time.perf_counter() - started,
        left_out=found.left_out,
    )


#: ffprobe runs at once while stored episodes are checked (each waits on its start-up).
CHECK_THREADS = 4


def stored_short(rows: Sequence[EpisodeRow]) -> list[str | None]:
    """For each stored episode, why its stored duration cannot be the whole of its source
    file (see :func:`citywok.analysis.decode.duration_shortfall`), or ``None``: it can, or the file
    is gone or unreadable (nothing to compare with)."""

    def one(row: EpisodeRow) -> str | None:
        ep = row.episode
        try:
            info = probe(ep.source_path)
        except MediaError:
            return None
        return duration_shortfall(ep.duration_s, info)

    if not rows:
        return []
    with ThreadPoolExecutor(max_workers=min(CHECK_THREADS, len(rows))) as pool:
        return list(pool.map(one, rows))


def update_shared(index: Index, shows: Iterable[str], *,
                  shared_params: SharedParams | None = None) -> None:
    """Find the material the episodes of each show share, anew, from the stored peaks."""
    sp = shared_params or SharedParams()
    for show in sorted(set(shows)):
        keys = sorted(k for k, e in index.episodes.items() if e.show == show)
        peaks = {}
        for k in keys:
            got = index.episode_peaks(k)
            if got is not None:
                peaks[k] = got
        durations = {k: index.episodes[k].duration_s for k in keys}
        index.replace_shared(keys, find_shared(peaks, durations, params=index.params,
                                                 family=index.nominator, shared=sp),
                             show=show)


def remove_episode(index: Index, episode_id: str) -> Episode:
    """Remove an episode; the shared material of its show is found again without it."""
    removed = index.remove(episode_id)
    update_shared(index, [removed.show])
    return removed

