"""Sequence search over learned embeddings, on synthetic embeddings with a seeded RNG."""

from __future__ import annotations

import numpy as np
import pytest

from citywok.learned import search as S


def _unit(rng: np.random.Generator, n: int, dim: int = 64) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def _smooth_episode(rng: np.random.Generator, seconds: float, step_s: float) -> np.ndarray:
    """Embeddings every ``step_s`` of a slowly changing signal (a random walk on the sphere)."""
    n = int(seconds / step_s)
    walk = np.cumsum(rng.normal(size=(n, 64)) * np.sqrt(step_s), axis=0).astype(np.float32)
    walk += rng.normal(size=(1, 64)).astype(np.float32) * 5
    return np.asarray(walk / np.linalg.norm(walk, axis=1, keepdims=True), dtype=np.float32)


def test_sequence_finds_itself_at_the_right_offset() -> None:
    rng = np.random.default_rng(0)
    # Fine grid 0.1 s; the reference keeps every 5th (0.5 s), the query a 5 s stretch.
    fine = [_smooth_episode(rng, 300.0, 0.1) for _ in range(4)]
    ref = S.build_reference([f[::5] for f in fine], hop_s=0.5)
    start = 1234  # 123.4 s into episode 2
    query = fine[2][start : start + 41]
    times = np.arange(41) * 0.1
    best = S.search(query, times, ref)
    assert best[0].episode == 2
    assert abs(best[0].offset_s - 123.4) <= 0.25
    assert best[0].score > 0.9
    assert all(c.score < best[0].score for c in best[1:])


def test_unrelated_query_scores_low() -> None:
    rng = np.random.default_rng(1)
    ref = S.build_reference([_unit(rng, 600) for _ in range(3)], hop_s=0.5)
    best = S.search(_unit(rng, 41), np.arange(41) * 0.1, ref)
    assert best[0].score < 0.3


def test_reference_is_int8_and_small() -> None:
    rng = np.random.default_rng(2)
    ref = S.build_reference([_unit(rng, 7200)], hop_s=0.5)  # one hour
    assert ref.codes.dtype == np.int8
    assert ref.stored_bytes <= 0.5e6
    err = np.abs(ref.vectors - ref.codes.astype(np.float32) / ref.scale).max()
    assert err == 0.0


def test_empty_query_and_bad_input() -> None:
    rng = np.random.default_rng(3)
    ref = S.build_reference([_unit(rng, 10)], hop_s=0.5)
    assert S.search(np.zeros((0, 64), np.float32), [], ref) == []
    with pytest.raises(ValueError):
        S.search(_unit(rng, 3), [0.0], ref)
    with pytest.raises(ValueError):
        S.build_reference([], hop_s=0.5)


def test_z_uses_the_reference_moments() -> None:
    rng = np.random.default_rng(4)
    ref = S.build_reference([_unit(rng, 500), _unit(rng, 300)], hop_s=0.5)
    q = _unit(rng, 5)
    sims = q @ ref.vectors.T
    mu = q @ ref.mean_vector
    var = np.einsum("id,de,ie->i", q, ref.second_moment, q) - mu**2
    np.testing.assert_allclose(mu, sims.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(np.sqrt(var), sims.std(axis=1), atol=1e-4)


@pytest.mark.parametrize("floor_value", [-2.0, 0.5, 2.0])
def test_top_rows_agrees_with_a_full_partition(floor_value: float) -> None:
    rng = np.random.default_rng(5)
    sims = rng.normal(size=(7, 1000)).astype(np.float32)
    got = S.top_rows(sims, 10, floor=np.full(7, floor_value, dtype=np.float32))
    want = np.argpartition(-sims, 9, axis=1)[:, :10]
    assert [set(r) for r in got] == [set(r) for r in want]
