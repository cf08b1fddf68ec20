"""Shared fixtures: a small generated library and its index (built once per session)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from citywok.cli.demo import RATE_HZ, encode, make_library
from citywok.index import Index
from citywok.pipeline import drive, index_paths

#: Session-scoped real servers (moto S3, PostgreSQL) for the deployment tests.
pytest_plugins = ["tests.servers"]


@dataclass(frozen=True)
class DemoLibrary:
    folder: Path
    index_dir: Path
    truth: list[dict[str, Any]]

    def raw(self, n: int) -> npt.NDArray[np.float32]:
        return np.asarray(np.load(self.folder / self.truth[n]["raw"]), dtype=np.float32)

    def clip(self, n: int, start_s: float, length_s: float) -> npt.NDArray[np.float32]:
        raw = self.raw(n)
        return raw[int(start_s * RATE_HZ) : int((start_s + length_s) * RATE_HZ)]

    def episode_id(self, n: int) -> str:
        return f"demo-show-s01e{n + 1:02d}"


@pytest.fixture(scope="session", autouse=True)
def _service_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The web service keeps keys and shares in CITYWOK_DATA_DIR (the per-user data dir
    by default): tests, and the servers they start, keep theirs in a temporary one."""
    old = os.environ.get("CITYWOK_DATA_DIR")
    os.environ["CITYWOK_DATA_DIR"] = str(tmp_path_factory.mktemp("service-data"))
    yield
    if old is None:
        os.environ.pop("CITYWOK_DATA_DIR", None)
    else:
        os.environ["CITYWOK_DATA_DIR"] = old


@pytest.fixture(scope="session")
def demo_library(tmp_path_factory: pytest.TempPathFactory) -> DemoLibrary:
    root = tmp_path_factory.mktemp("demo")
    folder = root / "library"
    make_library(folder, episodes=4, seconds=40.0, seed=11)
    index_dir = root / "index"
    with Index.open(index_dir, writable=True) as idx:
        drive(index_paths(idx, [folder]))
    truth = json.loads((folder / "truth.json").read_text())
    return DemoLibrary(folder=folder, index_dir=index_dir, truth=truth)


@pytest.fixture()
def demo_index(demo_library: DemoLibrary) -> Iterator[Index]:
    with Index.open(demo_library.index_dir) as idx:
        yield idx


@pytest.fixture(scope="session")
def outside_audio() -> npt.NDArray[np.float32]:
    """Audio that is in no library: other words, over glides that avoid the demo's scale."""
    from citywok.cli.demo import speech

    words = speech("the quick brown fox jumps over the lazy dog while seven zebras watch "
                   "quietly from a distance", voice="en-us", speed_wpm=140)
    rng = np.random.default_rng(999)
    t = np.arange(len(words)) / RATE_HZ
    f = 170.0 + 60.0 * np.sin(2 * np.pi * 0.37 * t) + rng.uniform(0, 40)
    glide = 0.1 * np.sin(2 * np.pi * np.cumsum(f) / RATE_HZ)
    return np.asarray(words * 0.5 + glide, dtype=np.float32)


def write_clip(samples: npt.NDArray[np.float32], path: Path, *, filters: str | None = None,
               audio_args: tuple[str, ...] = ("-c:a", "pcm_s16le")) -> Path:
    return encode(samples, path, audio_args=audio_args, filters=filters)


def to_8k(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """16 kHz demo audio → the analysis rate, properly low-passed."""
    from scipy.signal import resample_poly

    return np.asarray(resample_poly(x, 1, 2), dtype=np.float32)
