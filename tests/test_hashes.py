import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from citywok.hashes import (
    HASH_BITS,
    MAX_GAP,
    MAX_PEAK_INDEX,
    PITCH_DIFF_MAX_BIN,
    RATIO_MAX_BIN,
    features,
    hash_triplets,
    make_triplets,
    pack_hash,
    pack_value,
    query_hashes,
    unpack_hash,
    unpack_value,
)
from citywok.params import AnalysisParams
from citywok.peaks import Peaks

P = AnalysisParams()


@given(st.integers(0, PITCH_DIFF_MAX_BIN), st.integers(0, PITCH_DIFF_MAX_BIN),
       st.integers(0, RATIO_MAX_BIN))
def test_hash_round_trip(d12: int, d13: int, ratio: int) -> None:
    h = pack_hash(d12, d13, ratio)
    assert int(h) < 1 << HASH_BITS
    assert tuple(int(x) for x in unpack_hash(h)) == (d12, d13, ratio)


@given(st.integers(0, MAX_PEAK_INDEX), st.integers(0, MAX_GAP), st.integers(0, MAX_GAP))
def test_value_round_trip(peak: int, gap_j: int, gap_k: int) -> None:
    v = pack_value([peak], [gap_j], [gap_k])
    assert v.dtype == np.uint32
    p, j, k = unpack_value(v)
    assert (int(p[0]), int(j[0]), int(k[0])) == (peak, gap_j, gap_k)


def test_value_refuses_overflow() -> None:
    import pytest

    with pytest.raises(ValueError):
        pack_value([MAX_PEAK_INDEX + 1], [1], [2])
    with pytest.raises(ValueError):
        pack_value([0], [1], [MAX_GAP + 1])


def _peaks(rng: np.random.Generator, n: int = 200) -> Peaks:
    frames = np.sort(rng.integers(0, 2000, n)).astype(np.int32)
    pitch = rng.uniform(10, 50, n).astype(np.float32)
    order = np.lexsort((pitch, frames))
    return Peaks(frames[order], pitch[order])


@given(st.floats(0.75, 1.33), st.floats(-4.0, 4.0))
def test_features_invariant_to_speed_and_pitch(scale: float, shift: float) -> None:
    peaks = _peaks(np.random.default_rng(3))
    trip = make_triplets(peaks, fanout=4, max_span_frames=64, band_semitones=60)
    moved = Peaks((peaks.frame * scale).astype(np.float64).round().astype(np.int32),
                  (peaks.pitch + shift).astype(np.float32))
    d12a, d13a, ra = features(peaks, trip)
    d12b, d13b, rb = features(moved, trip)
    np.testing.assert_allclose(d12a, d12b, atol=1e-4)
    np.testing.assert_allclose(d13a, d13b, atol=1e-4)
    # Rounding frames to integers moves the ratio by at most about a frame's worth.
    spans = (peaks.frame[trip.k] - peaks.frame[trip.i]).astype(np.float64)
    assert np.all(np.abs(ra - rb) <= 1.0 / (spans * min(scale, 1.0)) + 1e-6)


def test_query_hashes_cover_reference_hash() -> None:
    peaks = _peaks(np.random.default_rng(5))
    trip = make_triplets(peaks, fanout=4, max_span_frames=64, band_semitones=60)
    ref, fits = hash_triplets(peaks, trip, P)
    # Pitch differences beyond the layout's range (here up to 40 semitones) are dropped.
    d12, d13, _ = features(peaks, trip)
    np.testing.assert_array_equal(fits, (np.abs(d12) < 32) & (np.abs(d13) < 32))
    q, owner = query_hashes(peaks, trip, P)
    for t, h in zip(np.flatnonzero(fits), ref, strict=True):
        assert h in set(q[owner == t].tolist())


def test_triplets_respect_span_and_fanout() -> None:
    peaks = _peaks(np.random.default_rng(8))
    trip = make_triplets(peaks, fanout=4, max_span_frames=30, band_semitones=60)
    span = peaks.frame[trip.k].astype(int) - peaks.frame[trip.i]
    assert span.max() <= 30 and span.min() >= 2
    assert np.all(trip.k - trip.i <= 4) and np.all(trip.i < trip.j) and np.all(trip.j < trip.k)
    assert len(trip) <= 6 * len(peaks)


def test_partners_stay_in_band() -> None:
    peaks = _peaks(np.random.default_rng(9))
    trip = make_triplets(peaks, fanout=4, max_span_frames=64, band_semitones=5)
    assert len(trip) > 0
    assert np.all(np.abs(peaks.pitch[trip.j] - peaks.pitch[trip.i]) <= 5)
    assert np.all(np.abs(peaks.pitch[trip.k] - peaks.pitch[trip.i]) <= 5)
    # The partners are the first in-band peaks after the anchor: none is skipped.
    for i, j in zip(trip.i[:50], trip.j[:50], strict=True):
        between = peaks.pitch[i + 1 : j]
        assert not np.any(np.abs(between - peaks.pitch[i]) <= 5) or j - i > 1
