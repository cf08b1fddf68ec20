"""The pure parts of following: likelihood ratios, the best run, where two places meet."""

from __future__ import annotations

import numpy as np
import pytest

from citywok.long.follow import best_interval, llr, meet
from citywok.params import FollowParams

CHANCE = FollowParams().chance_range


def lr(u: np.ndarray, found: np.ndarray, chance: np.ndarray, rate: float) -> np.ndarray:
    return llr(u, found, chance, rate, chance_range=CHANCE)


def observations(found: list[int], *, start: float = 0.0, step: float = 1.0,
                 chance: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u = start + step * np.arange(len(found), dtype=np.float64)
    return u, np.asarray(found, dtype=bool), np.full(len(found), chance)


def test_likelihood_ratio_signs_and_shared_frames() -> None:
    u, found, chance = observations([1, 0])
    out = lr(u, found, chance, 0.8)
    assert out[0] > 0 > out[1]
    # Four peaks of one frame (one note's harmonics) weigh as much as one peak.
    u4 = np.array([5.0, 5.0, 5.0, 5.0, 9.0])
    f4 = np.array([False, False, False, False, False])
    c4 = np.full(5, 0.05)
    out4 = lr(u4, f4, c4, 0.8)
    assert out4[:4].sum() == pytest.approx(out4[4])


def test_best_interval_finds_the_run_that_fits() -> None:
    score = np.array([-1.0, -1.0, 2.0, 1.0, -0.5, 2.0, -3.0, -3.0, 1.0])
    i, j, best = best_interval(np.arange(len(score), dtype=np.float64), score)
    assert (i, j) == (2, 6) and best == pytest.approx(4.5)


def test_meet_at_a_hard_cut() -> None:
    # a is found up to 10, then nothing; b from 11 on: they meet between 10 and 11.
    ua, fa, ca = observations([1] * 11 + [0] * 10)
    ub, fb, cb = observations([0] * 11 + [1] * 10)
    end, start = meet(ua, lr(ua, fa, ca, 0.8), ub, lr(ub, fb, cb, 0.8), lo=0, hi=21,
                      min_gap=2.0)
    assert end == start == pytest.approx(10.5)


def test_meet_leaves_what_neither_explains_unknown() -> None:
    # a up to 5, b from 15, misses of both in between: an unknown stretch 5.5-14.5.
    ua, fa, ca = observations([1] * 6 + [0] * 14)
    ub, fb, cb = observations([0] * 15 + [1] * 5)
    end, start = meet(ua, lr(ua, fa, ca, 0.8), ub, lr(ub, fb, cb, 0.8), lo=0, hi=20,
                      min_gap=2.0)
    assert end == pytest.approx(5.5) and start == pytest.approx(14.5)


def test_meet_takes_a_weak_start_in() -> None:
    # b is weak (found 1 in 3) from 8 on, strong from 14: its start is 8, not 14.
    weak = [1, 0, 0] * 2
    ub, fb, cb = observations([0] * 8 + weak + [1] * 6)
    ua, fa, ca = observations([1] * 4 + [0] * 16)
    lb = lr(ub, fb, cb, 0.3)
    end, start = meet(ua, lr(ua, fa, ca, 0.8), ub, lb, lo=0, hi=20, min_gap=2.0)
    assert end == pytest.approx(3.5) and start == pytest.approx(7.5)


def test_meet_splits_an_overlap_at_the_best_cut() -> None:
    # A crossfade: a found until 12, b from 8; each is the louder one on its own side.
    ua, fa, ca = observations([1] * 10 + [1, 0, 1, 0] + [0] * 6)
    ub, fb, cb = observations([0] * 6 + [0, 1, 0, 1] + [1] * 10)
    end, start = meet(ua, lr(ua, fa, ca, 0.8), ub, lr(ub, fb, cb, 0.8), lo=0, hi=20,
                      min_gap=1.0)
    assert end == start
    assert 8.0 <= end <= 12.0


def test_a_stretch_without_peaks_is_split_in_its_middle() -> None:
    ua, fa, ca = observations([1] * 5, start=0.0)
    ub, fb, cb = observations([1] * 5, start=9.0)
    end, start = meet(ua, lr(ua, fa, ca, 0.8), ub, lr(ub, fb, cb, 0.8), lo=0, hi=14,
                      min_gap=10.0)
    assert end == start == pytest.approx((4.0 + 9.0) / 2)
