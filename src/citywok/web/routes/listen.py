"""``WS /api/v1/listen``: a microphone's sound streamed in, the answer out as soon as it
is sure.

The client sends what its recorder makes (WebM/Opus from a browser's MediaRecorder, or
any container ffmpeg reads from a pipe) as binary messages while it records. The server
decodes it as it comes (ffmpeg reading a pipe), and about once a second matches all that
it has heard so far. It answers at once when the evidence is conclusive (a match at the
set confidence, or the same episodes ambiguous twice), and after ``listen_max_s`` of
sound it answers whatever it has (often "not found").

Messages, as JSON text:

- client → server: ``{"type": "start", "follow": false}`` (optional, first), binary audio
  chunks, then ``{"type": "stop"}`` to answer with what was heard;
- server → client: ``{"type": "listening", "max_s"}``, ``{"type": "heard", "heard_s",
  "status"}`` after each look, ``{"type": "result", "heard_s", "answer": {...}}`` (the
  answer of ``POST /identify``, share link included), ``{"type": "error", "status",
  "error": {"code", "message"}}``.

Following (``"follow": true``): after a match the session is meant to keep going and
report ``{"type": "following", "episode_id", "position_s"}`` as the scene plays on; that
needs the live tracker (``citywok.live``). Without it the server says
``{"type": "follow_unavailable"}`` after the answer and closes.

One session counts as one identification against the caller's limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from citywok.decode import ffmpeg_binary
from citywok.errors import CityWokError, MediaError
from citywok.index import Index
from citywok.pipeline import identify_samples
from citywok.result import IdentifyResult, Status
from citywok.web import metrics
from citywok.web.answers import publish
from citywok.web.errors import ApiError, describe, error_body
from citywok.web.jobs import ALLOWED_DEMUXERS
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


@dataclass
class Heard:
    """The decoded sound of a session so far (float32 mono at the index's rate)."""

    rate_hz: int
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False

    #: Sound past this is not used (the decoder may run a little ahead of the limit).
    max_s: float = float("inf")

    @property
    def seconds(self) -> float:
        return min(self.max_s, len(self.data) / 4 / self.rate_hz)

    def samples(self) -> np.ndarray[Any, np.dtype[np.float32]]:
        usable = min(len(self.data) - len(self.data) % 4, int(self.seconds * self.rate_hz) * 4)
        return np.frombuffer(bytes(self.data[:usable]), dtype=np.float32).copy()


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


async def _decoder(rate_hz: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
        "-protocol_whitelist", "pipe", "-format_whitelist", ",".join(ALLOWED_DEMUXERS),
        # Start on the first few kB, not after probing seconds of a live stream.
        "-probesize", "32768", "-analyzeduration", "0", "-fflags", "nobuffer",
        "-i", "pipe:0", "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(rate_hz),
        "-f", "f32le", "pipe:1",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)


async def _pump(proc: asyncio.subprocess.Process, heard: Heard, max_bytes: int) -> None:
    assert proc.stdout is not None
    while len(heard.data) < max_bytes:
        chunk = await proc.stdout.read(1 << 16)
        if not chunk:
            break
        heard.data += chunk
    heard.ended = True


async def _send_error(ws: WebSocket, exc: BaseException) -> None:
    status, code, message, headers = describe(exc)
    payload: dict[str, Any] = {"type": "error", "status": status, **error_body(code, message)}
    if headers and "Retry-After" in headers:
        payload["retry_after_s"] = int(headers["Retry-After"])
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps(payload))


def follower(index: Index, result: IdentifyResult) -> Callable[[np.ndarray[Any, Any]], Any] | None:
    """The live tracker that keeps following a match, once ``citywok.live`` exists."""
    try:
        import citywok.live  # noqa: F401  # the timeline helper's tracker
    except ImportError:
        return None
    return None  # wired when the tracker's interface lands on main


@router.websocket("/listen")
async def listen(ws: WebSocket) -> None:
    """Stream a recording; the answer comes as soon as it is sure (see the module doc)."""
    services: Services = ws.app.state.services
    settings = services.settings
    if not _same_origin(ws, settings.cors_origins):
        await ws.close(code=_CLOSE_POLICY)
        return
    await ws.accept()
    proc: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = None
    receive: asyncio.Task[MutableMapping[str, Any]] | None = None
    try:
        token = ws.headers.get("x-api-key") or ws.headers.get("authorization", "").removeprefix(
            "Bearer ").strip() or None
        key = await run_in_threadpool(services.keys.verify, token) if token else None
        if token and key is None:
            raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked")
        quota = await services.limiter.hit(key=key, ip=client_ip(ws, services.trusted_proxies))
        if not quota.allowed:
            metrics.RATE_LIMITED.labels("key" if key else "anonymous").inc()
            raise RateLimiter.refusal(quota, keyed=key is not None)
        index = services.index.get()
        heard = Heard(rate_hz=index.params.sample_rate_hz, max_s=settings.listen_max_s)
        max_bytes = int(settings.listen_max_s * heard.rate_hz * 4)
        proc = await _decoder(heard.rate_hz)
        pump = asyncio.ensure_future(_pump(proc, heard, max_bytes))
        await ws.send_text(json.dumps({"type": "listening", "max_s": settings.listen_max_s}))
        follow = False
        stopped = False
        sent = 0
        previous: IdentifyResult | None = None
        result: IdentifyResult | None = None
        looked_at = 0.0
        deadline = time.monotonic() + settings.listen_max_s * 2 + 10
        while True:
            if receive is None and not stopped:
                receive = asyncio.ensure_future(ws.receive())
            waiting: set[asyncio.Future[Any]] = {pump} if not pump.done() else set()
            if receive is not None:
                waiting.add(receive)
            if waiting:
                await asyncio.wait(waiting, timeout=settings.listen_check_interval_s / 2,
                                   return_when=asyncio.FIRST_COMPLETED)
            if receive is not None and receive.done():
                message = receive.result()
                receive = None
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1000))
                if message.get("bytes"):
                    sent += len(message["bytes"])
                    if sent > MAX_STREAM_BYTES:
                        raise MediaError("the recording is larger than this server accepts")
                    if proc.stdin is not None and not proc.stdin.is_closing():
                        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                            proc.stdin.write(message["bytes"])
                            await proc.stdin.drain()
                elif message.get("text"):
                    try:
                        said = json.loads(message["text"])
                    except ValueError:
                        said = {}
                    if said.get("type") == "start":
                        follow = bool(said.get("follow"))
                    elif said.get("type") == "stop":
                        stopped = True
                        if proc.stdin is not None:
                            proc.stdin.close()
            over = heard.seconds >= settings.listen_max_s or heard.ended
            last = over or (stopped and pump.done())
            due = heard.seconds - looked_at >= settings.listen_check_interval_s
            if heard.seconds >= FIRST_LOOK_S and (due or last) and heard.seconds > looked_at:
                looked_at = heard.seconds
                previous, result = result, await run_in_threadpool(
                    identify_samples, heard.samples(), index)
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
        answer = await publish(ws, services, index, result, file=None)
        await ws.send_text(json.dumps({"type": "result", "heard_s": round(looked_at, 2),
                                       "answer": answer}))
        # The hook for following: the tracker keeps reporting while the sound goes on.
        if follow and result.status is Status.MATCH and follower(index, result) is None:
            await ws.send_text(json.dumps({"type": "follow_unavailable"}))
        await ws.close()
    except WebSocketDisconnect:
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
        for task in (pump, receive):
            if task is not None:
                task.cancel()
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
