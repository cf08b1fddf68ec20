"""The picture path composed: index a video, identify a clip or a screenshot."""

from __future__ import annotations

from pathlib import Path

from citywok.vision.frames import IMAGE_SUFFIXES, read_image, sample_video
from citywok.vision.params import FrameParams, SearchParams
from citywok.vision.search import FrameSearcher, PictureAnswer, identify_frames
from citywok.vision.store import EpisodeFrames, analyse_frames


def index_video(path: Path, *, params: FrameParams = FrameParams()) -> EpisodeFrames:
    """An episode's kept frames and codes (ffmpeg decodes straight to the grid)."""
    frames = sample_video(path, rate_hz=params.sample_rate_hz,
                          size_px=(params.grid_width_px, params.grid_height_px))
    return analyse_frames(frames, params=params)


def identify_file(searcher: FrameSearcher, path: Path, *,
                  params: SearchParams = SearchParams()) -> PictureAnswer:
    """A screenshot (by its suffix) or a video clip, answered from its pictures."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        frames = read_image(path, max_side_px=params.max_side_px)
    else:
        frames = sample_video(path, rate_hz=params.sample_rate_hz,
                              max_side_px=params.max_side_px, max_duration_s=params.max_clip_s)
    return identify_frames(searcher, frames, params=params)
