"""A tiny video library, made by the benchmark's generator from synthetic photos."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bench.video_corpus import EpisodeVideo, VideoConfig, build_library, synthetic_photos
from citywok.vision.params import FrameParams
from citywok.vision.pipeline import index_video
from citywok.vision.search import FrameSearcher
from citywok.vision.store import FrameIndex, build_index

TINY = VideoConfig(width_px=320, height_px=180, fps=6.0, photos_per_episode=3, seed=3)
EPISODE_S = 45.0
INTRO = (0.0, 8.0)


@dataclass(frozen=True)
class TinyLibrary:
    folder: Path
    videos: list[EpisodeVideo]
    index: FrameIndex
    searcher: FrameSearcher

    def path(self, n: int) -> Path:
        return self.folder / self.videos[n].file


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", *args], check=True)


@pytest.fixture(scope="session")
def tiny_library(tmp_path_factory: pytest.TempPathFactory) -> TinyLibrary:
    folder = tmp_path_factory.mktemp("video-library")
    photos = {f"synthetic:{i}": im for i, im in enumerate(synthetic_photos(8, seed=11))}
    episodes = [(f"Tiny Show - S01E0{i + 1}", EPISODE_S, None, INTRO) for i in range(2)]
    videos = build_library(episodes, folder, images=photos, config=TINY)
    params = FrameParams()
    index = build_index([(Path(v.file).stem, index_video(folder / v.file, params=params))
                         for v in videos], params=params)
    return TinyLibrary(folder, videos, index, FrameSearcher(index))


@pytest.fixture(scope="session")
def outside_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Video of pictures that are in no library: other photos, same generator."""
    folder = tmp_path_factory.mktemp("outside")
    photos = {f"other:{i}": im for i, im in enumerate(synthetic_photos(3, seed=99))}
    videos = build_library([("Outside", 20.0, None, None)], folder, images=photos,
                           config=VideoConfig(width_px=320, height_px=180, fps=6.0, seed=5))
    return folder / videos[0].file


@dataclass(frozen=True)
class AVLibrary:
    """Episodes with sound and pictures (and one with sound only), indexed by CityWok."""

    folder: Path
    index_dir: Path
    videos: list[EpisodeVideo]
    #: Each episode's sound at the demo rate (16 kHz), for clips made from it.
    audio: list[npt.NDArray[np.float32]]
    audio_only: Path

    def path(self, n: int) -> Path:
        return self.folder / self.videos[n].file


AV_EPISODE_S = 40.0


@pytest.fixture(scope="session")
def av_library(tmp_path_factory: pytest.TempPathFactory) -> AVLibrary:
    from citywok.cli.demo import THEME_S, encode, episode_audio, melody
    from citywok.index import Index
    from citywok.pipeline import drive, index_paths

    root = tmp_path_factory.mktemp("av")
    folder, sounds = root / "library", root / "sounds"
    sounds.mkdir()
    rng = np.random.default_rng(23)
    theme = melody(np.random.default_rng(1023), THEME_S, level=0.3)
    audio = [episode_audio(rng, theme, seconds=AV_EPISODE_S) for _ in range(3)]
    wavs = [encode(a, sounds / f"{i}.wav") for i, a in enumerate(audio)]
    photos = {f"synthetic:{i}": im for i, im in enumerate(synthetic_photos(8, seed=11))}
    episodes = [(f"AV Show - S01E0{i + 1}", AV_EPISODE_S, wavs[i], (0.0, THEME_S))
                for i in range(2)]
    videos = build_library(episodes, folder, images=photos, config=TINY)
    audio_only = encode(audio[2], folder / "AV Show - S01E03.mp3",
                        audio_args=("-c:a", "libmp3lame", "-b:a", "128k"))
    index_dir = root / "index"
    with Index.open(index_dir, writable=True) as idx:
        drive(index_paths(idx, [folder]))
    return AVLibrary(folder, index_dir, videos, audio, audio_only)
