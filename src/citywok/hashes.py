"""Triplet hashes that survive speed, tempo and pitch changes.

A hash describes three peaks ``p1, p2, p3`` (in time order) by

* ``d12 = pitch2 - pitch1`` and ``d13 = pitch3 - pitch1`` in semitones: a pitch shift or
  a resampled speed change adds the same amount to every pitch, so differences keep;
* ``ratio = (t2 - t1) / (t3 - t1)``: a tempo or speed change scales every time
  difference by the same factor, so the ratio keeps.

Peak *order* in time is also unchanged by both, so "the next ``fanout`` peaks within
``partner_band_semitones`` of the anchor's pitch" picks the same partners in a reference
and in a distorted clip. Keeping partners near the anchor's pitch keeps whole triplets
inside one region of the spectrum, so noise that drowns the treble leaves the triplets
of the bass intact. The index stores, for each hash, a 32-bit *value* naming the anchor
peak and how many peaks later (in time order) its two partners come; the matcher reads
the peaks back to measure the time scale and pitch shift of each hit and keeps only
hits that agree.

Bit layout of a hash (``HASH_BITS`` = 18)::

    17        11 10         4 3   0
    [ d12 bin  ][  d13 bin  ][ratio]     d bins: pitch steps offset by PITCH_DIFF_OFFSET

Bit layout of a value (32 bits)::

    31                 10 9     5 4     0
    [ anchor peak index  ][ gap j ][ gap k ]   partners are anchor + gap j, anchor + gap k
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt

from citywok.params import AnalysisParams
from citywok.peaks import Peaks

RATIO_BITS = 4
PITCH_DIFF_BITS = 7
HASH_BITS = 2 * PITCH_DIFF_BITS + RATIO_BITS
RATIO_SHIFT = 0
D13_SHIFT = RATIO_BITS
D12_SHIFT = RATIO_BITS + PITCH_DIFF_BITS
PITCH_DIFF_OFFSET = 1 << (PITCH_DIFF_BITS - 1)
PITCH_DIFF_MAX_BIN = (1 << PITCH_DIFF_BITS) - 1
RATIO_MAX_BIN = (1 << RATIO_BITS) - 1

GAP_BITS = 5
MAX_GAP = (1 << GAP_BITS) - 1
PEAK_INDEX_BITS = 32 - 2 * GAP_BITS
MAX_PEAK_INDEX = (1 << PEAK_INDEX_BITS) - 1
GAP_J_SHIFT = GAP_BITS

#: Query-side tolerance: a feature closer than this to a bin edge is looked up in both
#: bins, so jitter from distortion does not lose the hit.
PITCH_EDGE_MARGIN = 0.2  # in bins
RATIO_EDGE_MARGIN = 0.2  # in bins


def pack_hash(d12_bin: npt.ArrayLike, d13_bin: npt.ArrayLike,
              ratio_bin: npt.ArrayLike) -> npt.NDArray[np.uint32]:
    d12 = np.asarray(d12_bin, dtype=np.uint32)
    d13 = np.asarray(d13_bin, dtype=np.uint32)
    ratio = np.asarray(ratio_bin, dtype=np.uint32)
    packed = (d12 << np.uint32(D12_SHIFT)) | (d13 << np.uint32(D13_SHIFT)) | ratio
    return np.asarray(packed, dtype=np.uint32)


def unpack_hash(
    h: npt.ArrayLike,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    x = np.asarray(h, dtype=np.uint32)
    mask_d = np.uint32(PITCH_DIFF_MAX_BIN)
    return (
        np.asarray((x >> np.uint32(D12_SHIFT)) & mask_d, dtype=np.uint32),
        np.asarray((x >> np.uint32(D13_SHIFT)) & mask_d, dtype=np.uint32),
        np.asarray(x & np.uint32(RATIO_MAX_BIN), dtype=np.uint32),
    )


def pack_value(peak_index: npt.ArrayLike, gap_j: npt.ArrayLike,
               gap_k: npt.ArrayLike) -> npt.NDArray[np.uint32]:
    idx = np.asarray(peak_index, dtype=np.uint64)
    gj = np.asarray(gap_j, dtype=np.uint64)
    gk = np.asarray(gap_k, dtype=np.uint64)
    if idx.size and int(idx.max()) > MAX_PEAK_INDEX:
        raise ValueError("peak index does not fit the value layout")
    if gj.size and (int(gj.max()) > MAX_GAP or int(gk.max()) > MAX_GAP):
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
        keep = (k >= 0) & (j >= 0)
        idx = np.flatnonzero(keep)
        span = frames[k[idx]] - frames[idx]
        good = span >= min_span_frames
        parts_i.append(idx[good])
        parts_j.append(j[idx[good]])
        parts_k.append(k[idx[good]])
    return Triplets(np.concatenate(parts_i), np.concatenate(parts_j), np.concatenate(parts_k))


def features(peaks: Peaks, trip: Triplets) -> tuple[
    npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]
]:
    """(d12, d13, ratio) of each triplet, as continuous values."""
    p = peaks.pitch
    f = peaks.frame
    d12 = p[trip.j] - p[trip.i]
    d13 = p[trip.k] - p[trip.i]
    ratio = (f[trip.j] - f[trip.i]).astype(np.float32) / (f[trip.k] - f[trip.i]).astype(
        np.float32
    )
    return d12.astype(np.float32), d13.astype(np.float32), ratio.astype(np.float32)


def _pitch_bin(d: npt.NDArray[np.float32], step: float) -> npt.NDArray[np.float32]:
    return d / np.float32(step) + np.float32(PITCH_DIFF_OFFSET)


def hash_triplets(peaks: Peaks, trip: Triplets, params: AnalysisParams) -> tuple[
    npt.NDArray[np.uint32], npt.NDArray[np.bool_]
]:
    """One hash per triplet (reference side), and which triplets fit the layout (pitch
    differences beyond its range are dropped: they are rare and such hashes would
    collide at the clipped edge)."""
    d12, d13, ratio = features(peaks, trip)
    b12 = np.floor(_pitch_bin(d12, params.pitch_step_semitones))
    b13 = np.floor(_pitch_bin(d13, params.pitch_step_semitones))
    fits = (b12 >= 0) & (b12 <= PITCH_DIFF_MAX_BIN) & (b13 >= 0) & (b13 <= PITCH_DIFF_MAX_BIN)
    br = np.clip(np.floor(ratio * params.ratio_bins), 0, params.ratio_bins - 1)
    return pack_hash(b12[fits], b13[fits], br[fits]), fits


def _bins_with_neighbour(
    x: npt.NDArray[np.float32], margin: float, max_bin: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each value's bin, and the nearest other bin when within ``margin`` of the edge
    (else -1)."""
    b = np.floor(x)
    frac = x - b
    other = np.where(frac < margin, b - 1, np.where(frac > 1 - margin, b + 1, -1))
    b = np.where((b < 0) | (b > max_bin), -1, b).astype(np.int64)
    other = np.where((other < 0) | (other > max_bin), -1, other).astype(np.int64)
    return b, other


