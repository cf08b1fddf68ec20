"""Triplet hashes that survive speed, tempo and pitch changes.

A hash describes three peaks ``p1, p2, p3`` (in time order) by

* ``d12 = pitch2 - pitch1`` and ``d13 = pitch3 - pitch1`` in semitones: a pitch shift or
  a resampled speed change adds the same amount to every pitch, so differences keep;
* ``ratio = (t2 - t1) / (t3 - t1)``: a tempo or speed change scales every time
  difference by the same factor, so the ratio keeps;
* two coarse bands that do change, but slowly: ``log(t3 - t1)`` (the span) and the
  anchor's pitch. The query has already undone its guessed speed and pitch change (its
  warp) when it computes them, so what is left is at most ~11 % of time and ~2
  semitones; a value that close to a band edge is looked up in both bands.

Peak *order* in time is also unchanged by these changes, so "the next ``fanout`` peaks"
of an anchor are the same peaks in a reference and in a distorted clip. The value of a
posting names the anchor peak and how many peaks later its two partners come; the
matcher reads the peaks back to measure each hit's time scale and pitch shift.

Bit layout of a hash (``HASH_BITS`` = 24)::

    23    21 20    18 17       11 10        4 3     0
    [ pitch ][ span  ][ d12 bin  ][ d13 bin  ][ratio ]

Bit layout of a value (32 bits)::

    31                 10 9     5 4     0
    [ anchor peak index  ][ gap j ][ gap k ]   partners are anchor + gap j, anchor + gap k
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt

from citywok.analysis.peaks import Peaks, hz_to_pitch
from citywok.families.base import Correspondences, PeakTable, QueryLookups
from citywok.params import AnalysisParams, MatchParams

NAME = "triplet"

RATIO_BITS = 4
PITCH_DIFF_BITS = 7
SPAN_BITS = 3
PITCH_BAND_BITS = 3
RATIO_SHIFT = 0
D13_SHIFT = RATIO_SHIFT + RATIO_BITS
D12_SHIFT = D13_SHIFT + PITCH_DIFF_BITS
SPAN_SHIFT = D12_SHIFT + PITCH_DIFF_BITS
PITCH_BAND_SHIFT = SPAN_SHIFT + SPAN_BITS
HASH_BITS = PITCH_BAND_SHIFT + PITCH_BAND_BITS
PITCH_DIFF_OFFSET = 1 << (PITCH_DIFF_BITS - 1)
PITCH_DIFF_MAX_BIN = (1 << PITCH_DIFF_BITS) - 1
SPAN_MAX_BAND = (1 << SPAN_BITS) - 1
PITCH_MAX_BAND = (1 << PITCH_BAND_BITS) - 1

#: Shortest span (t3 - t1, frames) of a reference triplet: the span bands start here.
MIN_SPAN_FRAMES = 2

GAP_BITS = 5
MAX_GAP = (1 << GAP_BITS) - 1
PEAK_INDEX_BITS = 32 - 2 * GAP_BITS
#: Peaks a segment may hold (the value's anchor field): about 80 h of audio.
MAX_PEAK_INDEX = (1 << PEAK_INDEX_BITS) - 1
GAP_J_SHIFT = GAP_BITS


def pack_hash(d12_bin: npt.ArrayLike, d13_bin: npt.ArrayLike, ratio_bin: npt.ArrayLike,
              span_band: npt.ArrayLike, pitch_band: npt.ArrayLike) -> npt.NDArray[np.uint32]:
    fields = [(d12_bin, D12_SHIFT), (d13_bin, D13_SHIFT), (ratio_bin, RATIO_SHIFT),
              (span_band, SPAN_SHIFT), (pitch_band, PITCH_BAND_SHIFT)]
    out = np.zeros(np.shape(np.asarray(d12_bin)), dtype=np.uint32)
    for value, shift in fields:
        out |= np.asarray(value, dtype=np.uint32) << np.uint32(shift)
    return out


def unpack_hash(h: npt.ArrayLike) -> tuple[npt.NDArray[np.uint32], ...]:
    """``(d12_bin, d13_bin, ratio_bin, span_band, pitch_band)`` of packed hashes."""
    x = np.asarray(h, dtype=np.uint32)

    def field(shift: int, bits: int) -> npt.NDArray[np.uint32]:
        return np.asarray((x >> np.uint32(shift)) & np.uint32((1 << bits) - 1), np.uint32)

    return (field(D12_SHIFT, PITCH_DIFF_BITS), field(D13_SHIFT, PITCH_DIFF_BITS),
            field(RATIO_SHIFT, RATIO_BITS), field(SPAN_SHIFT, SPAN_BITS),
            field(PITCH_BAND_SHIFT, PITCH_BAND_BITS))


def pack_value(peak_index: npt.ArrayLike, gap_j: npt.ArrayLike,
               gap_k: npt.ArrayLike) -> npt.NDArray[np.uint32]:
    idx = np.asarray(peak_index, dtype=np.uint64)
    gj = np.asarray(gap_j, dtype=np.uint64)
    gk = np.asarray(gap_k, dtype=np.uint64)
    if idx.size and int(idx.max()) > MAX_PEAK_INDEX:
        raise ValueError("peak index does not fit the value layout")
    if gj.size and (int(gj.max()) > MAX_GAP or int(gk.max()) > MAX_GAP
                    or int(gj.min()) < 1 or int(gk.min()) < 1):
        raise ValueError("partner gap does not fit the value layout")
    packed = (idx << np.uint64(2 * GAP_BITS)) | (gj << np.uint64(GAP_J_SHIFT)) | gk
    return np.asarray(packed, dtype=np.uint32)


def unpack_value(v: npt.ArrayLike) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]
]:
    x = np.asarray(v, dtype=np.uint32).astype(np.int64)
    idx: npt.NDArray[np.int64] = x >> (2 * GAP_BITS)
    gap_j: npt.NDArray[np.int64] = (x >> GAP_J_SHIFT) & MAX_GAP
    gap_k: npt.NDArray[np.int64] = x & MAX_GAP
    return idx, gap_j, gap_k


@dataclass(frozen=True)
class Triplets:
    """Indices into a :class:`Peaks` of each triplet's three peaks."""

    i: npt.NDArray[np.int64]
    j: npt.NDArray[np.int64]
    k: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.i)


