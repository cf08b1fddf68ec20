"""The triplet family: bit fields, invariance, and that a clip's lookups cover the
reference's hashes under the distortions they must survive."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citywok.analysis.peaks import Peaks
from citywok.families import triplet as T
from citywok.families.base import QueryLookups
from citywok.params import AnalysisParams, MatchParams

P = AnalysisParams()
MP = MatchParams()


@given(st.integers(0, T.PITCH_DIFF_MAX_BIN), st.integers(0, T.PITCH_DIFF_MAX_BIN),
       st.integers(0, (1 << T.RATIO_BITS) - 1), st.integers(0, T.SPAN_MAX_BAND),
       st.integers(0, T.PITCH_MAX_BAND))
def test_hash_round_trip(d12: int, d13: int, ratio: int, span: int, pitch: int) -> None:
    h = T.pack_hash(d12, d13, ratio, span, pitch)
    assert int(h) < 1 << T.HASH_BITS
    assert tuple(int(x) for x in T.unpack_hash(h)) == (d12, d13, ratio, span, pitch)


@given(st.integers(0, T.MAX_PEAK_INDEX), st.integers(1, T.MAX_GAP), st.integers(1, T.MAX_GAP))
def test_value_round_trip(peak: int, gap_j: int, gap_k: int) -> None:
    v = T.pack_value([peak], [gap_j], [gap_k])
    assert v.dtype == np.uint32
    p, j, k = T.unpack_value(v)
    assert (int(p[0]), int(j[0]), int(k[0])) == (peak, gap_j, gap_k)


def test_value_refuses_overflow() -> None:
    with pytest.raises(ValueError):
        T.pack_value([T.MAX_PEAK_INDEX + 1], [1], [2])
    with pytest.raises(ValueError):
        T.pack_value([0], [1], [T.MAX_GAP + 1])
    with pytest.raises(ValueError):
        T.pack_value([0], [0], [2])


def _peaks(rng: np.random.Generator, n: int = 300) -> Peaks:
    frames = np.sort(rng.integers(0, 3000, n)).astype(np.int32)
    pitch = rng.uniform(10, 55, n).astype(np.float32)
    order = np.lexsort((pitch, frames))
    return Peaks(frames[order], pitch[order])


def _feature_table(peaks: Peaks, trip: T.Triplets) -> tuple[np.ndarray, ...]:
    return T._features(peaks.pitch, peaks.frame, trip.i, trip.j, trip.k)


@settings(deadline=None)
@given(st.floats(0.75, 1.33), st.floats(-4.0, 4.0))
def test_invariant_features_keep_under_speed_and_pitch(scale: float, shift: float) -> None:
    peaks = _peaks(np.random.default_rng(3))
    trip = T.make_triplets(peaks, fanout=4, max_span_frames=64, band_semitones=60)
    moved = Peaks((peaks.frame * scale).round().astype(np.int32),
                  (peaks.pitch + shift).astype(np.float32))
    d12a, d13a, ra, span_a, pitch_a = _feature_table(peaks, trip)
    d12b, d13b, rb, span_b, pitch_b = _feature_table(moved, trip)
    np.testing.assert_allclose(d12a, d12b, atol=1e-4)
    np.testing.assert_allclose(d13a, d13b, atol=1e-4)
    spans = np.exp(span_a)
    # Rounding frames to integers moves the ratio by at most about a frame's worth.
    assert np.all(np.abs(ra - rb) <= 1.0 / (spans * min(scale, 1.0)) + 1e-6)
    # The bands move by exactly the change: log(scale) and the shift.
    # (Each rounded end moves a span by up to half a frame.)
    slack = np.log((spans * scale + 1.0) / np.maximum(spans * scale - 1.0, 0.5))
    assert np.all(np.abs(span_b - span_a - np.log(scale)) <= slack + 1e-4)
    np.testing.assert_allclose(pitch_b - pitch_a, shift, atol=1e-4)


def _covered(ref_peaks: Peaks, clip: Peaks) -> float:
    """Share of the reference's hashes that the clip looks up for the same triplet."""
    ref_h, ref_v = T.reference_hashes(ref_peaks, P)
    anchor, gj, gk = T.unpack_value(ref_v)
    want = {(int(a), int(a + j), int(a + k), int(h))
            for a, j, k, h in zip(anchor, gj, gk, ref_h, strict=True)}
    look = T.query_lookups(clip, P, MP)
    got = {(int(look.tuples[o, 0]), int(look.tuples[o, 1]), int(look.tuples[o, 2]), int(h))
           for o, h in zip(look.owner, look.hashes, strict=True)}
    return len(want & got) / max(1, len(want))