def query_hashes(peaks: Peaks, trip: Triplets, params: AnalysisParams) -> tuple[
    npt.NDArray[np.uint32], npt.NDArray[np.int64]
]:
    """Hashes to look up for each triplet (query side): the bin of each feature and, near
    an edge, the neighbouring bin too. Returns hashes and the triplet each belongs to."""
    d12, d13, ratio = features(peaks, trip)
    b12, o12 = _bins_with_neighbour(_pitch_bin(d12, params.pitch_step_semitones),
                                    PITCH_EDGE_MARGIN, PITCH_DIFF_MAX_BIN)
    b13, o13 = _bins_with_neighbour(_pitch_bin(d13, params.pitch_step_semitones),
                                    PITCH_EDGE_MARGIN, PITCH_DIFF_MAX_BIN)
    br, orr = _bins_with_neighbour(ratio * np.float32(params.ratio_bins), RATIO_EDGE_MARGIN,
                                   params.ratio_bins - 1)
    src = np.arange(len(trip), dtype=np.int64)
    hashes, owners = [], []
    for x12 in (b12, o12):
        for x13 in (b13, o13):
            for xr in (br, orr):
                ok = (x12 >= 0) & (x13 >= 0) & (xr >= 0)
                hashes.append(pack_hash(x12[ok], x13[ok], xr[ok]))
                owners.append(src[ok])
    return np.concatenate(hashes), np.concatenate(owners)
