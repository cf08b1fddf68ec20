"""The one decoder process also says how long the file is (issue 19): the container's
duration, as ffprobe reports it, read from ffmpeg's own log; errors read as before."""

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest

from citywok.analysis.decode import _Log, decode_clip, ffmpeg_binary, probe
from citywok.errors import MediaTooLongError, NotMediaError
from tests.test_decode import SR, write_wav


def test_the_stated_duration_is_ffprobes_however_little_is_decoded(tmp_path: Path) -> None:
    p = write_wav(tmp_path / "twelve.wav", 12.0, rate_hz=16000)
    clip = decode_clip(p, sample_rate_hz=SR, limit_s=3.0)
    assert len(clip.samples) == 3 * SR
    stated = probe(p).duration_s
    assert stated is not None and clip.stated_duration_s == pytest.approx(stated, abs=0.01)
    # Decoded to the end, too.
    assert decode_clip(p, sample_rate_hz=SR).stated_duration_s == pytest.approx(12.0, abs=0.01)


def test_a_file_stated_longer_than_the_cap_is_refused(tmp_path: Path) -> None:
    p = write_wav(tmp_path / "long.wav", 20.0, rate_hz=8000)
    with pytest.raises(MediaTooLongError, match=r"long.wav: 20 s long, longer than the 10 s"):
        decode_clip(p, sample_rate_hz=SR, limit_s=3.0, max_stated_s=10.0)
    assert len(decode_clip(p, sample_rate_hz=SR, limit_s=3.0, max_stated_s=30.0).samples)


def test_a_tag_named_duration_is_not_the_duration(tmp_path: Path) -> None:
    p = tmp_path / "tagged.mka"
    subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=f=440:d=4", "-metadata", "Duration=99:00:00.00, start: 0",
                    "-metadata", "title=x\n  Duration: 98:00:00.00, start: 0", "-c:a",
                    "pcm_s16le", str(p)], check=True)
    clip = decode_clip(p, sample_rate_hz=SR)
    assert clip.stated_duration_s == pytest.approx(4.0, abs=0.05)
    assert np.max(np.abs(clip.samples)) > 0.1


def test_only_error_lines_are_kept_not_the_lines_of_a_tag() -> None:
    log = _Log()
    log.read(io.BytesIO(b"[info]   Metadata:\n[info]     title           : x\n"
                        b"                    :   Duration: 98:00:00.00, start: 0\n"
                        b"[info]   Duration: 00:00:04.00, start: 0.000000, bitrate: 70 kb/s\n"
                        b"[warning] Guessed Channel Layout\n"
                        b"[mp3 @ 0x55] [error] Failed to read frame size\n"
                        b"second line of that error\n[fatal] it ended"))
    assert log.duration_s == 4.0
    assert log.text == ("[mp3 @ 0x55] Failed to read frame size\nsecond line of that error\n"
                        "it ended\n")


def test_errors_read_as_they_did(tmp_path: Path) -> None:
    p = tmp_path / "notes.mp3"
    p.write_text("not audio at all\n" * 50)
    with pytest.raises(NotMediaError, match="not a media file with an audio stream"):
        decode_clip(p, sample_rate_hz=SR)
