"""Any media file → mono float32 at the analysis rate, via the ffmpeg binary.

ffmpeg runs as a child process writing raw samples to a pipe. A reader thread drains the
pipe into a bounded queue, so ffmpeg keeps decoding on one core while the caller
fingerprints the previous chunk on another (a bare 64 KiB pipe would make them take
turns). A long file is never held whole, a caller that needs only the start of a file
(``limit_s``) has only that decoded, and a watchdog kills the child on timeout so a
pathological file cannot hang the caller. What ffmpeg and ffprobe write is read with a
bound: a file that makes them write without end fills no memory.

The one ffmpeg run also says how long the container states the file is (the
``Duration:`` line it logs on opening a file, which is what ffprobe reports), so a caller
that caps a clip's length spawns no second process to learn it (:func:`decode_clip`).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from citywok.display import clock
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
#: How much of ffmpeg's messages is kept: the first lines say what went wrong.
STDERR_KEEP_BYTES = 64 * 1024
#: How much of ffprobe's JSON is read (about 15,000 streams); more is not a media file.
PROBE_KEEP_BYTES = 1 << 20
#: Seconds decoded past ``limit_s``, then cut exactly here: ffmpeg's ``-t`` counts time
#: stamps, and a resampler may end a few samples short of them.
_LIMIT_SPARE_S = 1.0
#: Input samples per frame when only the start of a file is decoded (see _command).
_FRAME_SAMPLES = 256
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
#: How far a whole decode may fall short of the duration the container states: codec
#: delay and padding, and streams that start late, are well under a second here; an
#: estimated duration (a VBR MP3 without a header) may be off by a per cent or so. A
#: decoder that stopped early, or a file cut short, loses more.
DURATION_SLACK_S = 2.0
DURATION_SLACK_RATIO = 0.01
#: What ffmpeg exits with when SIGINT or SIGTERM stopped it (it catches both).
_FFMPEG_SIGNALLED = 255
#: ffmpeg knows no channel layout for more than 8 channels, so "-ac 1" cannot mix them.
_NO_LAYOUT_HINT = "rematrix is needed"
#: ffmpeg logs at "info" with each line's level tagged (``[error] ...``): the lines at
#: "error" and above are the messages, as ``-loglevel error`` printed them; the input's
#: ``Duration:`` line (2-space indent; a tag's value cannot start a line) is its length.
_LOG_LEVEL = re.compile(rb"\[(panic|fatal|error|warning|info|verbose|debug|trace)\] ")
_QUIET_LEVELS = (b"warning", b"info", b"verbose", b"debug", b"trace")
_DURATION = re.compile(rb"\[info\]   Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?),")


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


def read_bounded(stream: IO[bytes], *, limit: int) -> bytes:
    """Read ``stream`` to its end and return its first ``limit`` bytes (the writer never
    blocks on a full pipe, and what is past the limit is dropped as it arrives)."""
    kept = bytearray()
    while chunk := stream.read(65536):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return bytes(kept)


def _command(path: str | Path, sample_rate_hz: int, *, channels: int | None = None,
             limit_s: float | None = None) -> list[str]:
    filters = []
    until = []
    if limit_s is not None:
        until = ["-t", f"{limit_s + _LIMIT_SPARE_S:.3f}"]
        # Small frames before the resampler: a frame of a low-rate file can hold an hour
        # (4096 samples at 1 Hz), which resampled at once takes hundreds of MB. Only for a
        # limited decode: splitting every frame of a whole episode costs ingest time.
        filters.append(f"asetnsamples=n={_FRAME_SAMPLES}:p=0")
    # Mixed to mono by ffmpeg, or, for more channels than ffmpeg has a layout for, by a
    # pan filter that weighs every channel alike.
    mix = ["-ac", "1"]
    if channels is not None:
        filters.append("pan=mono|c0<" + "+".join(f"c{i}" for i in range(channels)))
        mix = []
    return [
        ffmpeg_binary(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info",
        "-threads", "1",
        # A hostile file (playlist, concat list) must not make ffmpeg open anything else.
        "-protocol_whitelist", "file",
        "-i", input_url(path), "-map", "0:a:0", "-vn", "-sn", "-dn",
        *(["-af", ",".join(filters)] if filters else []), *mix,
        "-ar", str(sample_rate_hz), *until, "-f", "f32le", "pipe:1",
    ]


@dataclass(frozen=True)
class MediaInfo:
    """What ffprobe finds in a file without decoding it."""

    #: ffmpeg's name for the container (``matroska,webm``, ``wav`` ...).
    format_name: str
    #: The container's duration, when it states one.
    duration_s: float | None
    audio_streams: int
    #: Channels of the first audio stream (0 without one).
    channels: int = 0
    #: The first audio stream's own duration, when the container states one.
    audio_duration_s: float | None = None

    @property
    def expected_s(self) -> float | None:
        """How long the audio should decode to: its stream's duration, else the
        container's (which a longer video track may stretch)."""
        for value in (self.audio_duration_s, self.duration_s):
            if value is not None and value > 0 and np.isfinite(value):
                return value
        return None


