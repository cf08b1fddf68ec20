"""Sequence search over learned embeddings, on synthetic embeddings with a seeded RNG."""

from __future__ import annotations

from pathlib import Path

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


def test_a_search_through_the_inverted_lists_finds_what_the_exact_one_finds() -> None:
    from citywok.learned.coarse import CoarseSpec, build_coarse

    rng = np.random.default_rng(5)
    fine = [_smooth_episode(rng, 600.0, 0.1) for _ in range(6)]
    ref = S.build_reference([f[::5] for f in fine], hop_s=0.5)
    coarse = build_coarse(ref, CoarseSpec.for_rows(len(ref.codes), lists_per_sqrt=1.0,
                                                   train_per_list=40, seed=1))
    assert coarse.rows == len(ref.codes) and coarse.spec.lists == 84  # sqrt(7,200)
    for ep, start in ((0, 50), (3, 2345), (5, 5000)):
        query = fine[ep][start : start + 41]
        times = np.arange(41) * 0.1
        exact = S.search(query, times, ref, max_candidates=1)[0]
        listed = S.search(query, times, ref, max_candidates=1, coarse=coarse, nprobe=8)[0]
        assert (listed.episode, listed.offset_s) == (exact.episode, exact.offset_s)
        assert listed.episode == ep and abs(listed.offset_s - start / 10) <= 0.25
        # Scored from the same codes: the same statistics, not approximations of them.
        assert listed.score == pytest.approx(exact.score, abs=1e-5)
        assert listed.z == pytest.approx(exact.z, abs=1e-4)


def test_the_lists_are_saved_under_their_reference_and_a_damaged_file_is_built_again(
        tmp_path: Path) -> None:
    from citywok.learned.coarse import (
        CoarseSpec,
        build_coarse,
        load_coarse,
        reference_digest,
        save_coarse,
    )

    rng = np.random.default_rng(6)
    ref = S.build_reference([_unit(rng, 3000), _unit(rng, 2000)], hop_s=0.5)
    spec = CoarseSpec(lists=16, train_per_list=40, seed=3)
    digest = reference_digest(ref, spec)
    assert load_coarse(tmp_path, spec, digest, rows=5000) is None
    save_coarse(build_coarse(ref, spec, digest=digest), tmp_path)
    back = load_coarse(tmp_path, spec, digest, rows=5000)
    assert back is not None and back.rows == 5000 and back.digest == digest
    # Another reference (one window changed) has another name: never the old lists.
    other = S.build_reference([_unit(rng, 3000), _unit(rng, 2000)], hop_s=0.5)
    assert reference_digest(other, spec) != digest
    assert load_coarse(tmp_path, spec, reference_digest(other, spec), rows=5000) is None
    # Cut short: refused, so it is built again.
    saved = next(tmp_path.glob("coarse-*.faiss"))
    saved.write_bytes(saved.read_bytes()[:1000])
    assert load_coarse(tmp_path, spec, digest, rows=5000) is None
    # A folder that cannot be written only means building again next time.
    (tmp_path / "file").write_text("x")
    save_coarse(build_coarse(ref, spec, digest=digest), tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"
    assert not list(tmp_path.glob(".coarse-*.tmp"))  # nothing half-written left behind
