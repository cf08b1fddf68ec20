"""Live audio as it arrives: a microphone, or a stream on standard input, decoded by the
ffmpeg binary to mono float32 in small chunks (for ``citywok listen``).

Unlike :func:`citywok.analysis.decode.iter_decode` there is no end to wait for and no duration
cap: chunks come as fast as the source gives them, until it ends or the caller stops.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from citywok.analysis.decode import STDERR_KEEP_BYTES, ffmpeg_binary, read_bounded
from citywok.errors import MediaError

#: ffmpeg's input format for a microphone, per platform.
MICROPHONE_BACKENDS = {"linux": "pulse", "darwin": "avfoundation", "win32": "dshow"}


def microphone_input(*, backend: str | None = None, device: str | None = None) -> list[str]:
    """ffmpeg input arguments for a microphone (``pulse``/``alsa`` ``default`` on Linux,
    the first ``avfoundation`` device on macOS, ``dshow`` on Windows)."""
    fmt = backend or MICROPHONE_BACKENDS.get(sys.platform, "alsa")
    name = device or {"avfoundation": ":0", "dshow": "audio=default"}.get(fmt, "default")
    return ["-f", fmt, "-i", name]


def stdin_input() -> list[str]:
    """ffmpeg input arguments for a stream on standard input (any container it reads)."""
    return ["-i", "pipe:0"]


def live_chunks(input_args: list[str], *, sample_rate_hz: int, chunk_s: float = 0.25,
                ) -> Iterator[npt.NDArray[np.float32]]:
    """Decoded chunks of about ``chunk_s`` seconds from ffmpeg run on ``input_args``.

    Standard input is passed to ffmpeg (for ``pipe:0``). Raises :class:`MediaError`
    when ffmpeg cannot open the source; closing the iterator stops ffmpeg.
    """
    cmd = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error",
           *input_args, "-vn", "-ac", "1", "-ar", str(sample_rate_hz), "-f", "f32le",
           "pipe:1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    # Drained as it comes, with a bound: a stream that makes ffmpeg complain for hours
    # must neither fill memory nor block it on a full pipe (and stop the sound).
    said: list[bytes] = []
    stderr = proc.stderr
    drain = threading.Thread(target=lambda: said.append(
        read_bounded(stderr, limit=STDERR_KEEP_BYTES)), daemon=True)
    drain.start()
    want = max(4, int(chunk_s * sample_rate_hz) * 4)
    got_any = False
    pending = b""
    try:
        while True:
            data = os.read(proc.stdout.fileno(), want)
            pending += data
            if len(pending) >= want or not data:
                usable = len(pending) - len(pending) % 4
                if usable:
                    got_any = True
                    yield np.frombuffer(pending[:usable], dtype=np.float32).copy()
                    pending = pending[usable:]
            if not data:
                break
        code = proc.wait()
        drain.join(timeout=5)  # ffmpeg has gone: its stderr ends at once
        if code != 0 and not got_any:
            message = b"".join(said).decode("utf-8", "replace").strip().splitlines()
            raise MediaError("the audio source could not be opened"
                             + (f" ({message[-1][:160]})" if message else ""))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