def probe(path: str | Path, *, timeout_s: float = 10.0,
          formats: Sequence[str] | None = None) -> MediaInfo:
    """Read a file's container and streams with ffprobe (nothing is decoded).

    ``formats`` limits the demuxers it may be opened with. Raises :class:`NotMediaError`
    when ffprobe cannot read it (or not within ``timeout_s``).
    """
    name = Path(path).name
    if not Path(path).is_file():
        raise NotMediaError(f"{name}: no such file" if not Path(path).exists()
                            else f"{name}: not a file")
    exe = shutil.which("ffprobe")
    if exe is None:
        raise MediaError("ffprobe is not installed; install ffmpeg (e.g. apt-get install "
                         "ffmpeg)")
    cmd = [exe, "-v", "quiet", "-protocol_whitelist", "file"]
    if formats:
        cmd += ["-format_whitelist", ",".join(formats)]
    cmd += ["-show_entries", "format=format_name,duration:stream=codec_type,channels,duration",
            "-of", "json", input_url(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    stdout = proc.stdout
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(read_bounded(
        stdout, limit=PROBE_KEEP_BYTES)), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if reader.is_alive():
        proc.kill()
        reader.join()
    code = proc.wait()
    stdout.close()
    if reader.is_alive() or not got:
        raise NotMediaError(f"{name}: could not be examined within {timeout_s:g} s")
    try:
        info = json.loads(got[0] or b"{}") if code == 0 else {}
    except ValueError:
        info = {}
    fmt = info.get("format") or {}
    if not fmt.get("format_name"):
        raise NotMediaError(f"{name}: not a media file ffmpeg can read")
    audio = [st for st in info.get("streams") or [] if st.get("codec_type") == "audio"]
    return MediaInfo(format_name=str(fmt["format_name"]), duration_s=_seconds(fmt),
                     audio_streams=len(audio),
                     channels=int(audio[0].get("channels") or 0) if audio else 0,
                     audio_duration_s=_seconds(audio[0]) if audio else None)


def _seconds(entry: dict[str, object]) -> float | None:
    try:
        return float(entry["duration"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return None


def duration_shortfall(decoded_s: float, info: MediaInfo) -> str | None:
    """Why ``decoded_s`` seconds cannot be the whole of a file ``info`` describes, or
    ``None`` when they can: more than :data:`DURATION_SLACK_S` plus
    :data:`DURATION_SLACK_RATIO` short of what its container states (a file that states
    no duration is taken at its word)."""
    expected = info.expected_s
    slack = DURATION_SLACK_S + DURATION_SLACK_RATIO * (expected or 0.0)
    if expected is None or decoded_s >= expected - slack:
        return None
    return f"only {clock(decoded_s)} of its {clock(expected)} decoded"


class _Log:
    """ffmpeg's log, read line by line as it comes, with a bound: the error lines (as
    ``-loglevel error`` would print them, up to ``limit`` bytes) and the first
    ``Duration:`` of the input."""

    def __init__(self, *, limit: int = STDERR_KEEP_BYTES) -> None:
        self.limit = limit
        self.errors = bytearray()
        self.duration_s: float | None = None
        self._quiet = False

    def read(self, stream: IO[bytes]) -> None:
        partial = b""
        while chunk := stream.read(65536):
            *lines, partial = (partial + chunk).split(b"\n")
            partial = partial[: self.limit]  # a line without end is cut, not held
            for line in lines:
                self._line(line)
        self._line(partial)

    def _line(self, line: bytes) -> None:
        if self.duration_s is None and (m := _DURATION.match(line)):
            h, mi, s = m.groups()
            self.duration_s = int(h) * 3600 + int(mi) * 60 + float(s)
        tag = _LOG_LEVEL.search(line)
        if tag is None:  # a message's next line (a tag's value can hold line breaks)
            if self._quiet:
                return
        else:
            self._quiet = tag.group(1) in _QUIET_LEVELS
            if self._quiet:
                return
            line = line[: tag.start()] + line[tag.end():]
        if line.strip() and len(self.errors) < self.limit:
            self.errors += (line + b"\n")[: self.limit - len(self.errors)]

    @property
    def text(self) -> str:
        return bytes(self.errors).decode("utf-8", "replace")


def _classify(stderr: str, name: str) -> MediaError:
    text = stderr.lower()
    if any(h in text for h in _NOT_MEDIA_HINTS):
        return NotMediaError(f"{name}: not a media file with an audio stream")
    first = next((ln.strip() for ln in stderr.splitlines() if ln.strip()), "decoder error")
    return CorruptMediaError(f"{name}: the audio could not be decoded ({first[:160]})")


def _why_stopped(code: int, stderr: str) -> str:
    """Why ffmpeg exited with ``code`` before the end, in a few words."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code == _FFMPEG_SIGNALLED:
        return "interrupted by a signal"
    first = next((ln.strip() for ln in stderr.splitlines() if ln.strip()), "")
    return f"exit status {code}" + (f": {first[:160]}" if first else "")


class _NoChannelLayout(Exception):
    """ffmpeg cannot mix this stream to mono by itself (nothing was decoded yet)."""


def iter_decode(
    path: str | Path,
    *,
    sample_rate_hz: int,
    chunk_s: float = 30.0,
    max_duration_s: float | None = None,
    limit_s: float | None = None,
    timeout_s: float | None = None,
) -> Generator[npt.NDArray[np.float32], None, float | None]:
    """Yield the decoded audio in chunks of about ``chunk_s`` seconds; return the
    duration the container states (None when it states none).

    ``limit_s`` decodes only the first ``limit_s`` seconds (ffmpeg stops there; the rest
    of the file is never read or held). Raises :class:`NotMediaError` (not media, no audio
    stream), :class:`CorruptMediaError` (decoder failure before any audio),
    :class:`MediaTooLongError` (past ``max_duration_s``, among what is decoded) and
    :class:`CorruptMediaError` on timeout, and when ffmpeg fails or is killed part-way
    (after yielding what it decoded; the message says where and why). A truncated file
    (re-uploads often are) decodes to its end without failing: compare the samples with
    :func:`duration_shortfall` where the whole file is wanted.
    """
    p = Path(path)
    if not p.exists():
        raise NotMediaError(f"{p.name}: no such file")
    if p.is_dir():
        raise NotMediaError(f"{p.name}: is a folder, not a media file")
    kwargs = {"sample_rate_hz": sample_rate_hz, "chunk_s": chunk_s,
              "max_duration_s": max_duration_s, "limit_s": limit_s, "timeout_s": timeout_s}
    try:
        return (yield from _run_ffmpeg(p, channels=None, **kwargs))  # type: ignore[arg-type]
    except _NoChannelLayout:
        channels = probe(p).channels
        if channels < 2:
            raise CorruptMediaError(f"{p.name}: the audio channels cannot be mixed") from None
        return (yield from _run_ffmpeg(p, channels=channels, **kwargs))  # type: ignore[arg-type]


def _run_ffmpeg(p: Path, *, channels: int | None, sample_rate_hz: int, chunk_s: float,
                max_duration_s: float | None, limit_s: float | None,
                timeout_s: float | None
                ) -> Generator[npt.NDArray[np.float32], None, float | None]:
    name = p.name
    proc = subprocess.Popen(
        _command(p, sample_rate_hz, channels=channels, limit_s=limit_s),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
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
    log = _Log()
    stderr = proc.stderr
    drain = threading.Thread(target=log.read, args=(stderr,), daemon=True)
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
    #: Bytes still wanted (``None``: all of them).
    wanted = None if limit_s is None else int(limit_s * sample_rate_hz) * 4
    total = 0
    pending = b""
    try:
        while wanted is None or wanted > 0:
            data = blocks.get()
            if not data:
                break
            if wanted is not None:
                data = data[:wanted]
                wanted -= len(data)
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
        if wanted == 0:  # all that was asked for: ffmpeg is stopped, not waited for
            proc.kill()
            drain.join(timeout=5)  # its Duration line came before any sample
            return log.duration_s
        code = proc.wait()
        drain.join(timeout=5)
        if timed_out.is_set():
            raise CorruptMediaError(f"{name}: decoding took longer than {timeout_s:g} s")
        if code != 0:
            # Whatever came before, a decoder that did not finish gave only part of the
            # file: storing that as the whole would be a lie (a truncated file, by
            # contrast, makes ffmpeg exit 0 and is judged by its container's duration).
            message = log.text
            if total == 0:
                if channels is None and _NO_LAYOUT_HINT in message.lower():
                    raise _NoChannelLayout
                raise _classify(message, name)
            raise CorruptMediaError(f"{name}: the decoder stopped at "
                                    f"{clock(total / sample_rate_hz)} "
                                    f"({_why_stopped(code, message)})")
        return log.duration_s
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


@dataclass(frozen=True)
class DecodedClip:
    """Audio decoded from a file, and the file's length as its container states it."""

    samples: npt.NDArray[np.float32]
    #: The duration the container states (as ffprobe would report it, to 0.01 s), when it
    #: states one: the whole file's, however little of it was decoded.
    stated_duration_s: float | None


def decode_clip(
    path: str | Path,
    *,
    sample_rate_hz: int,
    max_duration_s: float | None = None,
    max_stated_s: float | None = None,
    limit_s: float | None = None,
    timeout_s: float | None = None,
    min_duration_s: float = 0.5,
) -> DecodedClip:
    """Decode a (short) file, or the first ``limit_s`` seconds of any file, and check it
    is usable audio; one ffmpeg process, nothing else spawned.

    ``max_stated_s`` refuses a file whose container states a longer duration
    (:class:`MediaTooLongError`), however little of it is decoded.
    """
    chunks: list[npt.NDArray[np.float32]] = []
    steps = iter_decode(path, sample_rate_hz=sample_rate_hz, max_duration_s=max_duration_s,
                        limit_s=limit_s, timeout_s=timeout_s)
    while True:
        try:
            chunks.append(next(steps))
        except StopIteration as end:
            stated: float | None = end.value
            break
    name = Path(path).name
    if max_stated_s is not None and stated is not None and stated > max_stated_s:
        raise MediaTooLongError(f"{name}: {stated:.0f} s long, longer than the "
                                f"{max_stated_s:g} s allowed")
    samples = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float32)
    check_audio(samples, name=name, sample_rate_hz=sample_rate_hz,
                min_duration_s=min_duration_s)
    return DecodedClip(samples=samples, stated_duration_s=stated)


def decode(
    path: str | Path,
    *,
    sample_rate_hz: int,
    max_duration_s: float | None = None,
    limit_s: float | None = None,
    timeout_s: float | None = None,
    min_duration_s: float = 0.5,
) -> npt.NDArray[np.float32]:
    """Decode a (short) file, or the first ``limit_s`` seconds of any file, and check it
    is usable audio (:func:`decode_clip`'s samples)."""
    return decode_clip(path, sample_rate_hz=sample_rate_hz, max_duration_s=max_duration_s,
                       limit_s=limit_s, timeout_s=timeout_s,
                       min_duration_s=min_duration_s).samples


def media_duration_s(path: str | Path, *, timeout_s: float = 30.0) -> float | None:
    """The duration a file's container states, in seconds; ``None`` when it states none
    (or ffprobe is missing). For progress only: limits are enforced while decoding."""
    try:
        duration = probe(path, timeout_s=timeout_s).duration_s
    except MediaError:
        return None
    return duration if duration is not None and duration > 0 and np.isfinite(duration) else None
