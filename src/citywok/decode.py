"""Any media file → mono float32 at the analysis rate, via the ffmpeg binary.

ffmpeg runs as a child process writing raw samples to a pipe. A reader thread drains the
pipe into a bounded queue, so ffmpeg keeps decoding on one core while the caller
fingerprints the previous chunk on another (a bare 64 KiB pipe would make them take
turns). A long file is never held whole, and a watchdog kills the child on timeout so a
pathological file cannot hang the caller.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from citywok.errors import (
    CorruptMediaError,
    EmptyMediaError,
    MediaError,
    MediaTooLongError,
    NotMediaError,
    SilentMediaError,
)

#: Samples below this magnitude everywhere mean "silence" (about -80 dBFS).
SILENCE_PEAK = 1e-4
_READ_BYTES = 1 << 20
#: Decoded blocks buffered ahead of the caller (at most 64 MiB).
_QUEUE_BLOCKS = 64
_NOT_MEDIA_HINTS = (
    "invalid data found",
    "matches no streams",
    "does not contain any stream",
    "could not find codec parameters",
    "unknown format",
    "no such file",
    "output file does not contain any stream",
    "failed to find",
    ": invalid argument",
    "end of file",
)


def ffmpeg_binary() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise MediaError("ffmpeg is not installed; install it (e.g. apt-get install ffmpeg)")
    return path


def input_url(path: str | Path) -> str:
    """How a local file is named to ffmpeg: always through its file protocol, by absolute
    path, so that a file called ``pipe:0``, ``-``, ``concat:a|b`` or ``-i`` is read as the
    file it is, never as stdin, another protocol or an option."""
    return "file:" + os.path.abspath(path)


def _command(path: str | Path, sample_rate_hz: int) -> list[str]:
    return [
        ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
        # A hostile file (playlist, concat list) must not make ffmpeg open anything else.
        "-protocol_whitelist", "file",
        "-i", input_url(path), "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1",
        "-ar", str(sample_rate_hz), "-f", "f32le", "pipe:1",
    ]


@dataclass(frozen=True)
class MediaInfo:
    """What ffprobe finds in a file without decoding it."""

    #: ffmpeg's name for the container (``matroska,webm``, ``wav`` ...).
    format_name: str
    #: The container's duration, when it states one.
    duration_s: float | None
    audio_streams: int


def probe(path: str | Path, *, timeout_s: float = 10.0,
          formats: Sequence[str] | None = None) -> MediaInfo:
    """Read a file's container and streams with ffprobe (nothing is decoded).

    ``formats`` limits the demuxers it may be opened with. Raises :class:`NotMediaError`
    when ffprobe cannot read it (or not within ``timeout_s``).
    """
    name = Path(path).name
    exe = shutil.which("ffprobe")
    if exe is None:
        raise MediaError("ffprobe is not installed; install ffmpeg (e.g. apt-get install "
                         "ffmpeg)")
    cmd = [exe, "-v", "error", "-protocol_whitelist", "file"]
    if formats:
        cmd += ["-format_whitelist", ",".join(formats)]
    cmd += ["-show_entries", "format=format_name,duration:stream=codec_type", "-of", "json",
            input_url(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise NotMediaError(f"{name}: could not be examined within {timeout_s:g} s") from None
    try:
        info = json.loads(proc.stdout or b"{}") if proc.returncode == 0 else {}
    except ValueError:
        info = {}
    fmt = info.get("format") or {}
    if not fmt.get("format_name"):
        raise NotMediaError(f"{name}: not a media file ffmpeg can read")
    try:
        duration: float | None = float(fmt["duration"])
    except (KeyError, TypeError, ValueError):
        duration = None
    audio = sum(1 for st in info.get("streams") or [] if st.get("codec_type") == "audio")
    return MediaInfo(format_name=str(fmt["format_name"]), duration_s=duration,
                     audio_streams=audio)


def _classify(stderr: str, name: str) -> MediaError:
    text = stderr.lower()
    if any(h in text for h in _NOT_MEDIA_HINTS):
        return NotMediaError(f"{name}: not a media file with an audio stream")
    first = next((ln.strip() for ln in stderr.splitlines() if ln.strip()), "decoder error")
    return CorruptMediaError(f"{name}: the audio could not be decoded ({first[:160]})")


def iter_decode(
    path: str | Path,
    *,
    sample_rate_hz: int,
    chunk_s: float = 30.0,
    max_duration_s: float | None = None,
    timeout_s: float | None = None,
) -> Iterator[npt.NDArray[np.float32]]:
    """Yield the decoded audio in chunks of about ``chunk_s`` seconds.

    Raises :class:`NotMediaError` (not media, no audio stream), :class:`CorruptMediaError`
    (decoder failure before any audio), :class:`MediaTooLongError` (past
    ``max_duration_s``) and :class:`CorruptMediaError` on timeout. A file that decodes
    partly, then fails, yields what decoded: re-uploads are often truncated.
    """
    p = Path(path)
    name = p.name
    if not p.exists():
        raise NotMediaError(f"{name}: no such file")
    if p.is_dir():
        raise NotMediaError(f"{name}: is a folder, not a media file")
    proc = subprocess.Popen(
        _command(p, sample_rate_hz), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None and proc.stderr is not None
    timed_out = threading.Event()
    watchdog: threading.Timer | None = None
    if timeout_s is not None:
        def _kill() -> None:
            timed_out.set()
            proc.kill()
        watchdog = threading.Timer(timeout_s, _kill)
        watchdog.daemon = True
        watchdog.start()
    stderr_chunks: list[bytes] = []
    drain = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()),  # type: ignore[union-attr]
                             daemon=True)
    drain.start()
    blocks: queue.Queue[bytes] = queue.Queue(maxsize=_QUEUE_BLOCKS)
    stop = threading.Event()
    stdout = proc.stdout

    def pump() -> None:
        while not stop.is_set():
            data = stdout.read(_READ_BYTES)
            while not stop.is_set():
                try:
                    blocks.put(data, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if not data:
                return

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    chunk_bytes = max(1, int(chunk_s * sample_rate_hz)) * 4
    max_samples = None if max_duration_s is None else int(max_duration_s * sample_rate_hz)
    total = 0
    pending = b""
    try:
        while True:
            data = blocks.get()
            if not data:
                break
            pending += data
            while len(pending) >= chunk_bytes:
                out = np.frombuffer(pending[:chunk_bytes], dtype=np.float32).copy()
                pending = pending[chunk_bytes:]
                total += len(out)
                if max_samples is not None and total > max_samples:
                    raise MediaTooLongError(
                        f"{name}: longer than the {max_duration_s:g} s allowed"
                    )
                yield out
        usable = len(pending) - len(pending) % 4
        if usable:
            out = np.frombuffer(pending[:usable], dtype=np.float32).copy()
            total += len(out)
            if max_samples is not None and total > max_samples:
                raise MediaTooLongError(f"{name}: longer than the {max_duration_s:g} s allowed")
            yield out
        code = proc.wait()
        drain.join(timeout=5)
        if timed_out.is_set():
            raise CorruptMediaError(f"{name}: decoding took longer than {timeout_s:g} s")
        if code != 0 and total == 0:
            raise _classify(b"".join(stderr_chunks).decode("utf-8", "replace"), name)
    finally:
        stop.set()
        if watchdog is not None:
            watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        proc.stdout.close()


def check_audio(samples: npt.NDArray[np.float32], *, name: str, sample_rate_hz: int,
                min_duration_s: float = 0.5) -> None:
    """Raise for audio no match can come from: empty, too short, silent, or not finite."""
    if len(samples) == 0:
        raise EmptyMediaError(f"{name}: contains no audio")
    if len(samples) < min_duration_s * sample_rate_hz:
        raise EmptyMediaError(
            f"{name}: only {len(samples) / sample_rate_hz:.2f} s of audio "
            f"(at least {min_duration_s:g} s needed)"
        )
    if not np.isfinite(samples).all():
        raise CorruptMediaError(f"{name}: the audio contains invalid samples")
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise SilentMediaError(f"{name}: the audio is silent")


def decode(
    path: str | Path,
    *,
    sample_rate_hz: int,
    max_duration_s: float | None = None,
    timeout_s: float | None = None,
    min_duration_s: float = 0.5,
) -> npt.NDArray[np.float32]:
    """Decode a whole (short) file and check it is usable audio."""
    chunks = list(iter_decode(path, sample_rate_hz=sample_rate_hz,
                              max_duration_s=max_duration_s, timeout_s=timeout_s))
    samples = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float32)
    check_audio(samples, name=Path(path).name, sample_rate_hz=sample_rate_hz,
                min_duration_s=min_duration_s)
    return samples


def media_duration_s(path: str | Path, *, timeout_s: float = 30.0) -> float | None:
    """The duration a file's container states, in seconds; ``None`` when it states none
    (or ffprobe is missing). For progress only: limits are enforced while decoding."""
    exe = shutil.which("ffprobe")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "-v", "error", "-protocol_whitelist", "file",
                               "-show_entries", "format=duration", "-of",
                               "default=nw=1:nk=1", str(path)],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
        value = float(proc.stdout.strip())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    return value if value > 0 and np.isfinite(value) else None
