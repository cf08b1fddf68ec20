"""``WS /api/v1/listen``: a microphone's sound streamed in, the answer out as soon as it
is sure, and (when asked) the episode followed as it plays on.

The client sends what its recorder makes (WebM/Opus from a browser's MediaRecorder, or
any container ffmpeg reads from a pipe) as binary messages while it records. The server
decodes it as it comes (:mod:`citywok.web.capture`), and about once a second matches
all that it has heard so far. It answers at once when the evidence is conclusive (a match
at the set confidence, or the same episodes ambiguous twice), and after ``listen_max_s``
of sound it answers whatever it has (often "not found").

Messages, as JSON text:

- client → server: ``{"type": "start", "follow": false}`` (optional, first), binary audio
  chunks, then ``{"type": "stop"}`` to answer with what was heard (or, while following,
  to end it);
- server → client: ``{"type": "listening", "max_s"}``, ``{"type": "heard", "heard_s",
  "status"}`` after each look, ``{"type": "result", "heard_s", "answer": {...},
  "follow": ...}`` (the answer of ``POST /identify``, share link included; ``follow`` is
  ``{"max_s", "idle_s"}`` when following comes next, else ``null``, with
  ``"follow_refused": "busy"`` when following was asked for but the worker already holds
  ``listen_follow_max_sessions``), ``{"type": "error",
  "status", "error": {"code", "message"}}``.

Following (``"follow": true``, and the answer a match or ambiguous): the session goes on
after the answer, the sound goes to a live tracker, and its events come as
``{"type": "live", "event": "found" | "position" | "lost" | "listening", ...}`` until
``{"type": "follow_ended", "reason", "heard_s"}`` (see :mod:`citywok.web.following`);
``listen_max_s`` bounds only the identification, ``listen_follow_max_s`` the following.

One session, following included, counts as one identification against the caller's limit.
A worker holds at most ``listen_max_sessions`` sessions (each has its own decoder); past
it a new one gets an error with status 503 (``busy``). Their matches run on the worker's
job pool, under ``max_concurrent_jobs`` with every other identification.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from citywok.errors import CityWokError, MediaError
from citywok.long.live import LiveTracker
from citywok.pipeline import identify_samples
from citywok.result import IdentifyResult, Status
from citywok.web import metrics
from citywok.web.answers import publish
from citywok.web.capture import LiveAudio
from citywok.web.deps import refuse_empty_key, verify_api_key
from citywok.web.errors import ApiError, describe, error_body
from citywok.web.following import FollowEnd, follow
from citywok.web.ratelimit import RateLimiter
from citywok.web.security import client_ip
from citywok.web.state import Services

log = logging.getLogger("citywok.web")
router = APIRouter(tags=["identify"])

#: Sound heard before the first look: less is never conclusive.
FIRST_LOOK_S = 2.0
#: Ambiguous answers are given once they held this long (and twice in a row).
AMBIGUOUS_AFTER_S = 4.0
#: Most bytes one session may send (Opus at 32 kb/s makes 0.5 MB in two minutes).
MAX_STREAM_BYTES = 16_000_000
_CLOSE_POLICY = 1008
#: Seconds a session refused as busy is told to wait (sessions last up to listen_max_s).
BUSY_RETRY_S = 5


def conclusive(result: IdentifyResult, previous: IdentifyResult | None, heard_s: float, *,
               confidence: float) -> bool:
    """Whether an answer on ``heard_s`` seconds is worth giving now."""
    if result.status is Status.MATCH and result.match is not None:
        return result.match.confidence >= confidence
    if result.status is Status.AMBIGUOUS and previous is not None:
        same = ({c.episode.episode_id for c in result.candidates}
                == {c.episode.episode_id for c in previous.candidates})
        return previous.status is Status.AMBIGUOUS and same and heard_s >= AMBIGUOUS_AFTER_S
    return False


def _same_origin(ws: WebSocket, allowed: list[str]) -> bool:
    """Browsers send Origin on WebSockets and CORS does not apply: check it here."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser
    if origin in allowed or "*" in allowed:
        return True
    return urlsplit(origin).netloc.lower() == ws.headers.get("host", "").lower()


async def _send_error(ws: WebSocket, exc: BaseException) -> None:
    status, code, message, headers = describe(exc)
    payload: dict[str, Any] = {"type": "error", "status": status, **error_body(code, message)}
    if headers and "Retry-After" in headers:
        payload["retry_after_s"] = int(headers["Retry-After"])
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps(payload))


