"""One timeline as a stream of events: received → (downloading) → decoding → progress and
segment events as the input streams through → result.

The engine's :func:`~citywok.timeline.timeline_file_steps` is advanced one step (about
four seconds of input, tens of milliseconds of work) at a time on the job pool, never on
the event loop. When the consumer goes away (a client disconnect cancels it), the step
that is running finishes, the generator is closed (which stops ffmpeg), no further step
starts, and the work folder is removed: the worker is free again within one step.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from citywok.decode import media_duration_s
from citywok.index import Index
from citywok.result import Progress
from citywok.timeline import Segment, Timeline, TimelineEvent, timeline_file_steps
from citywok.web import metrics
from citywok.web.core.config import Settings
from citywok.web.fetch import Downloaded, LinkPolicy, download
from citywok.web.jobs import Event, LinkSource, Upload, probe_media

T = TypeVar("T")
#: ``progress`` events are sent at most this often (seconds), and on every whole percent.
_PROGRESS_EVERY_S = 1.0


@dataclass
class TimelineJob:
    """Everything one timeline needs; owns ``workdir`` and removes it when done."""

    source: Upload | LinkSource
    index: Index
    settings: Settings
    executor: ThreadPoolExecutor
    workdir: Path
    policy: LinkPolicy
    result: Timeline | None = None
    #: The step running on a thread, if any.
    pending: Future[Any] | None = field(default=None, repr=False)


class _Done:
    def __init__(self, value: Any) -> None:
        self.value = value


async def _on_thread(job: TimelineJob, stage: str, fn: Callable[..., T], *args: Any,
                     ) -> AsyncIterator[Event | _Done]:
    """Run ``fn`` on the job pool, with heartbeats while it runs; the result last."""
    started = time.monotonic()
    cf: Future[T] = job.executor.submit(fn, *args)
    job.pending = cf
    waiting = asyncio.wrap_future(cf)
    while True:
        done, _ = await asyncio.wait({waiting}, timeout=job.settings.sse_heartbeat_s)
        if done:
            break
        yield Event("heartbeat", {"stage": stage,
                                  "elapsed_s": round(time.monotonic() - started, 1)})
    job.pending = None
    yield _Done(waiting.result())


def _advance(steps: Generator[TimelineEvent, None, Timeline]) -> TimelineEvent | Timeline:
    try:
        return next(steps)
    except StopIteration as stop:
        result: Timeline = stop.value
        return result


def _probe(path: Path, settings: Settings) -> float | None:
    probe_media(path, timeout_s=settings.decode_timeout_s,
                max_duration_s=settings.timeline_max_duration_s)
    return media_duration_s(path, timeout_s=settings.decode_timeout_s)


async def run(job: TimelineJob) -> AsyncGenerator[Event, None]:
    """The events of one timeline; the last is ``result`` (errors are raised)."""
    settings = job.settings
    steps: Generator[TimelineEvent, None, Timeline] | None = None

    def finish(_done: object = None) -> None:
        if steps is not None:
            steps.close()
        shutil.rmtree(job.workdir, ignore_errors=True)

    started = time.perf_counter()
    try:
        if isinstance(job.source, Upload):
            name = job.source.filename
            path = job.source.path
            yield Event("received", {"source": "upload", "filename": name,
                                     "bytes": job.source.bytes})
        else:
            name = job.source.link.url
            yield Event("received", {"source": "link", "url": name})
            got: Downloaded | None = None
            yield Event("downloading", {"bytes": 0, "total": None, "percent": None})
            async for item in download(job.source.link, job.workdir, policy=job.policy,
                                       limits=settings.timeline_download_limits()):
                if isinstance(item, Downloaded):
                    got = item
                else:
                    yield Event("downloading", {"bytes": item.bytes, "total": item.total,
                                                "percent": item.percent})
            assert got is not None
            yield Event("downloading", {"bytes": got.bytes, "total": got.bytes,
                                        "percent": 100.0})
            path = got.path

        yield Event("decoding", {})
        total_s: float | None = None
        async for probed in _on_thread(job, "decoding", _probe, path, settings):
            if isinstance(probed, Event):
                yield probed
            else:
                total_s = probed.value
        steps = timeline_file_steps(path, job.index,
                                    max_duration_s=settings.timeline_max_duration_s,
                                    timeout_s=settings.timeline_timeout_s, total_s=total_s)
        found = 0
        last_sent, last_percent = 0.0, -1
        result: Timeline | None = None
        while result is None:
            async for step in _on_thread(job, "timeline", _advance, steps):
                if isinstance(step, Event):
                    yield step
                    continue
                value = step.value
                if isinstance(value, Timeline):
                    result = value
                elif isinstance(value, Segment):
                    yield Event("segment", {"index": found, **value.to_json()})
                    found += 1
                elif isinstance(value, Progress) and value.stage == "timeline":
                    percent = (int(100 * value.done / value.total) if value.total else None)
                    now = time.monotonic()
                    if (now - last_sent >= _PROGRESS_EVERY_S
                            or (percent is not None and percent > last_percent)):
                        last_sent, last_percent = now, percent if percent is not None else -1
                        yield Event("progress", {
                            "done_s": round(value.done, 1),
                            "total_s": round(value.total, 1) if value.total else None,
                            "percent": min(100, percent) if percent is not None else None})
        metrics.STAGE.labels("timeline").observe(time.perf_counter() - started)
        job.result = result
        yield Event("result", result.to_json(file=name))
    finally:
        pending, job.pending = job.pending, None
        if pending is None or pending.cancel() or pending.done():
            finish()
        else:
            # A step is still running on its thread: close up when it lets go.
            pending.add_done_callback(finish)
