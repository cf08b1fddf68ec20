"""Parameters of the picture path, in the engine's two kinds.

* :class:`FrameParams` decide what a frame index holds; they are stored in it, and
  opening it with others is a :class:`~citywok.vision.errors.FrameParamsMismatchError`.
* :class:`SearchParams` are the query side and the decision; never stored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from citywok.errors import ConfigError
from citywok.vision.errors import FrameParamsMismatchError


@dataclass(frozen=True)
class FrameParams:
    """How an episode's frames become codes.

    A frame is brought to a ``grid_width_px`` x ``grid_height_px`` grey grid (the whole
    16:9 picture). Each *strip*, ``strip_width_px`` wide (full height), starting every
    ``strip_step_px``, gets a 64-bit code: the signs, about their median, of the 8x8
    lowest 2-D DCT coefficients (DC replaced by the next vertical one). A 9:16 crop of
    the frame is 0.32 of its width, so it holds at least one whole strip wherever it is.
    """

    grid_width_px: int = 128
    grid_height_px: int = 72
    strip_width_px: int = 32
    strip_step_px: int = 8
    #: Rows of the grid, from the top, that the codes read (captions sit at the bottom).
    code_rows_px: int = 72
    #: Frames a second decoded from an episode before near-duplicates are skipped.
    sample_rate_hz: float = 4.0
    #: A sampled frame is kept when its strips differ from the last kept one's by more
    #: than this many bits on average ...
    dedupe_bits: float = 6.0
    #: ... or when this long has passed since the last kept one.
    max_gap_s: float = 1.0
    #: A frame whose grey values vary less than this (standard deviation) is not kept:
    #: a black or flat frame names nothing (a sound file's blank video track, a fade).
    min_frame_std: float = 4.0

    def __post_init__(self) -> None:
        if self.strip_width_px > self.grid_width_px or self.strip_step_px < 1:
            raise ConfigError("frame strips must fit the grid and step forward")
        if self.sample_rate_hz <= 0 or self.max_gap_s <= 0:
            raise ConfigError("the frame sample rate and the longest gap must be positive")

    @property
    def n_strips(self) -> int:
        return (self.grid_width_px - self.strip_width_px) // self.strip_step_px + 1

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FrameParams:
        return cls(**raw)

    def check_same(self, other: FrameParams) -> None:
        if self != other:
            raise FrameParamsMismatchError(
                "the frame index was built with other frame-analysis parameters: "
                "rebuild it (`citywok index --rebuild`)")


@dataclass(frozen=True)
class SearchParams:
    """The query side of the picture path and its decision."""

    #: Frames a second sampled from a clip.
    sample_rate_hz: float = 2.0
    #: Longest stretch of a clip read (a 5 s clip at 0.8x lasts 6.25 s).
    max_clip_s: float = 8.0
    #: The decoded clip's longer side; its frames are small grey pictures.
    max_side_px: int = 320
    #: Two codes meet when they differ in at most this many of their 64 bits.
    radius_bits: int = 11
    #: A query window whose grey values vary less than this (standard deviation) is
    #: left out: flat windows meet every other flat window.
    min_texture: float = 0.0
    #: A query frame whose grey values vary less than this (standard deviation) is left
    #: out; a clip with no other frame has no picture evidence (a blank video track).
    min_frame_std: float = 4.0
    #: A query code meeting more index codes than this says nothing (a pattern that is
    #: everywhere); its meetings are dropped.
    max_meetings_per_code: int = 100
    #: Playback speeds tried when votes are gathered (time in the episode = start +
    #: speed x time in the clip).
    speeds: tuple[float, ...] = (1.0, 0.8, 0.9, 1.1, 1.2, 1.3)
    #: Width of a vote's time bin.
    bin_s: float = 0.5
    #: A place needs this many distinct (query frame, strip) meetings for a clip seen
    #: through a narrow box (a 9:16 crop holds one or two strips a frame) ...
    min_score_clip: float = 6.0
    #: ... this many through a whole 16:9 box (13 strips a frame could meet) ...
    min_score_clip_full: float = 12.0
    #: ... and this many for a single picture (a screenshot).
    min_score_still: float = 5.0
    #: Another episode, or a place of the same one more than ``distinct_s`` away, scoring
    #: at least this share of the best makes the answer ``ambiguous``.
    ambiguous_ratio: float = 0.7
    distinct_s: float = 4.0

    def __post_init__(self) -> None:
        if not 0 < self.radius_bits < 32:
            raise ConfigError("radius_bits must lie between 1 and 31")
        if not self.speeds or min(self.speeds) <= 0:
            raise ConfigError("speeds must be positive")
