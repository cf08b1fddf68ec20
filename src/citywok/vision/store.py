"""The frame index on disk: a folder of plain numpy arrays and a JSON header.

::

    header.json    {"magic": "citywok-frames", "version": 1, "params": {...},
                    "episodes": [...], "frames": n, "strips": s}
    codes.npy      uint8[n, s, 8]   the strip codes of each kept frame
    times.npy      float32[n]       the frame's time in its episode, seconds
    episode.npy    uint16[n]        the frame's episode, a position in "episodes"

Arrays are read with ``allow_pickle=False`` (memory-mapped); nothing is ever pickled.
At 1-2 kept frames a second it is 0.4-0.8 MB an hour of video.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from citywok.errors import IndexNotFoundError
from citywok.vision.dedupe import keep_mask
from citywok.vision.descriptor import CODE_BYTES, Codes, frame_codes
from citywok.vision.errors import FrameIndexFormatError
from citywok.vision.frames import Frames
from citywok.vision.params import FrameParams

MAGIC = "citywok-frames"
VERSION = 1


@dataclass(frozen=True)
class EpisodeFrames:
    """One episode's kept frames: codes ``uint8[n, strips, 8]`` and times."""

    codes: Codes
    times_s: npt.NDArray[np.float32]


@dataclass(frozen=True)
class FrameIndex:
    params: FrameParams
    episodes: tuple[str, ...]
    codes: Codes
    times_s: npt.NDArray[np.float32]
    episode: npt.NDArray[np.uint16]

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.times_s.nbytes + self.episode.nbytes)


def analyse_frames(frames: Frames, *, params: FrameParams) -> EpisodeFrames:
    """Codes of an episode's sampled frames, near-duplicates skipped."""
    codes = frame_codes(frames.pixels, params=params)
    busy = frames.pixels.reshape(len(frames), -1).std(axis=1) >= params.min_frame_std
    codes, times = codes[busy], frames.times_s[busy]
    keep = keep_mask(codes, times, min_bits=params.dedupe_bits, max_gap_s=params.max_gap_s)
    return EpisodeFrames(codes[keep], times[keep].astype(np.float32))


def build_index(items: Sequence[tuple[str, EpisodeFrames]], *, params: FrameParams) -> FrameIndex:
    """One index of ``(episode id, its frames)`` pairs, in the order given."""
    if len(items) > np.iinfo(np.uint16).max:
        raise ValueError("a frame index holds at most 65535 episodes")
    strips = params.n_strips
    codes = [e.codes for _, e in items] or [np.zeros((0, strips, CODE_BYTES), np.uint8)]
    times = [e.times_s for _, e in items] or [np.zeros(0, np.float32)]
    which = [np.full(len(e.times_s), i, np.uint16) for i, (_, e) in enumerate(items)]
    return FrameIndex(params, tuple(eid for eid, _ in items), np.concatenate(codes),
                      np.concatenate(times).astype(np.float32),
                      np.concatenate(which) if which else np.zeros(0, np.uint16))


def save_index(index: FrameIndex, folder: Path) -> None:
    """Write ``index`` into ``folder`` (created); the header last, as the commit."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "codes.npy", np.ascontiguousarray(index.codes), allow_pickle=False)
    np.save(folder / "times.npy", index.times_s, allow_pickle=False)
    np.save(folder / "episode.npy", index.episode, allow_pickle=False)
    header = {"magic": MAGIC, "version": VERSION, "params": index.params.to_json(),
              "episodes": list(index.episodes), "frames": len(index.times_s),
              "strips": index.params.n_strips}
    (folder / "header.json").write_text(json.dumps(header, indent=1))


def load_index(folder: Path, *, params: FrameParams | None = None) -> FrameIndex:
    """Open a frame index; with ``params``, refuse one built with others."""
    head = folder / "header.json"
    if not head.is_file():
        raise IndexNotFoundError(f"no frame index at {folder}")
    try:
        header = json.loads(head.read_text())
    except (OSError, ValueError):
        raise FrameIndexFormatError("the frame index header is not readable JSON") from None
    if not isinstance(header, dict) or header.get("magic") != MAGIC:
        raise FrameIndexFormatError("not a CityWok frame index")
    if header.get("version") != VERSION:
        raise FrameIndexFormatError(
            f"frame index version {header.get('version')} is not {VERSION}: built by "
            "another CityWok, rebuild it (`citywok index --rebuild`)")
    stored = FrameParams.from_json(header["params"])
    if params is not None:
        params.check_same(stored)
    n, strips = int(header["frames"]), int(header["strips"])
    try:
        codes = np.load(folder / "codes.npy", mmap_mode="r", allow_pickle=False)
        times = np.load(folder / "times.npy", mmap_mode="r", allow_pickle=False)
        episode = np.load(folder / "episode.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FrameIndexFormatError(f"a frame index array is damaged ({exc})") from None
    if (codes.shape != (n, strips, CODE_BYTES) or codes.dtype != np.uint8
            or times.shape != (n,) or episode.shape != (n,)
            or (n and int(episode.max()) >= len(header["episodes"]))):
        raise FrameIndexFormatError("the frame index arrays do not match their header")
    return FrameIndex(stored, tuple(header["episodes"]), codes, times, episode)
