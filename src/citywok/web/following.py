"""Following the episode after a listening session's answer (``"follow": true``).

The session's sound keeps coming; a :class:`citywok.long.live.LiveTracker`, seeded with all
that was heard before the answer (so its times count from the session's start, like
``heard_s``), is fed each new piece, and each event it gives goes to the client as
``{"type": "live", "event": ..., ...}`` (the event's own JSON: ``found``, ``position``,
``lost``, ``listening``). It ends when the client says stop, when its stream ends, after
``listen_follow_max_s``, or after ``listen_follow_idle_s`` with no place followed (a
long pause, the sound turned off, nothing arriving), with
``{"type": "follow_ended", "reason", "heard_s"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from fastapi import WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from citywok.long.live import Found, LiveEvent, LiveTracker, Lost, Position
from citywok.result import Candidate
from citywok.web.capture import LiveAudio

#: Sound handed to the tracker at a time: its events keep their spacing (a position
#: every second of sound) however fast or in what pieces the sound arrives.
FEED_STEP_S = 0.5
#: How often the loop looks at what arrived when nothing wakes it.
TICK_S = 0.25
#: Most sound held decoded and not yet fed (the decoder waits beyond it).
BUFFER_S = 30.0
#: Bytes a follow session may send per second of its limit, besides what the answer took
#: (Opus from a browser is 32-128 kb/s; this allows 256 kb/s).
BYTES_PER_S = 32_000


class FollowEnd(StrEnum):
    """Why following ended."""

    STOPPED = "stopped"  # the client said stop
    ENDED = "ended"  # its stream ended
    LIMIT = "limit"  # listen_follow_max_s passed
    IDLE = "idle"  # no place followed for listen_follow_idle_s
    GONE = "gone"  # the client went away (nothing more is sent)


class FollowSlots:
    """The following sessions one worker holds at once (``listen_follow_max_sessions``):
    each keeps a decoder process and a tracker for up to ``listen_follow_max_s``, so their
    number is bounded. Used from the worker's event loop only (no lock needed). The
    listening sessions themselves are counted by another (``listen_max_sessions``)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    @contextlib.contextmanager
    def hold(self, wanted: bool) -> Iterator[bool]:
        """A slot for the duration of the block when ``wanted`` and one is free; whether
        one was taken."""
        taken = wanted and self.held < self.limit
        if taken:
            self.held += 1
        try:
            yield taken
        finally:
            if taken:
                self.held -= 1


def _length(data: dict[str, Any], c: Candidate) -> dict[str, Any]:
    return {**data, "episode_duration_s": round(c.episode.duration_s, 3)}


def live_message(event: LiveEvent) -> dict[str, Any]:
    """The message for one tracker event: its JSON, each place with its episode's length
    (``episode_duration_s``, as answers carry it, for "10:07 of 22:00")."""
    out: dict[str, Any] = {"type": "live", **event.to_json()}
    if isinstance(event, Found | Position):
        out["match"] = _length(out["match"], event.match)
        out["candidates"] = [_length(d, c) for d, c in
                             zip(out["candidates"], event.candidates, strict=True)]
    elif isinstance(event, Lost):
        out["last"] = _length(out["last"], event.last)
    return out


def feed(tracker: LiveTracker, samples: npt.NDArray[np.float32], *, rate_hz: int,
         step_s: float = FEED_STEP_S) -> list[LiveEvent]:
    """Feed ``samples`` in pieces of ``step_s`` seconds; all the events they caused."""
    step = max(1, int(step_s * rate_hz))
    events: list[LiveEvent] = []
    for i in range(0, len(samples), step):
        events += tracker.feed(samples[i: i + step])
    return events


async def follow(audio: LiveAudio, tracker: LiveTracker,
                 send: Callable[[dict[str, Any]], Awaitable[None]], *, max_s: float,
                 idle_s: float, clock: Callable[[], float] = time.monotonic,
                 executor: Executor | None = None) -> FollowEnd:
    """Feed the session's sound to ``tracker`` and send its events until it ends.

    The tracker gets everything decoded so far first (the sound the answer came from).
    ``max_s`` and ``idle_s`` are wall-clock seconds from here; the last message sent is
    ``follow_ended`` unless the client went away. The tracker's matching runs on
    ``executor`` (the worker's job pool, so it counts against its cap) when given.
    """
    audio.buffer_bytes = max(audio.buffer_bytes, int(BUFFER_S * audio.rate_hz) * 4)
    audio.max_stream_bytes += int(max_s * BYTES_PER_S)
    started = last_place = clock()
    reason: FollowEnd
    try:
        while True:
            samples = audio.take()
            if len(samples):
                work = functools.partial(feed, tracker, samples, rate_hz=audio.rate_hz)
                events = await (run_in_threadpool(work) if executor is None else
                                asyncio.get_running_loop().run_in_executor(executor, work))
                for event in events:
                    if isinstance(event, Found | Position):
                        last_place = clock()
                    await send(live_message(event))
            now = clock()
            if audio.stopped:
                reason = FollowEnd.STOPPED
            elif audio.ended and not audio.samples().size:
                reason = FollowEnd.ENDED
            elif now - started >= max_s:
                reason = FollowEnd.LIMIT
            elif now - last_place >= idle_s:
                reason = FollowEnd.IDLE
            else:
                await audio.wait(TICK_S, for_sound=True)
                continue
            break
    except WebSocketDisconnect:
        return FollowEnd.GONE
    await send({"type": "follow_ended", "reason": reason.value,
                "heard_s": round(tracker.heard_s, 2)})
    return reason
