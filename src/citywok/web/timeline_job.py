"""One timeline as a stream of events: received → (downloading) → decoding → progress and
segment events as the input streams through → result.

The engine's :func:`~citywok.long.timeline.timeline_file_steps` is advanced one step (about
four seconds of input, tens of milliseconds of work) at a time on the job pool, never on
the event loop. When the consumer goes away (a client disconnect cancels it), the step
that is running finishes, the generator is closed (which stops ffmpeg), no further step
starts, and the work folder is removed: the worker is free again within one step.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from pathlib import Path

from citywok.long.timeline import Stretch, Timeline, TimelineEvent, timeline_file_steps
from citywok.result import Progress
from citywok.web import metrics
from citywok.web.core.config import Settings
from citywok.web.jobs import (
    Event,
    Work,
    advance,
    let_go,
    message_name,
    on_thread,
    probe_media,
    received,
    source_name,
)

#: ``progress`` events are sent at most this often (seconds), and on every whole percent.
_PROGRESS_EVERY_S = 1.0


@dataclass
class TimelineJob(Work):
    """One timeline."""

    result: Timeline | None = None


def _probe(path: Path, settings: Settings, name: str | None) -> float | None:
    """Checked as an upload is; the duration its container states (for progress)."""
    duration = probe_media(path, timeout_s=settings.decode_timeout_s,
                           max_duration_s=settings.timeline_max_duration_s,
                           name=name).duration_s
    return duration if duration is not None and 0 < duration < math.inf else None


async def run(job: TimelineJob) -> AsyncGenerator[Event, None]:
    """The events of one timeline; the last is ``result`` (errors are raised)."""
    settings = job.settings
    steps: Generator[TimelineEvent, None, Timeline] | None = None
    started = time.perf_counter()
    try:
        async for event in received(job, settings.timeline_download_limits()):
            yield event
        path = job.path
        assert path is not None
        yield Event("decoding", {})
        total_s: float | None = None
        async for probed in on_thread(job, "decoding", _probe, path, settings,
                                      message_name(job)):
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
            async for step in on_thread(job, "timeline", advance, steps):
                if isinstance(step, Event):
                    yield step
                    continue
                value = step.value
                if isinstance(value, Timeline):
                    result = value
                elif isinstance(value, Stretch):
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
        yield Event("result", result.to_json(file=source_name(job)))
    finally:
        let_go(job, lambda: steps.close() if steps is not None else None)
