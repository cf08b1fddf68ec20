"""Pictures in: frames of a video (through ffmpeg) and still images (through Pillow).

Both end as small grey frames, ``uint8[n, h, w]``, with their times in seconds. Memory
is bounded before anything is decoded: a video's frames are scaled by ffmpeg itself, an
image's size is read from its header and checked against :data:`MAX_IMAGE_PIXELS`.
"""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from citywok.vision import IMAGE_SUFFIXES as IMAGE_SUFFIXES  # re-exported
from citywok.vision.errors import (
    CorruptPictureError,
    EmptyVideoError,
    NoVideoStreamError,
    PictureTooLargeError,
)

Grey = npt.NDArray[np.uint8]

#: Pillow's decompression-bomb limit, set explicitly: a 4K frame is 8.3 megapixels, an
#: 8K one 33; beyond this an image is refused before its pixels are decoded.
MAX_IMAGE_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
#: An image file larger than this is refused unread.
MAX_IMAGE_BYTES = 50_000_000
#: A video frame larger than this (either side) is refused: no camera makes it.
MAX_VIDEO_SIDE_PX = 8192


@dataclass(frozen=True)
class VideoInfo:
    width_px: int
    height_px: int
    duration_s: float
    has_audio: bool


@dataclass(frozen=True)
class Frames:
    """Grey frames and their times (seconds from the start of what was read)."""

    times_s: npt.NDArray[np.float64]
    pixels: Grey
    #: True for a still image (a screenshot), false for frames of a video.
    still: bool = False

    def __len__(self) -> int:
        return int(self.pixels.shape[0])


def probe(path: Path) -> VideoInfo:
    """The first video stream's size, the duration, and whether there is audio.

    Raises :class:`NoVideoStreamError` when there is no video stream (or the file is
    not media at all) and :class:`PictureTooLargeError` for frames over
    :data:`MAX_VIDEO_SIDE_PX`.
    """
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "stream=codec_type,width,height,disposition:format=duration", "-of", "json",
         str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        raise NoVideoStreamError(f"{path.name}: not a media file ffmpeg can read")
    raw = json.loads(out.stdout or "{}")
    streams = raw.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video"
             and not s.get("disposition", {}).get("attached_pic")]
    if not video:
        raise NoVideoStreamError(f"{path.name}: no video stream (audio only?)")
    w, h = int(video[0].get("width", 0)), int(video[0].get("height", 0))
    if w <= 0 or h <= 0:
        raise CorruptPictureError(f"{path.name}: the video stream has no frame size")
    if max(w, h) > MAX_VIDEO_SIDE_PX:
        raise PictureTooLargeError(f"{path.name}: frames of {w}x{h} are over the limit")
    duration = float(raw.get("format", {}).get("duration") or 0.0)
    return VideoInfo(w, h, duration, any(s.get("codec_type") == "audio" for s in streams))


def fit_size(width_px: int, height_px: int, *, max_side_px: int) -> tuple[int, int]:
    """Even size with the longer side ``max_side_px`` (never larger than the source)."""
    scale = min(1.0, max_side_px / max(width_px, height_px))
    return (max(2, round(width_px * scale / 2) * 2), max(2, round(height_px * scale / 2) * 2))


def _scale_filter(size_px: tuple[int, int] | None, max_side_px: int) -> str:
    if size_px is not None:
        return f"scale={size_px[0]}:{size_px[1]}:flags=area"
    m = max_side_px
    return (f"scale='if(gte(iw,ih),min(iw,{m}),-2)':'if(gte(iw,ih),-2,min(ih,{m}))'"
            ":flags=area")


def parse_pgm_stream(data: bytes) -> list[Grey]:
    """The frames of a stream of binary PGM images (``P5``), as ffmpeg's image2pipe writes."""
    frames: list[Grey] = []
    pos = 0
    while pos < len(data):
        fields: list[bytes] = []
        while len(fields) < 4:  # magic, width, height, maxval
            while pos < len(data) and data[pos:pos + 1].isspace():
                pos += 1
            end = pos
            while end < len(data) and not data[end:end + 1].isspace():
                end += 1
            if end == pos:
                return frames  # a truncated header: the decoder stopped part-way
            fields.append(data[pos:end])
            pos = end
        pos += 1  # the single whitespace after maxval
        if fields[0] != b"P5" or fields[3] != b"255":
            raise CorruptPictureError("the decoder wrote something that is not a grey frame")
        w, h = int(fields[1]), int(fields[2])
        if pos + w * h > len(data):
            return frames
        frames.append(np.frombuffer(data, np.uint8, w * h, pos).reshape(h, w))
        pos += w * h
    return frames