def make_triplets(peaks: Peaks, *, fanout: int, max_span_frames: int,
                  band_semitones: float, min_span_frames: int = 2) -> Triplets:
    """Every (anchor, two of its next ``fanout`` partners) within the span limits.

    Partners are the peaks after the anchor in (frame, pitch) order whose pitch is within
    ``band_semitones`` of the anchor's, looking at most :data:`MAX_GAP` peaks ahead.
    """
    n = len(peaks)
    frames = peaks.frame.astype(np.int64)
    if n < 3:
        empty = np.empty(0, np.int64)
        return Triplets(empty, empty, empty)
    gaps = np.arange(1, MAX_GAP + 1, dtype=np.int64)
    anchor = np.arange(n, dtype=np.int64)[:, None]
    cand = anchor + gaps[None, :]
    inside = cand < n
    cand_c = np.minimum(cand, n - 1)
    ok = inside & (np.abs(peaks.pitch[cand_c] - peaks.pitch[:, None]) <= band_semitones)
    ok &= frames[cand_c] - frames[:, None] <= max_span_frames
    rank = np.cumsum(ok, axis=1) - 1
    ok &= rank < fanout
    # Partner slots: (anchor, rank) -> peak index, -1 where absent.
    slots = np.full((n, fanout), -1, dtype=np.int64)
    rows, cols = np.nonzero(ok)
    slots[rows, rank[rows, cols]] = cand[rows, cols]
    parts_i, parts_j, parts_k = [], [], []
    for a, b in combinations(range(fanout), 2):
        j = slots[:, a]
        k = slots[:, b]
        idx = np.flatnonzero((k >= 0) & (j >= 0))
        span = frames[k[idx]] - frames[idx]
        good = span >= min_span_frames
        parts_i.append(idx[good])
        parts_j.append(j[idx[good]])
        parts_k.append(k[idx[good]])
    return Triplets(np.concatenate(parts_i), np.concatenate(parts_j), np.concatenate(parts_k))


def _features(pitch: npt.NDArray[np.float32], frame: npt.NDArray[np.int32],
              i: npt.NDArray[np.int64], j: npt.NDArray[np.int64], k: npt.NDArray[np.int64],
              ) -> tuple[npt.NDArray[np.float32], ...]:
    """(d12, d13, ratio, log span, anchor pitch) of triplets, as continuous values."""
    t1 = frame[i].astype(np.float32)
    span = frame[k].astype(np.float32) - t1
    return ((pitch[j] - pitch[i]).astype(np.float32),
            (pitch[k] - pitch[i]).astype(np.float32),
            ((frame[j].astype(np.float32) - t1) / span).astype(np.float32),
            np.log(span).astype(np.float32),
            pitch[i].astype(np.float32))


