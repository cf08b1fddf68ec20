"""The corpus on disk: episodes, shared material, outside audio and its split; clips.

A clip is cut at :data:`SR_IN` (16 kHz) so that distortions work on a wider band than the
engine analyses; every distortion hands the engine 8 kHz audio (:data:`SR`).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

Audio = npt.NDArray[np.float32]
SR_IN = 16000
SR = 8000
#: The lengths outside clips are drawn at in turn, from one generator (bench.run's first
#: runs): kept so that their clips stay the same whatever else a run asks.
LENGTHS = (3.0, 5.0, 10.0)
#: The lengths of a run's clips by default: issue 15 added the 2 s column.
LIBRARY_LENGTHS = (2.0, 3.0, 5.0, 10.0)
#: The fastest distortion plays the clip 1.3x fast: cut this much more than its length.
MAX_SPEED = 1.35


def to_8k(x: Audio) -> Audio:
    return np.asarray(resample_poly(x, 1, 2), dtype=np.float32)


def cut(path: Path, start_s: float, length_s: float, *, rate_hz: int = SR_IN) -> Audio:
    """``length_s`` seconds of ``path`` from ``start_s``, mono at ``rate_hz``."""
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{start_s:.3f}", "-t",
         f"{length_s:.3f}", "-i", str(path), "-vn", "-ac", "1", "-ar", str(rate_hz), "-f",
         "f32le", "pipe:1"], capture_output=True, check=True)
    return np.frombuffer(out.stdout, np.float32).copy()


@dataclass(frozen=True)
class Span:
    """A stretch of an episode that other episodes hold too (intro, outro, cue)."""

    start_s: float
    end_s: float
    #: ``intro``, ``outro``, or the cue's id (``cue1`` ...): the same name in every holder.
    name: str


@dataclass(frozen=True)
class EpisodeFile:
    file: str
    duration_s: float
    shared: tuple[Span, ...]


@dataclass(frozen=True)
class Corpus:
    root: Path
    episodes: tuple[EpisodeFile, ...]
    outside: tuple[Path, ...]
    manifest: dict[str, Any]

    @property
    def library(self) -> Path:
        return self.root / "library"

    def holders(self, name: str) -> set[str]:
        """Files of the episodes that hold the shared material ``name``."""
        return {e.file for e in self.episodes if any(s.name == name for s in e.shared)}


def load_corpus(root: Path) -> Corpus:
    if not (root / "manifest.json").is_file() or not (root / "library").is_dir():
        # The corpus is not in the repository: say what is wanted, not a traceback.
        raise SystemExit(f"{root}: not a benchmark corpus (library/, outside/, manifest.json"
                         "); bench/README.md#the-corpus says what it is and where it comes "
                         "from")
    manifest = json.loads((root / "manifest.json").read_text())
    episodes = tuple(
        EpisodeFile(e["file"], float(e["duration_s"]), tuple(
            Span(float(s["start_s"]), float(s["end_s"]), s.get("cue_id") or s["kind"])
            for s in e["segments"] if s["kind"] != "scene"))
        for e in manifest["episodes"])
    outside = tuple(sorted(p for p in (root / "outside").iterdir() if p.is_file()))
    return Corpus(root=root, episodes=episodes, outside=outside, manifest=manifest)


def split_outside(files: tuple[Path, ...], *, seed: int, calibration_share: float = 0.5,
                  ) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """Split outside files (not clips: clips of one file are not independent) into a
    calibration part and a held-out part, each kind (``music_``, ``speech_``) on both
    sides, by a seeded shuffle."""
    rng = np.random.default_rng(seed)
    cal: list[Path] = []
    held: list[Path] = []
    kinds = sorted({f.name.split("_")[0] for f in files})
    for kind in kinds:
        group = [f for f in files if f.name.split("_")[0] == kind]
        order = rng.permutation(len(group))
        n_cal = max(1, round(len(group) * calibration_share)) if len(group) > 1 else 0
        cal += [group[i] for i in order[:n_cal]]
        held += [group[i] for i in order[n_cal:]]
    return tuple(sorted(cal)), tuple(sorted(held))


class Places:
    """Random clip places inside episode-specific audio (seeded); with ``tail_share`` < 1,
    only inside the last that share of each episode (the learned front end trains on the
    rest: train/learned/prepare.py's HELD_OUT_FRACTION)."""

    def __init__(self, corpus: Corpus, rng: np.random.Generator, *,
                 tail_share: float = 1.0) -> None:
        self.corpus = corpus
        self.rng = rng
        self.tail_share = tail_share

    def __call__(self, length_s: float) -> tuple[EpisodeFile, float]:
        eps = self.corpus.episodes
        span = length_s * MAX_SPEED
        while True:
            e = eps[int(self.rng.integers(len(eps)))]
            first = max(0.5, e.duration_s * (1 - self.tail_share))
            start = float(self.rng.uniform(first, e.duration_s - span - 0.5))
            if all(start + span < s.start_s or start > s.end_s for s in e.shared):
                return e, start
