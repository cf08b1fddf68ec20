"""Everything the bench assumes about the engine's decision, in one place.

The engine answers ``no_match`` when its best candidate's score is below one threshold,
the field ``MatchParams.min_score``, the same for every clip length (chance agreement of
sketches does not grow with the length). When the engine changes how it decides, change
:data:`THRESHOLD_FIELD`, :func:`threshold_value` and :func:`calibrated` here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from citywok.analysis.peaks import import_scipy
from citywok.index import Index
from citywok.params import MatchParams
from citywok.pipeline import identify_file, identify_samples
from citywok.result import IdentifyResult, Status

# The engine imports SciPy on its first clip (so that `citywok --help` never does); the
# bench times clips, not that import.
import_scipy()

#: The ``MatchParams`` field that sets the decision threshold (monotone: larger, stricter).
THRESHOLD_FIELD = "min_score"
#: A value of that field that lets every candidate through: the raw best score shows.
OPEN = -1e9


def threshold_value(mp: MatchParams) -> float:
    """The score a clip of any length needs to be answered under ``mp``."""
    return float(getattr(mp, THRESHOLD_FIELD))


def with_threshold(mp: MatchParams, value: float) -> MatchParams:
    changes: dict[str, Any] = {THRESHOLD_FIELD: value}
    return replace(mp, **changes)


def calibrated(mp: MatchParams, needed: Mapping[float, float]) -> MatchParams:
    """``mp`` with the smallest threshold at which a clip of every length ``L`` in
    ``needed`` needs at least ``needed[L]``: one threshold serves every length, so it is
    the largest of them, rounded up to the next thousandth (at least 0)."""
    return with_threshold(mp, round(max(0.0, *needed.values()) + 5e-4, 3))


@dataclass(frozen=True)
class Answer:
    """One identification, reduced to what the bench scores."""

    status: Status
    #: Best candidate (``None`` for ``no_match``).
    episode_file: str | None
    episode_id: str | None
    offset_s: float | None
    score: float | None
    speed: float | None
    #: Files of every candidate shown.
    candidate_files: tuple[str, ...]
    elapsed_ms: float


def answer(res: IdentifyResult, elapsed_ms: float) -> Answer:
    m = res.match
    return Answer(
        status=res.status,
        episode_file=Path(m.episode.source_path).name if m else None,
        episode_id=m.episode.episode_id if m else None,
        offset_s=m.offset_s if m else None,
        score=m.score if m else None,
        speed=m.speed if m else None,
        candidate_files=tuple(Path(c.episode.source_path).name for c in res.candidates),
        elapsed_ms=elapsed_ms,
    )


def identify(samples: np.ndarray, index: Index, mp: MatchParams) -> Answer:
    """Identify decoded audio (8 kHz), timed on the wall clock."""
    t = time.perf_counter()
    res = identify_samples(samples, index, match_params=mp)
    return answer(res, (time.perf_counter() - t) * 1000)


def identify_path(path: Path, index: Index, mp: MatchParams) -> Answer:
    """Identify a file: decoding included, as the CLI and the service do."""
    t = time.perf_counter()
    res = identify_file(path, index, match_params=mp)
    return answer(res, (time.perf_counter() - t) * 1000)


def raw_best(samples: np.ndarray, index: Index, mp: MatchParams) -> Answer:
    """The answer with the threshold out of the way: its best candidate's score is the
    raw score (``None``: the engine found no candidate at all). The engine does not
    report it on ``no_match`` answers, so this is a second identification."""
    return identify(samples, index, with_threshold(mp, OPEN))


@contextmanager
def one_core() -> Iterator[int]:
    """Pin this process (and the ffmpeg it starts) to one CPU while timing queries."""
    before = os.sched_getaffinity(0)
    core = max(before)
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, before)
