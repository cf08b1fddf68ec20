"""End to end on a tiny generated library: clips, crops, mirror, screenshots, outside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from citywok.result import Status
from citywok.vision.frames import Frames
from citywok.vision.pipeline import identify_file
from citywok.vision.search import content_boxes, identify_frames
from tests.vision.conftest import INTRO, TinyLibrary, ffmpeg


def cut(src: Path, out: Path, *, start_s: float, vf: str, length_s: float = 5.0) -> Path:
    ffmpeg("-ss", f"{start_s}", "-t", f"{length_s * 1.4}", "-i", str(src), "-vf", vf, "-t",
           f"{length_s}", "-c:v", "libx264", "-preset", "ultrafast", str(out))
    return out


@pytest.mark.parametrize("vf", [
    "scale=1280:720",
    "hflip,scale=640:360",
    "crop=ih*9/16:ih:(iw-ow)*0.3:0,scale=-2:640",
    "scale=720:-2,pad=720:1280:0:(oh-ih)/2",
    "setpts=PTS/1.25,scale=1280:720",
    "scale=1280:720,eq=brightness=0.1:saturation=1.4",
])
def test_a_clip_names_its_episode_and_start(tiny_library: TinyLibrary, tmp_path: Path,
                                            vf: str) -> None:
    start = 21.0
    clip = cut(tiny_library.path(1), tmp_path / "clip.mp4", start_s=start, vf=vf)
    answer = identify_file(tiny_library.searcher, clip)
    assert answer.status is Status.MATCH, answer.candidates
    assert answer.place is not None
    assert answer.place.episode == Path(tiny_library.videos[1].file).stem
    assert abs(answer.place.start_s - start) <= 1.0


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
def test_a_screenshot_names_its_episode_and_time(tiny_library: TinyLibrary, tmp_path: Path,
                                                 fmt: str) -> None:
    shot = tmp_path / f"shot.{fmt}"
    ffmpeg("-ss", "30.2", "-i", str(tiny_library.path(0)), "-frames:v", "1", "-vf",
           "scale=1280:720", str(shot))
    answer = identify_file(tiny_library.searcher, shot)
    assert answer.status is Status.MATCH, answer.candidates
    assert answer.place is not None
    assert answer.place.episode == Path(tiny_library.videos[0].file).stem
    assert abs(answer.place.start_s - 30.2) <= 1.0


def test_the_title_card_is_ambiguous(tiny_library: TinyLibrary, tmp_path: Path) -> None:
    shot = tmp_path / "title.png"
    ffmpeg("-ss", f"{INTRO[0] + 2}", "-i", str(tiny_library.path(1)), "-frames:v", "1",
           str(shot))
    answer = identify_file(tiny_library.searcher, shot)
    assert answer.status is Status.AMBIGUOUS
    assert {c.episode for c in answer.candidates} == {
        Path(v.file).stem for v in tiny_library.videos}


def test_outside_video_is_no_match(tiny_library: TinyLibrary, outside_video: Path,
                                   tmp_path: Path) -> None:
    for start in (2.0, 9.0):
        clip = cut(outside_video, tmp_path / "out.mp4", start_s=start, vf="scale=1280:720")
        assert identify_file(tiny_library.searcher, clip).status is Status.NO_MATCH


def test_the_moving_picture_inside_a_still_one_is_found() -> None:
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (180, 320), dtype=np.uint8)
    frames = np.repeat(background[None], 6, axis=0)
    for i in range(6):
        frames[i, 40:130, 150:310] = rng.integers(0, 255, (90, 160), dtype=np.uint8)
    boxes = content_boxes(frames)
    moving = [b for b in boxes if b.kind == "moving"]
    assert moving and (moving[0].x0, moving[0].y0, moving[0].x1, moving[0].y1) == (
        150, 40, 310, 130)


def test_letterbox_bars_are_cut_off() -> None:
    rng = np.random.default_rng(1)
    frames = np.zeros((3, 320, 180), np.uint8)
    frames[:, 110:210, :] = rng.integers(0, 255, (3, 100, 180), dtype=np.uint8)
    bars = [b for b in content_boxes(frames) if b.kind == "bars"]
    assert bars and (bars[0].y0, bars[0].y1, bars[0].x0, bars[0].x1) == (110, 210, 0, 180)


def test_no_frames_in_the_index_is_no_match(tiny_library: TinyLibrary) -> None:
    from citywok.vision.search import FrameSearcher
    from citywok.vision.store import build_index

    empty = FrameSearcher(build_index([], params=tiny_library.index.params))
    frames = Frames(np.zeros(1), np.zeros((1, 90, 160), np.uint8), still=True)
    assert identify_frames(empty, frames).status is Status.NO_MATCH


def test_a_picture_pasted_over_another_is_found_by_its_edges() -> None:
    """A still reaction frame: no motion to go by, only the pasted picture's four sides."""
    from citywok.vision.search import edge_box

    yy, xx = np.mgrid[0:180, 0:320]
    frame = (100 + 40 * np.sin(xx / 23.0) * np.cos(yy / 31.0)).astype(np.float32)
    frame[50:140, 150:310] = 30 + 20 * np.sin(xx[50:140, 150:310] / 7.0)  # 160x90: 16:9
    box = edge_box(frame)
    assert box is not None
    assert all(abs(a - b) <= 2 for a, b in zip(box, (150, 50, 310, 140), strict=True))
    assert edge_box(np.full((180, 320), 80, np.float32)) is None
