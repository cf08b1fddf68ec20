"""Every kind of bad input gives a clear error, never a crash or a hang."""

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from citywok.decode import decode, iter_decode
from citywok.demo import CONTAINERS, encode
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