@router.websocket("/listen")
async def listen(ws: WebSocket) -> None:
    """Stream a recording; the answer comes as soon as it is sure (see the module doc)."""
    services: Services = ws.app.state.services
    settings = services.settings
    if not _same_origin(ws, settings.cors_origins):
        await ws.close(code=_CLOSE_POLICY)
        return
    await ws.accept()
    audio: LiveAudio | None = None
    answered = False
    slot = contextlib.ExitStack()
    try:
        refuse_empty_key(ws.headers)
        token = ws.headers.get("x-api-key") or ws.headers.get("authorization", "").removeprefix(
            "Bearer ").strip() or None
        ip = client_ip(ws, services.trusted_proxies)
        key = await verify_api_key(services, token, ip) if token else None
        # Before the quota is counted: a session refused for want of room costs nothing.
        if not slot.enter_context(services.listen_slots.hold(True)):
            raise ApiError(503, "busy", "too many listening sessions on this server; try "
                           "again in a moment", headers={"Retry-After": str(BUSY_RETRY_S)})
        quota = await services.limiter.hit(key=key, ip=ip)
        if not quota.allowed:
            metrics.RATE_LIMITED.labels("key" if key else "anonymous").inc()
            raise RateLimiter.refusal(quota, keyed=key is not None)
        index = services.index.get()
        rate = index.params.sample_rate_hz
        # The decoder may run a little ahead of the limit; what is past it is not used.
        audio = LiveAudio(ws, rate_hz=rate, buffer_s=settings.listen_max_s,
                          max_stream_bytes=MAX_STREAM_BYTES)
        await audio.start()
        await ws.send_text(json.dumps({"type": "listening", "max_s": settings.listen_max_s}))
        previous: IdentifyResult | None = None
        result: IdentifyResult | None = None
        looked_at = 0.0
        deadline = time.monotonic() + settings.listen_max_s * 2 + 10
        while True:
            await audio.wait(settings.listen_check_interval_s / 2)
            heard_s = min(audio.seconds, settings.listen_max_s)
            last = heard_s >= settings.listen_max_s or audio.ended
            due = heard_s - looked_at >= settings.listen_check_interval_s
            if heard_s >= FIRST_LOOK_S and (due or last) and heard_s > looked_at:
                looked_at = heard_s
                # On the job pool: a session's matches wait their turn with uploads'.
                previous, result = result, await asyncio.get_running_loop().run_in_executor(
                    services.executor, identify_samples, audio.samples(max_s=heard_s), index)
                await ws.send_text(json.dumps({"type": "heard", "heard_s": round(looked_at, 2),
                                               "status": result.status.value}))
                if conclusive(result, previous, looked_at,
                              confidence=settings.listen_conclusive_confidence):
                    break
            if last or time.monotonic() > deadline:
                break
        if result is None:
            raise MediaError("too little sound was heard to identify anything")
        metrics.IDENTIFICATIONS.labels(result.status.value).inc()
        answered = True
        answer = (await publish(ws, services, result, file=None)).model_dump(mode="json")
        wanted = (audio.follow and not audio.stopped and not audio.ended
                  and result.status in (Status.MATCH, Status.AMBIGUOUS))
        with services.follow_slots.hold(wanted) as following:
            message: dict[str, Any] = {
                "type": "result", "heard_s": round(looked_at, 2), "answer": answer,
                "follow": {"max_s": settings.listen_follow_max_s,
                           "idle_s": settings.listen_follow_idle_s} if following else None}
            if wanted and not following:
                message["follow_refused"] = "busy"
                log.info("listen: answered without following (all following slots held)",
                         extra={"held": services.follow_slots.held})
            await ws.send_text(json.dumps(message))
            if following:
                started = time.monotonic()
                end = await follow(audio, LiveTracker(index), _sender(ws),
                                   max_s=settings.listen_follow_max_s,
                                   idle_s=settings.listen_follow_idle_s,
                                   executor=services.executor)
                log.info("listen: following ended", extra={
                    "reason": end.value, "followed_s": round(time.monotonic() - started, 1)})
                if end is FollowEnd.GONE:
                    return
        await ws.close()
    except WebSocketDisconnect:
        if not answered:
            metrics.IDENTIFICATIONS.labels("cancelled").inc()
    except CityWokError as exc:
        await _send_error(ws, exc)
        with contextlib.suppress(Exception):
            await ws.close()
    except Exception as exc:
        if not isinstance(exc, RuntimeError) or "close" not in str(exc):
            status = describe(exc)[0]
            if status >= 500:
                log.error("listen failed", exc_info=exc)
            await _send_error(ws, exc)
        with contextlib.suppress(Exception):
            await ws.close()
    finally:
        if audio is not None:
            await audio.aclose()
        slot.close()


def _sender(ws: WebSocket) -> Callable[[dict[str, Any]], Awaitable[None]]:
    async def send(message: dict[str, Any]) -> None:
        await ws.send_text(json.dumps(message))
    return send