def _scaled(feats: tuple[npt.NDArray[np.float32], ...], params: AnalysisParams,
            ) -> list[npt.NDArray[np.float32]]:
    """Each feature in units of its bins (floor gives the bin)."""
    d12, d13, ratio, log_span, pitch = feats
    step = np.float32(params.pitch_step_semitones)
    lowest_pitch = np.float32(hz_to_pitch(params.fmin_hz))
    return [d12 / step + np.float32(PITCH_DIFF_OFFSET),
            d13 / step + np.float32(PITCH_DIFF_OFFSET),
            ratio * np.float32(params.ratio_bins),
            (log_span - np.float32(np.log(MIN_SPAN_FRAMES))) / np.float32(params.span_band_log),
            (pitch - lowest_pitch) / np.float32(params.pitch_band_semitones)]


def _max_bins(params: AnalysisParams) -> list[int]:
    return [PITCH_DIFF_MAX_BIN, PITCH_DIFF_MAX_BIN, params.ratio_bins - 1, SPAN_MAX_BAND,
            PITCH_MAX_BAND]


def reference_hashes(peaks: Peaks, params: AnalysisParams, *, first_peak: int = 0
                     ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """Hashes and values of one recording whose peaks start at ``first_peak`` in its
    segment. Triplets whose features fall outside the layout are dropped (rare; such
    hashes would pile up at the clipped edge)."""
    trip = make_triplets(peaks, fanout=params.index_fanout,
                         max_span_frames=params.max_span_frames,
                         band_semitones=params.partner_band_semitones,
                         min_span_frames=MIN_SPAN_FRAMES)
    scaled = _scaled(_features(peaks.pitch, peaks.frame, trip.i, trip.j, trip.k), params)
    bins = [np.floor(x) for x in scaled]
    bins[2] = np.minimum(bins[2], params.ratio_bins - 1)  # ratio 1.0 (t2 == t3)
    fits = np.ones(len(trip), dtype=bool)
    for b, top in zip(bins, _max_bins(params), strict=True):
        fits &= (b >= 0) & (b <= top)
    hashes = pack_hash(*(b[fits] for b in bins))
    i = trip.i[fits]
    values = pack_value(i + first_peak, trip.j[fits] - i, trip.k[fits] - i)
    return hashes, values


def _bins_with_neighbour(x: npt.NDArray[np.float32], margin: float, max_bin: int
                         ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each value's bin, and the nearest other bin when within ``margin`` of the edge
    (else -1)."""
    b = np.floor(x)
    frac = x - b
    other = np.where(frac < margin, b - 1, np.where(frac > 1 - margin, b + 1, -1))
    b = np.where((b < 0) | (b > max_bin), -1, b).astype(np.int64)
    other = np.where((other < 0) | (other > max_bin), -1, other).astype(np.int64)
    return b, other


def query_lookups(peaks: Peaks, params: AnalysisParams, mp: MatchParams) -> QueryLookups:
    """Hashes a clip looks up, for every triplet of its next ``mp.query_fanout`` peaks."""
    max_span = int(np.ceil(params.max_span_frames * 1.25)) + 1
    trip = make_triplets(peaks, fanout=mp.query_fanout, max_span_frames=max_span,
                         band_semitones=params.partner_band_semitones + 0.5,
                         min_span_frames=1)
    tuples = np.stack([trip.i, trip.j, trip.k], axis=1)
    if len(trip) == 0:
        return QueryLookups(np.empty(0, np.uint32), np.empty(0, np.int64), tuples)
    scaled = _scaled(_features(peaks.pitch, peaks.frame, trip.i, trip.j, trip.k), params)
    # A ratio of exactly 1 (t2 == t3) belongs to the last bin, as in the reference.
    scaled[2] = np.minimum(scaled[2], np.float32(params.ratio_bins) - np.float32(1e-3))
    tops = _max_bins(params)
    margins = [mp.edge_margin_bins] * 3 + [mp.band_margin_bins] * 2
    shifts = [D12_SHIFT, D13_SHIFT, RATIO_SHIFT, SPAN_SHIFT, PITCH_BAND_SHIFT]
    widths = [PITCH_DIFF_BITS, PITCH_DIFF_BITS, RATIO_BITS, SPAN_BITS, PITCH_BAND_BITS]
    fields = [_bins_with_neighbour(x, m, top)
              for x, m, top in zip(scaled, margins, tops, strict=True)]
    ok = np.ones(len(trip), dtype=bool)
    for b, _ in fields:
        ok &= b >= 0
    owner = np.flatnonzero(ok)
    hashes = np.zeros(len(owner), dtype=np.uint32)
    for (b, _), shift in zip(fields, shifts, strict=True):
        hashes |= b[owner].astype(np.uint32) << np.uint32(shift)
    # Each feature near a bin edge doubles its triplet's lookups: its field replaced by
    # the neighbouring bin, in every lookup made so far for that triplet.
    for (_, other), shift, width in zip(fields, shifts, widths, strict=True):
        alt = other[owner]
        near = np.flatnonzero(alt >= 0)
        clear = np.uint32(~(((1 << width) - 1) << shift) & 0xFFFFFFFF)
        moved = (hashes[near] & clear) | (alt[near].astype(np.uint32) << np.uint32(shift))
        hashes = np.concatenate([hashes, moved])
        owner = np.concatenate([owner, owner[near]])
    return QueryLookups(hashes, owner, tuples)


def resolve(lookups: QueryLookups, clip: Peaks, which: npt.NDArray[np.int64],
            values: npt.NDArray[np.uint32], table: PeakTable, params: AnalysisParams,
            mp: MatchParams) -> Correspondences:
    """Read postings back and keep the hits whose exact features agree with the clip's.

    ``values[n]`` answered lookup ``which[n]``. Each kept hit yields a time scale (the
    reference's span over the clip's) and a pitch shift (mean pitch difference).
    """
    t = lookups.owner[which]
    q = lookups.tuples[t]
    g, gap_j, gap_k = unpack_value(values)
    ref = np.stack([g, g + gap_j, g + gap_k], axis=1)
    # Bucket-mates with other residual bits and damaged values must not index outside.
    n_ref = len(table.peak_frame)
    inside = (ref[:, 2] < n_ref)
    ref, q = ref[inside], q[inside]
    rf = table.peak_frame[ref].astype(np.float64)
    rp = table.peak_pitch[ref].astype(np.float64) * table.pitch_unit
    qf = clip.frame[q].astype(np.float64)
    qp = clip.pitch[q].astype(np.float64)
    ref_span = rf[:, 2] - rf[:, 0]
    clip_span = qf[:, 2] - qf[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = ref_span / clip_span
        ok = (scale >= mp.min_time_scale) & (scale <= mp.max_time_scale)
        ok &= np.abs((rf[:, 1] - rf[:, 0]) / ref_span - (qf[:, 1] - qf[:, 0]) / clip_span
                     ) <= mp.ratio_tolerance
    tol = mp.pitch_tolerance_semitones
    ok &= np.abs((rp[:, 1] - rp[:, 0]) - (qp[:, 1] - qp[:, 0])) <= tol
    ok &= np.abs((rp[:, 2] - rp[:, 0]) - (qp[:, 2] - qp[:, 0])) <= tol
    shift = (qp - rp).mean(axis=1)
    ok &= np.abs(shift) <= mp.max_pitch_shift_semitones
    return Correspondences(ref=ref[ok], clip=q[ok], scale=scale[ok], shift=shift[ok])


def check_params(params: AnalysisParams) -> list[str]:
    """What in ``params`` cannot fit this family's bit layout (empty when all fits)."""
    problems: list[str] = []
    if params.ratio_bins < 2 or params.ratio_bins > 1 << RATIO_BITS:
        problems.append(f"ratio_bins must be 2..{1 << RATIO_BITS} ({RATIO_BITS} bits)")
    half_range = (1 << (PITCH_DIFF_BITS - 1)) * params.pitch_step_semitones
    if half_range < 12:
        problems.append(f"pitch_step_semitones too small: pitch differences of "
                        f"+-12 st must fit {PITCH_DIFF_BITS} bits")
    spans = math.floor((math.log(max(params.max_span_frames, MIN_SPAN_FRAMES))
                        - math.log(MIN_SPAN_FRAMES)) / params.span_band_log) + 1
    if params.span_band_log <= 0 or spans > 1 << SPAN_BITS:
        problems.append(f"span_band_log too small: log({params.max_span_frames}) needs "
                        f"{spans:.0f} bands, {1 << SPAN_BITS} fit")
    pitch_top = math.floor(12 * math.log2(params.fmax_hz / params.fmin_hz)
                           / params.pitch_band_semitones) + 1
    if params.pitch_band_semitones <= 0 or pitch_top > 1 << PITCH_BAND_BITS:
        problems.append(f"pitch_band_semitones too small: {pitch_top:.0f} bands "
                        f"needed, {1 << PITCH_BAND_BITS} fit")
    if not 2 <= params.index_fanout <= MAX_GAP:
        problems.append(f"index_fanout must be 2..{MAX_GAP}")
    return problems
