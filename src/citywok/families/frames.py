"""The frames family: what the pictures of an episode's video say (issue 17).

The signal side is :mod:`citywok.vision` (frames, strip-DCT codes, dedupe, FAISS
search); this module is what the store, ingest and matching ask of it:

* the header an index records (:func:`header`) and its check (:func:`check_header`);
* one episode's picture file, made from its video (:func:`analyse_file`) and read back
  (:func:`decode`): never pickled, its own magic and version, the frame parameters it
  was made with; the store keeps it beside the segments with its SHA-256;
* a searcher over every episode's frames (:func:`searcher`) and a clip's or a
  screenshot's answer from it (:func:`look`).

Picture file layout (little-endian)::

    8 bytes   magic  b"CWFRAME1"
    4 bytes   u32    length of the JSON header
    JSON      {"version": 1, "params": {...}, "frames": n, "strips": s}
    n*s*8     u8     codes, frame by frame, strip by strip
    n*4       f32    each kept frame's time in the episode, seconds
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from citywok.errors import IndexFormatError
from citywok.result import Status
from citywok.vision.descriptor import CODE_BYTES
from citywok.vision.errors import NoVideoStreamError, PictureError
from citywok.vision.frames import Frames, read_image, sample_video
from citywok.vision.params import FrameParams, SearchParams
from citywok.vision.pipeline import index_video
from citywok.vision.search import FrameSearcher, PictureAnswer, identify_frames
from citywok.vision.store import EpisodeFrames, build_index

NAME = "frames"
MAGIC = b"CWFRAME1"
VERSION = 1
#: Files whose suffix says they hold sound only: their pictures are never looked for
#: (an MP3's cover art is not an episode's picture).
AUDIO_SUFFIXES = frozenset({".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".m4a",
                            ".aac", ".wma", ".aiff", ".aif", ".amr", ".ac3", ".mka"})

__all__ = ["AUDIO_SUFFIXES", "MAGIC", "NAME", "VERSION", "analyse_file", "check_header",
           "decode", "encode", "header", "look", "may_have_pictures", "read_still",
           "sample_clip", "searcher"]


def header(params: FrameParams = FrameParams()) -> dict[str, object]:
    """What an index header records of the frames family."""
    return {"family": NAME, "version": VERSION, "params": params.to_json()}


def check_header(stored: dict[str, object], *, index_name: str) -> FrameParams:
    """The stored frame parameters; one sentence when this CityWok cannot read them."""
    raw = stored.get("params")
    if stored.get("family") != NAME or stored.get("version") != VERSION or not isinstance(
            raw, dict):
        raise IndexFormatError(f"the index {index_name} holds pictures this CityWok does not "
                               "read: re-index with `citywok index --rebuild`")
    try:
        return FrameParams.from_json(raw)
    except (TypeError, ValueError) as exc:
        raise IndexFormatError(f"the index {index_name} describes its pictures in a way this "
                               f"CityWok does not read ({exc}): re-index with "
                               "`citywok index --rebuild`") from None


def may_have_pictures(path: str | Path) -> bool:
    """Whether a file may hold an episode's pictures (not a sound-only suffix)."""
    return Path(path).suffix.lower() not in AUDIO_SUFFIXES


def encode(frames: EpisodeFrames, params: FrameParams) -> bytes:
    codes = np.ascontiguousarray(frames.codes, dtype=np.uint8)
    times = np.ascontiguousarray(frames.times_s, dtype="<f4")
    head = json.dumps({"version": VERSION, "params": params.to_json(),
                       "frames": len(times), "strips": int(params.n_strips)},
                      sort_keys=True).encode()
    return MAGIC + struct.pack("<I", len(head)) + head + codes.tobytes() + times.tobytes()


def decode(data: bytes, *, params: FrameParams, name: str = "a picture file") -> EpisodeFrames:
    """An episode's frames from its file; :class:`IndexFormatError` when it is not one,
    or was made with other frame parameters."""
    if data[:8] != MAGIC or len(data) < 12:
        raise IndexFormatError(f"{name} is not a CityWok picture file")
    (n_head,) = struct.unpack("<I", data[8:12])
    try:
        head = json.loads(data[12:12 + n_head])
        n, strips = int(head["frames"]), int(head["strips"])
        stored = FrameParams.from_json(head["params"])
    except (ValueError, KeyError, TypeError):
        raise IndexFormatError(f"{name} has an unreadable header") from None
    if head.get("version") != VERSION or stored != params:
        raise IndexFormatError(f"{name} was made by another CityWok or with other frame "
                               "parameters: re-index with `citywok index --rebuild`")
    start = 12 + n_head
    n_codes = n * strips * CODE_BYTES
    if len(data) != start + n_codes + 4 * n:
        raise IndexFormatError(f"{name} is truncated or too long")
    codes = np.frombuffer(data, np.uint8, n_codes, start).reshape(n, strips, CODE_BYTES)
    times = np.frombuffer(data, "<f4", n, start + n_codes).astype(np.float32)
    return EpisodeFrames(codes, times)


def analyse_file(path: str | Path, params: FrameParams = FrameParams()) -> bytes | None:
    """An episode file's picture file, or None when it has no pictures to keep (a sound
    file, no video stream, or a video that does not decode: its sound still counts)."""
    if not may_have_pictures(path):
        return None
    try:
        frames = index_video(Path(path), params=params)
    except PictureError:
        return None
    if len(frames.times_s) == 0:
        return None
    return encode(frames, params)


def searcher(items: Sequence[tuple[int, EpisodeFrames]], params: FrameParams) -> FrameSearcher:
    """One searcher over episodes' frames, each named by its episode key."""
    return FrameSearcher(build_index([(str(k), f) for k, f in items], params=params))


def sample_clip(path: str | Path, sp: SearchParams = SearchParams()) -> Frames | None:
    """A clip's frames that are not blank (perhaps none), or None when it has no video
    stream (a sound-only clip)."""
    if not may_have_pictures(path):
        return None
    try:
        frames = sample_video(Path(path), rate_hz=sp.sample_rate_hz,
                              max_side_px=sp.max_side_px, max_duration_s=sp.max_clip_s)
    except NoVideoStreamError:
        return None
    busy = frames.pixels.reshape(len(frames), -1).std(axis=1) >= sp.min_frame_std
    if busy.all():
        return frames
    # Blank frames (a black screen, a sound file's empty video track) name nothing: left
    # out, perhaps all of them (then the pictures say nothing).
    return Frames(frames.times_s[busy], frames.pixels[busy], still=frames.still)


def read_still(source: Path | bytes, sp: SearchParams = SearchParams()) -> Frames:
    """A screenshot's one frame (bounded: see :func:`citywok.vision.frames.read_image`)."""
    return read_image(source, max_side_px=sp.max_side_px)


def look(found: FrameSearcher, frames: Frames, sp: SearchParams = SearchParams()
         ) -> PictureAnswer:
    """What the pictures say: places named by episode key (as text), best first; with
    no frame at all, nothing."""
    if len(frames) == 0:
        return PictureAnswer(Status.NO_MATCH, None, (), 0, 0.0, still=frames.still)
    return identify_frames(found, frames, params=sp)
