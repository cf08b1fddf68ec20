"""One identification as a stream of events: received → (downloading) → decoding →
fingerprinting → matching → result.

The engine's :func:`~citywok.pipeline.identify_file_steps` is advanced one stage at a time
on a worker thread (the event loop never decodes or matches); between stages the job can
be stopped. When the consumer goes away (a client disconnect cancels it), the download
child is killed at once, a stage already running on its thread finishes, the engine's
generator is closed so no further stage starts, and the work folder is removed.

What every job does alike (its input received or downloaded, a stage on the pool with
heartbeats, letting go at the end) is here too, for :mod:`citywok.web.timeline_job`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from citywok.analysis.decode import MediaInfo, probe
from citywok.errors import MediaError, MediaTooLongError, NotMediaError
from citywok.index import Index
from citywok.links.fetch import (
    Downloaded,
    DownloadLimits,
    Link,
    LinkPolicy,
    download,
)
from citywok.pipeline import identify_file_steps
from citywok.result import IdentifyResult, Progress
from citywok.vision.frames import IMAGE_SUFFIXES
from citywok.web import metrics
from citywok.web.admission import Admission, Ticket
from citywok.web.core.config import Settings

T = TypeVar("T")
Y = TypeVar("Y")
R = TypeVar("R")

#: Demuxers an upload or download may be opened with: containers of audio and video,
#: never playlists or other formats that make ffmpeg open further files or URLs.
ALLOWED_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mp3", "ogg", "flac", "wav", "aac", "ac3",
    "eac3", "aiff", "amr", "asf", "avi", "caf", "flv", "mpegts", "mpeg", "w64", "wv", "au",
)


@dataclass(frozen=True)
class Event:
    """A named Server-Sent Event and its JSON data; a ``result`` may carry its response
    model instead (``model``), sent as it is when the answer is one JSON body."""

    name: str
    data: dict[str, Any]
    model: BaseModel | None = None

    def sse(self) -> dict[str, str]:
        if self.model is not None:
            return {"event": self.name, "data": self.model.model_dump_json()}
        return {"event": self.name, "data": json.dumps(self.data)}


@dataclass(frozen=True)
class Upload:
    path: Path
    filename: str
    bytes: int


@dataclass(frozen=True)
class LinkSource:
    link: Link


@dataclass
class Work:
    """What every job holds: its input, the index, and where it runs; it owns
    ``workdir`` and removes it when done."""

    source: Upload | LinkSource
    index: Index
    settings: Settings
    executor: ThreadPoolExecutor
    workdir: Path
    policy: LinkPolicy
    #: The stage running on a thread, if any.
    pending: Future[Any] | None = field(default=None, repr=False)
    #: The input on disk, once received (or downloaded).
    path: Path | None = None


@dataclass
class Job(Work):
    """One identification."""

    result: IdentifyResult | None = None
    #: Its place in the worker's bounded queue (None: it runs without waiting its turn).
    admission: Admission | None = None
    ticket: Ticket | None = None


#: What a picture file starts with (its magic), and the suffix the engine reads it by.
_PICTURE_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, ".png"), (b"\xff\xd8\xff", 0, ".jpg"), (b"WEBP", 8, ".webp"))


def as_picture(path: Path) -> Path:
    """An upload named by what it holds: a picture (PNG, JPEG, WebP, by its first bytes,
    whatever its name says) gets that suffix, so the engine answers it as a screenshot;
    anything else loses a picture suffix it claims, so it is probed as media."""
    with path.open("rb") as fh:
        head = fh.read(16)
    kind = next((suffix for magic, at, suffix in _PICTURE_MAGIC
                 if head[at:at + len(magic)] == magic
                 and (suffix != ".webp" or head[:4] == b"RIFF")), None)
    if kind is not None:
        want = path if path.suffix.lower() in _SAME[kind] else path.with_suffix(kind)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        want = path.with_suffix(path.suffix + ".media")
    else:
        return path
    if want != path:
        path.rename(want)
    return want


_SAME = {".png": (".png",), ".jpg": (".jpg", ".jpeg"), ".webp": (".webp",)}


def probe_media(path: Path, *, timeout_s: float, max_duration_s: float,
                name: str | None = None, allow_silent: bool = False) -> MediaInfo:
    """Check by content (what ffmpeg finds) that ``path`` is audio in an allowed container;
    what ffprobe found.

    Messages start with ``name:`` when given (the uploaded file's own name).
    """
    said = f"{name}: " if name else ""
    try:
        info = probe(path, timeout_s=timeout_s, formats=ALLOWED_DEMUXERS)
    except NotMediaError as exc:
        why = ("the file could not be examined in time" if "examined" in exc.message
               else "not a supported media file with an audio stream")
        raise NotMediaError(f"{said}{why}") from None
    except MediaError:
        raise NotMediaError("ffprobe is not installed on the server") from None
    if info.audio_streams == 0 and not allow_silent:
        raise NotMediaError(f"{said}not a supported media file with an audio stream")
    if info.duration_s is not None and info.duration_s > max_duration_s:
        raise MediaTooLongError(f"{said}the clip lasts {info.duration_s:.0f} s; at most "
                                f"{max_duration_s:g} s are accepted")
    return info


class Done(Generic[T]):
    """The value a thread returned (told apart from the events sent while it ran)."""

    def __init__(self, value: T) -> None:
        self.value = value


def advance(steps: Generator[Y, None, R]) -> Y | R:
    """The engine generator's next step, or what it returned at the end."""
    try:
        return next(steps)
    except StopIteration as stop:
        result: R = stop.value
        return result


async def on_thread(job: Work, stage: str, fn: Callable[..., T], *args: Any,
                    **kwargs: Any) -> AsyncIterator[Event | Done[T]]:
    """Run ``fn`` on the job pool, yielding heartbeats until it returns; its value last.

    The future is kept in ``job.pending`` so that whoever stops the job can wait for the
    thread to let go of what it uses.
    """
    started = time.monotonic()
    cf: Future[T] = job.executor.submit(fn, *args, **kwargs)
    job.pending = cf
    waiting = asyncio.wrap_future(cf)
    while True:
        done, _ = await asyncio.wait({waiting}, timeout=job.settings.sse_heartbeat_s)
        if done:
            break
        yield Event("heartbeat", {"stage": stage,
                                  "elapsed_s": round(time.monotonic() - started, 1)})
    job.pending = None
    yield Done(waiting.result())


async def received(job: Work, limits: DownloadLimits) -> AsyncIterator[Event]:
    """``received``, then for a link ``downloading`` events as it comes; ``job.path`` is
    set at the end."""
    if isinstance(job.source, Upload):
        yield Event("received", {"source": "upload", "filename": job.source.filename,
                                 "bytes": job.source.bytes})
        job.path = job.source.path
        return
    yield Event("received", {"source": "link", "url": job.source.link.url})
    started = time.perf_counter()
    got: Downloaded | None = None
    yield Event("downloading", {"bytes": 0, "total": None, "percent": None})
    async for item in download(job.source.link, job.workdir, policy=job.policy,
                               limits=limits):
        if isinstance(item, Downloaded):
            got = item
        else:
            yield Event("downloading", {"bytes": item.bytes, "total": item.total,
                                        "percent": item.percent})
    assert got is not None
    metrics.STAGE.labels("downloading").observe(time.perf_counter() - started)
    yield Event("downloading", {"bytes": got.bytes, "total": got.bytes, "percent": 100.0})
    job.path = got.path


def source_name(job: Work) -> str:
    """The uploaded file's name, or the link."""
    return job.source.filename if isinstance(job.source, Upload) else job.source.link.url


def message_name(job: Work) -> str | None:
    """The uploaded file's name for messages about it (a link is not repeated in them)."""
    return job.source.filename if isinstance(job.source, Upload) else None


def let_go(job: Work, close: Callable[[], None]) -> None:
    """The job is over: ``close`` (the engine's generator) and remove the work folder, at
    once, or when the stage still running on its thread lets go of them."""
    pending, job.pending = job.pending, None

    def finish(_done: object = None) -> None:
        close()
        shutil.rmtree(job.workdir, ignore_errors=True)

    if pending is None or pending.cancel() or pending.done():
        finish()
    else:
        pending.add_done_callback(finish)


async def run(job: Job) -> AsyncGenerator[Event, None]:
    """The events of one identification; the last is ``result`` (errors are raised)."""
    settings = job.settings
    closed = False
    steps: Generator[Progress, None, IdentifyResult] | None = None
    try:
        async for event in received(job, settings.download_limits()):
            yield event
        path = job.path
        assert path is not None
        if job.admission is not None and job.ticket is not None:
            async for where in job.admission.turn(job.ticket, every_s=settings.sse_heartbeat_s):
                yield Event("queued", {"position": where.position,
                                       "expected_wait_s": where.expected_wait_s})
        yield Event("decoding", {})
        path = job.path = as_picture(path)
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            # A video without sound is answered by its pictures where the index has some.
            async for item in on_thread(job, "decoding", probe_media, path,
                                        timeout_s=settings.decode_timeout_s,
                                        max_duration_s=settings.max_clip_duration_s,
                                        name=message_name(job),
                                        allow_silent=job.index.has_pictures()):
                if isinstance(item, Event):
                    yield item
        steps = identify_file_steps(path, job.index,
                                    max_duration_s=settings.max_clip_duration_s,
                                    timeout_s=settings.decode_timeout_s)
        stage = "decoding"
        while True:
            step: Progress | IdentifyResult | None = None
            async for done in on_thread(job, stage, advance, steps):
                if isinstance(done, Event):
                    yield done
                else:
                    step = done.value
            if isinstance(step, IdentifyResult):
                break
            assert isinstance(step, Progress)
            if step.stage != stage:
                stage = step.stage
                yield Event(stage, {})
        result = step
        for stage_name, key in (("decoding", "decode_ms"), ("fingerprinting", "fingerprint_ms"),
                                ("matching", "match_ms")):
            if key in result.timings_ms:
                metrics.STAGE.labels(stage_name).observe(result.timings_ms[key] / 1000)
        metrics.IDENTIFICATIONS.labels(result.status.value).inc()
        job.result = result
        closed = True
        yield Event("result", result.to_json(file=source_name(job)))
    except asyncio.CancelledError:
        metrics.IDENTIFICATIONS.labels("cancelled").inc()
        raise
    except GeneratorExit:
        if not closed:
            metrics.IDENTIFICATIONS.labels("cancelled").inc()
        raise
    except Exception:
        metrics.IDENTIFICATIONS.labels("error").inc()
        raise
    finally:
        if job.admission is not None and job.ticket is not None:
            # Its turn is over when it is answered or abandoned (a thread still finishing
            # is bounded by the pool itself).
            job.admission.release(job.ticket)
        let_go(job, lambda: steps.close() if steps is not None else None)
