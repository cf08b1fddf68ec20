"""Pictures in, and bad pictures refused with clear errors (each test makes its media)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from citywok.errors import CityWokError, MediaError
from citywok.vision.errors import (
    CorruptPictureError,
    NoVideoStreamError,
    PictureTooLargeError,
)
from citywok.vision.frames import (
    MAX_IMAGE_PIXELS,
    parse_pgm_stream,
    read_image,
    sample_video,
)
from tests.vision.conftest import ffmpeg


def png_claiming(width: int, height: int) -> bytes:
    """A small valid PNG whose header says ``width`` x ``height`` (an image bomb's shape)."""
    raw = b"".join(b"\x00" + b"\x00" * 4 for _ in range(4))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def test_the_bomb_limit_is_set_explicitly() -> None:
    assert Image.MAX_IMAGE_PIXELS == MAX_IMAGE_PIXELS
    assert 3840 * 2160 < MAX_IMAGE_PIXELS < 100_000_000


def test_an_image_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(PictureTooLargeError, match="limit"):
        read_image(png_claiming(50_000, 50_000))


def test_a_huge_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("L", (3000, 2000)).save(path)
    with pytest.raises(PictureTooLargeError):
        read_image(path, max_pixels=5_000_000)
    with pytest.raises(PictureTooLargeError, match="byte limit"):
        read_image(path, max_bytes=100)


def test_a_4k_frame_is_read_small(tmp_path: Path) -> None:
    path = tmp_path / "uhd.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (2160, 3840), dtype=np.uint8)).save(path, quality=60)
    frames = read_image(path, max_side_px=320)
    assert frames.still and frames.pixels.shape == (1, 180, 320)


def test_a_4k_video_is_decoded_small(tmp_path: Path) -> None:
    path = tmp_path / "uhd.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=3840x2160:r=5", "-t", "1", "-c:v", "libx264",
           "-preset", "ultrafast", str(path))
    frames = sample_video(path, rate_hz=2, max_side_px=320)
    assert frames.pixels.shape[1:] == (180, 320)


@pytest.mark.parametrize("data", [b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_a_damaged_image_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(CorruptPictureError):
        read_image(data)


def test_a_truncated_jpeg_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (400, 600, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CorruptPictureError):
        read_image(path)


def test_audio_only_is_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "sound.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=1", "-c:a", "aac", str(path))
    with pytest.raises(NoVideoStreamError, match="no video stream"):
        sample_video(path, rate_hz=2)


def test_not_media_is_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "junk.mp4"
    path.write_bytes(b"\x00junk" * 1000)
    with pytest.raises(NoVideoStreamError):
        sample_video(path, rate_hz=2)


def test_a_one_frame_video_is_a_still(tmp_path: Path) -> None:
    path = tmp_path / "one.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-frames:v", "1", "-c:v",
           "libx264", str(path))
    frames = sample_video(path, rate_hz=2)
    assert len(frames) == 1 and frames.still


def test_picture_errors_sit_in_the_one_tree() -> None:
    for cls in (NoVideoStreamError, CorruptPictureError, PictureTooLargeError):
        assert issubclass(cls, MediaError) and issubclass(cls, CityWokError)
        assert cls.code not in {"bad_media", "citywok_error"}


def test_pgm_stream_parses_frames_and_stops_at_a_truncated_one() -> None:
    one = b"P5\n4 2\n255\n" + bytes(range(8))
    frames = parse_pgm_stream(one + one + b"P5\n4 2\n255\n\x00")
    assert len(frames) == 2 and frames[1].shape == (2, 4)
    assert frames[0].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