def test_clip_lookups_cover_every_reference_hash() -> None:
    peaks = _peaks(np.random.default_rng(5))
    assert _covered(peaks, peaks) == 1.0


@pytest.mark.parametrize(("scale", "shift"), [(1.05, 0.0), (1.0, 1.2), (0.94, -1.5)])
def test_lookups_absorb_what_a_warp_leaves(scale: float, shift: float) -> None:
    """After the nearest warp, up to ~6 % of time and ~1.5 semitones remain: the band
    margins must still find nearly every hash (a pitch shift moves the pitch band, a
    speed change the span band)."""
    peaks = _peaks(np.random.default_rng(6))
    moved = Peaks((peaks.frame * scale).round().astype(np.int32),
                  (peaks.pitch + shift).astype(np.float32))
    assert _covered(peaks, moved) > 0.85


def test_far_pitch_shift_leaves_the_bands() -> None:
    """Without a warp, a 6-semitone shift moves most anchors to another pitch band: the
    bands carry information (that is why the query warps first)."""
    peaks = _peaks(np.random.default_rng(7))
    moved = Peaks(peaks.frame, (peaks.pitch + 6.0).astype(np.float32))
    assert _covered(peaks, moved) < 0.5


def test_reference_drops_features_outside_the_layout() -> None:
    frames = np.array([0, 10, 20, 30], dtype=np.int32)
    # 40 semitones between the anchor and a partner: beyond the 7-bit, 0.5-step field.
    pitch = np.array([10.0, 50.0, 12.0, 14.0], dtype=np.float32)
    _, v = T.reference_hashes(Peaks(frames, pitch), P)
    anchor, gj, gk = T.unpack_value(v)
    assert not np.any((anchor == 0) & ((gj == 1) | (gk == 1)))
    assert np.any(anchor == 0)


def test_resolve_keeps_agreeing_hits_and_measures_them() -> None:
    class Table:
        def __init__(self, p: Peaks) -> None:
            self.peak_frame = p.frame
            self.peak_pitch = np.round(p.pitch * 64).astype(np.uint16)
            self.pitch_unit = 1 / 64

    ref = Peaks(np.array([100, 110, 130], np.int32), np.array([20.0, 25.0, 18.0], np.float32))
    # The clip plays 1.25x fast and 2 semitones up.
    clip = Peaks(np.array([0, 8, 24], np.int32), np.array([22.0, 27.0, 20.0], np.float32))
    look = QueryLookups(np.zeros(1, np.uint32), np.zeros(1, np.int64), np.array([[0, 1, 2]]))
    value = T.pack_value([0], [1], [2])
    hits = T.resolve(look, clip, np.zeros(1, np.int64), value, Table(ref), P, MP)
    assert len(hits) == 1
    assert hits.scale[0] == pytest.approx(30 / 24)
    assert hits.shift[0] == pytest.approx(2.0, abs=0.02)
    # A partner whose pitch interval disagrees by a semitone is not a hit.
    off = Peaks(clip.frame, np.array([22.0, 28.0, 20.0], np.float32))
    assert len(T.resolve(look, off, np.zeros(1, np.int64), value, Table(ref), P, MP)) == 0
    # Neither is one outside the plausible time scales.
    slow = Peaks(np.array([0, 20, 60], np.int32), clip.pitch)
    assert len(T.resolve(look, slow, np.zeros(1, np.int64), value, Table(ref), P, MP)) == 0


def test_triplets_respect_span_and_fanout() -> None:
    peaks = _peaks(np.random.default_rng(8))
    trip = T.make_triplets(peaks, fanout=4, max_span_frames=30, band_semitones=60)
    span = peaks.frame[trip.k].astype(int) - peaks.frame[trip.i]
    assert span.max() <= 30 and span.min() >= 2
    assert np.all(trip.k - trip.i <= 4) and np.all(trip.i < trip.j) and np.all(trip.j < trip.k)
    assert len(trip) <= 6 * len(peaks)


def test_partners_stay_in_band() -> None:
    peaks = _peaks(np.random.default_rng(9))
    trip = T.make_triplets(peaks, fanout=4, max_span_frames=64, band_semitones=5)
    assert len(trip) > 0
    assert np.all(np.abs(peaks.pitch[trip.j] - peaks.pitch[trip.i]) <= 5)
    assert np.all(np.abs(peaks.pitch[trip.k] - peaks.pitch[trip.i]) <= 5)
