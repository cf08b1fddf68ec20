"""The sound of a listening session (``WS /api/v1/listen``): what the client records comes
in as binary messages, goes through an ffmpeg pipe, and comes out as mono float32 samples
at the index's rate, as fast as it arrives. (The service's capture, as
:mod:`citywok.long.capture` is the CLI's: where live audio comes from.)

:class:`LiveAudio` owns the decoder, the task that reads it, and the one pending
``receive`` of the WebSocket, so that the identification and the following after it read
the same stream one after the other. It holds only what was decoded and not yet taken:
the identification leaves everything in place (it looks at all that was heard), the
following takes each new piece as it comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import MutableMapping
from typing import Any

import numpy as np
import numpy.typing as npt
from fastapi import WebSocket, WebSocketDisconnect

from citywok.analysis.decode import ffmpeg_binary
from citywok.errors import MediaError
from citywok.web.jobs import ALLOWED_DEMUXERS

_SAMPLE_BYTES = 4  # float32


def decoder_command(rate_hz: int) -> list[str]:
    """ffmpeg reading a recording from a pipe as it is made, writing f32le mono.

    ``-probesize``/``-analyzeduration`` let it start on the first few kB. No
    ``-fflags nobuffer``: on the page's WebM/Opus it dropped the first 60 ms (three Opus
    frames) and answered no sooner (see tests/web/test_listen_follow.py).
    """
    return [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error",
            "-threads", "1", "-protocol_whitelist", "pipe",
            "-format_whitelist", ",".join(ALLOWED_DEMUXERS),
            "-probesize", "32768", "-analyzeduration", "0",
            "-i", "pipe:0", "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(rate_hz),
            "-f", "f32le", "pipe:1"]


class LiveAudio:
    """One session's stream: client messages in, decoded samples out.

    ``buffer_s``: most decoded sound held untaken; the decoder waits (and so, through the
    pipe, the client's chunks) while that much is held. ``max_stream_bytes``: most bytes
    the client may send in all (raised for a session that goes on following).
    """

    def __init__(self, ws: WebSocket, *, rate_hz: int, buffer_s: float,
                 max_stream_bytes: int) -> None:
        self.ws = ws
        self.rate_hz = rate_hz
        self.buffer_bytes = max(_SAMPLE_BYTES, int(buffer_s * rate_hz) * _SAMPLE_BYTES)
        self.max_stream_bytes = max_stream_bytes
        #: The client asked to keep following after the answer (``"follow": true``).
        self.follow = False
        #: The client said "stop" (no more sound will come).
        self.stopped = False
        #: The decoder's output ended (the client stopped, or its stream ended).
        self.ended = False
        self.received_bytes = 0
        self._data = bytearray()
        self._taken = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._receive: asyncio.Future[MutableMapping[str, Any]] | None = None
        #: Set when sound was decoded since the last :meth:`take`, and at the end.
        self._arrived = asyncio.Event()
        self._done = asyncio.Event()
        self._room = asyncio.Event()

    # -- the decoder ----------------------------------------------------------------------

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *decoder_command(self.rate_hz), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        self._pump = asyncio.ensure_future(self._read_decoder())

    async def _read_decoder(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while True:
            while len(self._data) >= self.buffer_bytes:
                self._room.clear()
                await self._room.wait()
            chunk = await self._proc.stdout.read(1 << 16)
            if not chunk:
                break
            self._data += chunk
            self._arrived.set()
        self.ended = True
        self._arrived.set()
        self._done.set()

    @property
    def seconds(self) -> float:
        """Seconds decoded since the start (taken or not)."""
        return (self._taken + len(self._data)) // _SAMPLE_BYTES / self.rate_hz

    def samples(self, *, max_s: float = float("inf")) -> npt.NDArray[np.float32]:
        """What was decoded and not taken, up to ``max_s`` seconds; nothing is taken."""
        usable = len(self._data) - len(self._data) % _SAMPLE_BYTES
        if max_s != float("inf"):
            usable = min(usable, int(max_s * self.rate_hz) * _SAMPLE_BYTES)
        return np.frombuffer(bytes(self._data[:usable]), dtype=np.float32).copy()

    def take(self) -> npt.NDArray[np.float32]:
        """Everything decoded and not taken yet, which is then let go."""
        usable = len(self._data) - len(self._data) % _SAMPLE_BYTES
        out = np.frombuffer(bytes(self._data[:usable]), dtype=np.float32).copy()
        del self._data[:usable]
        self._taken += usable
        self._room.set()
        if not self.ended:
            self._arrived.clear()
        return out

    # -- the client -----------------------------------------------------------------------

    async def wait(self, timeout_s: float, *, for_sound: bool = False) -> None:
        """Wait up to ``timeout_s`` for a client message (handled here), the decoder's end,
        and with ``for_sound`` for sound decoded since the last :meth:`take`.

        Raises :class:`WebSocketDisconnect` when the client goes, :class:`MediaError`
        when it sends more than ``max_stream_bytes``.
        """
        if self._receive is None and not self.stopped:
            self._receive = asyncio.ensure_future(self.ws.receive())
        event = self._arrived if for_sound else self._done
        arrived = asyncio.ensure_future(event.wait())
        waiting: set[asyncio.Future[Any]] = {arrived}
        if self._receive is not None:
            waiting.add(self._receive)
        try:
            await asyncio.wait(waiting, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            arrived.cancel()
        if self._receive is not None and self._receive.done():
            message = self._receive.result()
            self._receive = None
            await self._handle(message)

    async def _handle(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("bytes"):
            self.received_bytes += len(message["bytes"])
            if self.received_bytes > self.max_stream_bytes:
                raise MediaError("the recording is larger than this server accepts")
            stdin = self._proc.stdin if self._proc is not None else None
            if stdin is not None and not stdin.is_closing():
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    stdin.write(message["bytes"])
                    await stdin.drain()
        elif message.get("text"):
            try:
                said = json.loads(message["text"])
            except ValueError:
                return
            if not isinstance(said, dict):
                return
            if said.get("type") == "start":
                self.follow = bool(said.get("follow"))
            elif said.get("type") == "stop":
                self.stop()

    def stop(self) -> None:
        """No more sound: the decoder finishes what it has and ends."""
        self.stopped = True
        if self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.close()

    async def aclose(self) -> None:
        for task in (self._pump, self._receive):
            if task is not None:
                task.cancel()
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        # Read the pipes to their end here, on this loop: left to the collector, they
        # would be closed after the loop is gone (an "Event loop is closed" warning).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.communicate(), timeout=5)
        await proc.wait()
