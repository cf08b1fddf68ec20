"""Every kind of bad input gives a clear error, never a crash or a hang."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from citywok.analysis.decode import (
    STDERR_KEEP_BYTES,
    MediaInfo,
    decode,
    duration_shortfall,
    iter_decode,
    probe,
    read_bounded,
)
from citywok.cli.demo import CONTAINERS, encode
from citywok.errors import (
    CorruptMediaError,
    EmptyMediaError,
    MediaTooLongError,
    NotMediaError,
    SilentMediaError,
)

SR = 8000


def _tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.asarray(0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 2 * t)),
                      dtype=np.float32)


@pytest.mark.parametrize(("ext", "args", "video"), CONTAINERS, ids=[c[0] for c in CONTAINERS])
def test_every_container_decodes_to_mono_8k(tmp_path: Path, ext: str, args: tuple[str, ...],
                                            video: bool) -> None:
    path = encode(_tone(3.0), tmp_path / f"t{ext}", audio_args=args, video=video)
    x = decode(path, sample_rate_hz=SR)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) / SR - 3.0) < 0.1
    assert np.abs(x).max() > 0.1


@pytest.mark.parametrize(("ext", "args"), [(".avi", ("-c:a", "pcm_s16le")),
                                           (".mov", ("-c:a", "aac")),
                                           (".aac", ("-c:a", "aac")),
                                           (".opus", ("-c:a", "libopus"))])
def test_more_containers(tmp_path: Path, ext: str, args: tuple[str, ...]) -> None:
    path = encode(_tone(2.0), tmp_path / f"t{ext}", audio_args=args)
    # Raw ADTS AAC keeps its encoder priming (no edit list to trim it): ~0.1 s more.
    assert abs(len(decode(path, sample_rate_hz=SR)) / SR - 2.0) < 0.15


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotMediaError, match="no such file"):
        decode(tmp_path / "nope.mp3", sample_rate_hz=SR)


def test_text_file_is_not_media(tmp_path: Path) -> None:
    p = tmp_path / "notes.mp3"
    p.write_text("this is not audio\n" * 100)
    with pytest.raises(NotMediaError):
        decode(p, sample_rate_hz=SR)


def test_random_bytes_are_not_media(tmp_path: Path) -> None:
    p = tmp_path / "noise.mp4"
    p.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises((NotMediaError, CorruptMediaError)):
        decode(p, sample_rate_hz=SR)


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(NotMediaError):
        decode(p, sample_rate_hz=SR)


def test_video_without_audio(tmp_path: Path) -> None:
    p = tmp_path / "silent-film.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "color=c=black:s=64x36:r=5:d=2", "-c:v", "libx264", str(p)], check=True)
    with pytest.raises(NotMediaError, match="audio"):
        decode(p, sample_rate_hz=SR)


def test_truncated_file_keeps_what_decoded(tmp_path: Path) -> None:
    full = encode(_tone(6.0), tmp_path / "full.mp3", audio_args=("-c:a", "libmp3lame"))
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    x = decode(cut, sample_rate_hz=SR)
    assert 2.0 < len(x) / SR < 4.0


def _ffmpeg_then(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: str) -> None:
    """Make ``ffmpeg`` the real one, followed by the shell command ``after`` (which ends
    the wrapper: an exit status, or a kill of itself)."""
    import shutil

    real = shutil.which("ffmpeg")
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "ffmpeg").write_text(f'#!/bin/sh\n{real} "$@"\n{after}\n')
    (folder / "ffmpeg").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize(("after", "why"), [
    ("kill -9 $$", "killed by SIGKILL"),
    ("exit 255", "interrupted by a signal"),  # how ffmpeg ends on SIGINT or SIGTERM
    # ffmpeg runs with its log levels tagged (-loglevel level+info), as here.
    ("echo '[error] Error while decoding stream' >&2; exit 1",
     "exit status 1: Error while decoding"),
])
def test_a_decoder_that_fails_after_some_audio_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: str, why: str) -> None:
    """Once, audio before the failure made the failure go unseen, and the part was taken
    for the whole file."""
    p = encode(_tone(3.0), tmp_path / "t.wav")
    _ffmpeg_then(tmp_path, monkeypatch, after)
    got = []
    with pytest.raises(CorruptMediaError, match=rf"t.wav: the decoder stopped at 00:03.0 "
                       rf"\({re.escape(why)}"):
        for chunk in iter_decode(p, sample_rate_hz=SR):
            got.append(chunk)
    assert sum(map(len, got)) == 3 * SR  # what came is still handed over first


def test_a_decoder_that_fails_before_any_audio_is_classified_as_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _ffmpeg_then(tmp_path, monkeypatch, "exit 1")
    bad = tmp_path / "bad.mp4"
    bad.write_text("not media")
    with pytest.raises(NotMediaError):
        decode(bad, sample_rate_hz=SR)


def test_duration_shortfall_against_what_the_container_states() -> None:
    episode = MediaInfo(format_name="matroska,webm", duration_s=1225.0, audio_streams=1,
                        channels=2)
    # Killed at 7:38 of 20:25: short. Codec padding, a second or so: whole.
    assert duration_shortfall(458.0, episode) == "only 07:38.0 of its 20:25.0 decoded"
    assert duration_shortfall(1224.0, episode) is None
    # The slack grows with the length (2 s + 1 %), for estimated durations.
    assert duration_shortfall(1225.0 - 2.0 - 12.0, episode) is None
    assert duration_shortfall(1225.0 - 2.0 - 12.5, episode) is not None
    # The audio stream's own duration wins over the container's (a longer video track).
    video = MediaInfo(format_name="mov,mp4", duration_s=1300.0, audio_streams=1,
                      audio_duration_s=1225.0)
    assert duration_shortfall(1224.0, video) is None
    # A file that states no duration is taken at its word.
    assert duration_shortfall(1.0, MediaInfo("wav", None, 1)) is None


def test_probe_reads_the_audio_streams_own_duration(tmp_path: Path) -> None:
    p = encode(_tone(3.0), tmp_path / "v.mp4", audio_args=("-c:a", "aac"), video=True)
    info = probe(p)
    assert info.audio_duration_s is not None and abs(info.audio_duration_s - 3.0) < 0.1
    assert info.expected_s == info.audio_duration_s


def test_corrupt_header(tmp_path: Path) -> None:
    full = encode(_tone(2.0), tmp_path / "ok.flac", audio_args=("-c:a", "flac"))
    data = bytearray(full.read_bytes())
    data[4:200] = b"\xff" * 196
    bad = tmp_path / "bad.flac"
    bad.write_bytes(bytes(data))
    with pytest.raises((NotMediaError, CorruptMediaError, EmptyMediaError)):
        decode(bad, sample_rate_hz=SR)


def test_silence(tmp_path: Path) -> None:
    p = encode(np.zeros(16000 * 2, np.float32), tmp_path / "quiet.wav")
    with pytest.raises(SilentMediaError):
        decode(p, sample_rate_hz=SR)


def test_too_short(tmp_path: Path) -> None:
    p = encode(_tone(0.1), tmp_path / "blip.wav")
    with pytest.raises(EmptyMediaError, match=r"0\.1"):
        decode(p, sample_rate_hz=SR)


def test_too_long_stops_early(tmp_path: Path) -> None:
    # 10 minutes of generated audio: refused after max_duration_s, without decoding it all.
    p = tmp_path / "long.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "sine=f=440:d=600:r=8000", "-c:a", "flac", str(p)], check=True)
    with pytest.raises(MediaTooLongError, match="60"):
        decode(p, sample_rate_hz=SR, max_duration_s=60)


def test_stream_that_never_ends_times_out(tmp_path: Path) -> None:
    fifo = tmp_path / "stuck.wav"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(CorruptMediaError, match="longer than"):
        decode(fifo, sample_rate_hz=SR, timeout_s=1.0)
    assert time.monotonic() - started < 10


def test_streaming_chunks_add_up(tmp_path: Path) -> None:
    p = encode(_tone(5.0), tmp_path / "t.wav")
    chunks = list(iter_decode(p, sample_rate_hz=SR, chunk_s=1.0))
    assert len(chunks) >= 5
    assert abs(sum(len(c) for c in chunks) / SR - 5.0) < 0.05


def write_wav(path: Path, seconds: float, *, rate_hz: int, channels: int = 1) -> Path:
    """Plain 16-bit PCM, a tone per channel over noise, written by the standard library
    a block at a time (ffmpeg refuses to write some of these, such as 9 channels without a
    layout, and an hour must not sit in memory)."""
    import wave

    rng = np.random.default_rng(3)
    n = int(seconds * rate_hz)
    freqs = min(440.0, rate_hz / 4) * (1 + np.arange(channels))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        for start in range(0, n, 1 << 20):
            t = np.arange(start, min(n, start + (1 << 20)))[:, None] / rate_hz
            x = 0.3 * np.sin(2 * np.pi * freqs * t) + rng.normal(0, 0.05, (len(t), channels))
            w.writeframes((np.clip(x, -1, 1) * 32000).astype("<i2").tobytes())
    return path


def test_only_what_is_used_is_decoded(tmp_path: Path) -> None:
    """Issue 8, item 8: ten hours at 1 Hz is 1.15 GB once resampled to 8 kHz; asked for
    30 s, ffmpeg stops there."""
    p = write_wav(tmp_path / "ten-hours.wav", 10 * 3600, rate_hz=1)
    started = time.monotonic()
    x = decode(p, sample_rate_hz=SR, limit_s=30.0, timeout_s=30)
    assert len(x) == 30 * SR
    assert time.monotonic() - started < 10
    assert sum(len(c) for c in iter_decode(p, sample_rate_hz=SR, chunk_s=4, limit_s=9)) \
        == 9 * SR


@pytest.mark.parametrize("channels", [9, 64])
def test_many_channels_mix_to_mono(tmp_path: Path, channels: int) -> None:
    p = write_wav(tmp_path / f"c{channels}.wav", 2.0, rate_hz=16000, channels=channels)
    x = decode(p, sample_rate_hz=SR)
    assert abs(len(x) / SR - 2.0) < 0.05 and np.abs(x).max() > 0.05


@pytest.mark.parametrize("name", ["pipe:0", "-", "file:x", "concat:a.wav|b.wav", "-i",
                                  "-y.wav", "http:x", "subfile:y"])
def test_names_that_look_like_protocols_are_files(tmp_path: Path, name: str) -> None:
    p = write_wav(tmp_path / name, 1.5, rate_hz=8000)
    x = decode(p, sample_rate_hz=SR, timeout_s=20)
    assert abs(len(x) / SR - 1.5) < 0.05
    assert probe(p).audio_streams == 1


def test_ffmpeg_messages_are_read_with_a_bound() -> None:
    """A decoder that writes without end fills no memory: the first bytes are kept (they
    say what went wrong), the rest is drained and dropped."""
    flood = "import sys; sys.stdout.buffer.write(b'Invalid data found\\n' * 4_000_000)"
    proc = subprocess.Popen([sys.executable, "-c", flood], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    kept = read_bounded(proc.stdout, limit=STDERR_KEEP_BYTES)
    assert proc.wait(timeout=30) == 0  # drained to the end: the writer never blocked
    assert len(kept) == STDERR_KEEP_BYTES < 1_000_000
    assert kept.startswith(b"Invalid data found")