def sample_video(path: Path, *, rate_hz: float, size_px: tuple[int, int] | None = None,
                 max_side_px: int = 320, start_s: float = 0.0,
                 max_duration_s: float | None = None, fast_decode: bool = True) -> Frames:
    """Frames of ``path`` every ``1 / rate_hz`` s, grey, at ``size_px`` (width, height).

    Without ``size_px`` the picture keeps its shape with its longer side at most
    ``max_side_px``. One ffmpeg process, one thread (the caller decides on
    parallelism), no probe first: frames come as PGM images that carry their size.
    ``fast_decode`` skips frames no other frame refers to and the deblocking filter:
    a third less decoding, invisible at this size. A video of one frame comes back as
    a still (``Frames.still``), answered like a screenshot.

    Raises :class:`NoVideoStreamError` (none in the file, or not media),
    :class:`EmptyVideoError` (a stream without frames) and
    :class:`CorruptPictureError` (the decoder failed before any frame).
    """
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-threads", "1"]
    if fast_decode:
        cmd += ["-skip_frame", "noref", "-skip_loop_filter", "all"]
    if start_s > 0:
        cmd += ["-ss", f"{start_s:.3f}"]
    cmd += ["-i", str(path)]
    if max_duration_s is not None:
        cmd += ["-t", f"{max_duration_s:.3f}"]
    cmd += ["-map", "0:v:0", "-an", "-sn", "-dn", "-vf",
            f"fps={rate_hz:g}:round=down,{_scale_filter(size_px, max_side_px)},format=gray",
            "-f", "image2pipe", "-c:v", "pgm", "pipe:1"]
    out = subprocess.run(cmd, capture_output=True)
    err = out.stderr.decode(errors="replace").strip()
    frames = parse_pgm_stream(out.stdout)
    if not frames and out.returncode == 0:
        # ffmpeg's fps filter drops a lone frame (it has no next one to time it by):
        # read the stream without it, two frames at most.
        vf = cmd.index("-vf") + 1
        cmd[vf] = cmd[vf].split(",", 1)[1]
        retry = subprocess.run([*cmd[:-1], "-frames:v", "2", "pipe:1"], capture_output=True)
        frames = parse_pgm_stream(retry.stdout)[:1]
    if not frames:
        if "matches no streams" in err or "Invalid data found" in err or "does not contain" in err:
            raise NoVideoStreamError(f"{path.name}: no video stream (audio only, or not media)")
        if out.returncode != 0:
            last = err.splitlines()[-1][:200] if err else ""
            raise CorruptPictureError(f"{path.name}: the video could not be decoded ({last})")
        raise EmptyVideoError(f"{path.name}: the video stream holds no frame")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:  # the stream changed size part-way: keep the first size's frames
        frames = [f for f in frames if f.shape == frames[0].shape]
    pixels = np.stack(frames)
    times = np.arange(len(frames), dtype=np.float64) / rate_hz
    # A one-frame video is a picture, not a clip: it is answered as a screenshot is.
    return Frames(times, pixels, still=len(frames) == 1)


def read_image(source: Path | bytes, *, max_side_px: int = 320,
               max_pixels: int = MAX_IMAGE_PIXELS, max_bytes: int = MAX_IMAGE_BYTES) -> Frames:
    """A still image (PNG, JPEG, WebP ...) as one grey frame, longer side ``max_side_px``.

    The header is read first: over ``max_pixels`` (or ``max_bytes`` of file) it is a
    :class:`PictureTooLargeError` before any pixel is decoded; a file Pillow cannot
    read, or whose pixels are damaged, is a :class:`CorruptPictureError`.
    """
    name = source.name if isinstance(source, Path) else "the image"
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size > max_bytes:
        raise PictureTooLargeError(f"{name}: {size} bytes is over the {max_bytes}-byte limit")
    data = source.read_bytes() if isinstance(source, Path) else source
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise PictureTooLargeError(
                    f"{name}: {w}x{h} pixels is over the {max_pixels}-pixel limit")
            im.draft("L", (max_side_px, max_side_px))  # JPEG: decode at a reduced size
            grey = im.convert("L")
            grey.thumbnail((max_side_px, max_side_px), Image.Resampling.BOX)
            pixels = np.asarray(grey, dtype=np.uint8).copy()
    except PictureTooLargeError:
        raise
    except Image.DecompressionBombError as exc:
        raise PictureTooLargeError(f"{name}: over the decompression limit ({exc})") from None
    except UnidentifiedImageError:
        raise CorruptPictureError(f"{name}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptPictureError(f"{name}: the image is damaged ({exc})") from None
    return Frames(np.zeros(1), pixels[None], still=True)
