"""Clip peaks → ranked (episode, offset, time scale, pitch shift, score) hypotheses.

1. The clip's triplets are hashed (with neighbouring bins near edges) and looked up.
2. Each hit is read back from the reference peaks and yields its own time scale
   (reference span / clip span) and pitch shift (mean pitch difference); hits outside the
   searched ranges, or whose exact features disagree beyond the peaks' precision, go.
3. Hits vote for (episode, where the clip's centre falls in it, pitch shift); the
   busiest distinct places are refined by a line fit ``t_ref = offset + scale * t_clip``
   through all their peak correspondences.
4. Each place is verified against the raw peaks: map every reference peak in the
   aligned window into the clip and count those that find a clip peak there, against
   how many would by chance (clip peaks of that pitch at any time). The *evidence*
   ``(matched - expected) / sqrt(expected + 1)`` ranks places and decides: repetitive
   music inflates raw vote counts, but not matches beyond chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from citywok.hashes import features, make_triplets, query_hashes, unpack_value
from citywok.params import AnalysisParams, MatchParams
from citywok.peaks import Peaks
from citywok.postings import lookup

#: Clip-centre vote bins (seconds); votes go to grids half a bin apart.
_VOTE_BIN_S = 0.768
_SHIFT_BIN = 1.0
#: How many distinct places are refined and verified.
_REFINE_TOP = 48
#: Exact-feature tolerances for a hit to count (semitones, ratio units, frames).
_PITCH_TOL = 0.5
_RATIO_TOL = 0.12
_SHIFT_SPREAD = 0.5
_LINE_TOL_S = 0.064
#: Verification: a reference peak is found when a clip peak lies this close (reference
#: frames, semitones) to where the fitted line puts it.
_VERIFY_TOL_S = 0.048
_VERIFY_TOL_PITCH = 0.35


class SegmentView(Protocol):
    """What the matcher needs of an index segment (read-only)."""

    @property
    def offsets(self) -> npt.NDArray[np.uint32]: ...
    @property
    def values(self) -> npt.NDArray[np.uint32]: ...
    @property
    def peak_frame(self) -> npt.NDArray[np.int32]: ...
    #: Stored pitch; multiplied by ``pitch_unit`` it is in semitones.
    @property
    def peak_pitch(self) -> npt.NDArray[np.uint16] | npt.NDArray[np.float32]: ...
    @property
    def pitch_unit(self) -> float: ...
    @property
    def episode_peak_start(self) -> npt.NDArray[np.int64]: ...
    @property
    def episode_keys(self) -> npt.NDArray[np.int64]: ...


@dataclass(frozen=True)
class Hit:
    """One place a clip lines up with an episode."""

    episode_key: int
    #: Reference frame at which the clip's first frame falls.
    offset_frames: float
    #: Reference duration / clip duration (1.25 means the clip plays 1.25x fast).
    time_scale: float
    #: Clip pitch minus reference pitch, in semitones.
    pitch_shift: float
    #: Distinct clip peaks on the fitted line.
    score: int
    #: Agreeing hits (several per peak).
    votes: int
    #: Reference peaks of the aligned window found in the clip, and how many chance gives.
    matched: int = 0
    expected: float = 0.0
    #: ``(matched - expected) / sqrt(expected + 1)``: the decision statistic.
    evidence: float = 0.0


@dataclass
class _Votes:
    episode: npt.NDArray[np.int64]
    center: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    shift: npt.NDArray[np.float64]
    q_idx: npt.NDArray[np.int64]  # (n, 3) clip peak indices
    t_q: npt.NDArray[np.float64]  # (n, 3) clip frames
    t_r: npt.NDArray[np.float64]  # (n, 3) reference frames


def _collect(query: Peaks, segments: Sequence[SegmentView], params: AnalysisParams,
             mp: MatchParams) -> _Votes | None:
    max_span = int(np.ceil(params.max_span_frames / mp.min_time_scale)) + 1
    trip = make_triplets(query, fanout=params.query_fanout, max_span_frames=max_span,
                         band_semitones=params.partner_band_semitones + 0.5,
                         min_span_frames=1)
    if len(trip) == 0:
        return None
    qh, owner = query_hashes(query, trip, params)
    qd12, qd13, qratio = features(query, trip)
    qf = query.frame.astype(np.float64)
    qp = query.pitch.astype(np.float64)
    center_q = 0.5 * (qf[0] + qf[-1])
    parts: list[_Votes] = []
    for seg in segments:
        vals, which = lookup(seg.offsets, seg.values, qh)
        if len(vals) == 0:
            continue
        t = owner[which]
        g, gap_j, gap_k = unpack_value(vals)
        rj = g + gap_j
        rk = g + gap_k
        pf = seg.peak_frame
        pp = seg.peak_pitch
        T1 = pf[g].astype(np.float64)
        T2 = pf[rj].astype(np.float64)
        T3 = pf[rk].astype(np.float64)
        unit = seg.pitch_unit
        P1 = pp[g] * unit
        P2 = pp[rj] * unit
        P3 = pp[rk] * unit
        qi, qj, qk = trip.i[t], trip.j[t], trip.k[t]
        t1, t2, t3 = qf[qi], qf[qj], qf[qk]
        scale = (T3 - T1) / (t3 - t1)
        ok = (scale >= mp.min_time_scale) & (scale <= mp.max_time_scale)
        ok &= np.abs((P2 - P1) - qd12[t]) <= _PITCH_TOL
        ok &= np.abs((P3 - P1) - qd13[t]) <= _PITCH_TOL
        ok &= np.abs((T2 - T1) / (T3 - T1) - qratio[t]) <= _RATIO_TOL
        shift = (qp[qi] + qp[qj] + qp[qk] - P1 - P2 - P3) / 3.0
        ok &= np.abs(shift) <= mp.max_pitch_shift_semitones
        if not ok.any():
            continue
        ep_local = np.searchsorted(seg.episode_peak_start, g[ok], side="right") - 1
        parts.append(_Votes(
            episode=seg.episode_keys[ep_local],
            center=T1[ok] + scale[ok] * (center_q - t1[ok]),
            scale=scale[ok],
            shift=shift[ok],
            q_idx=np.stack([qi[ok], qj[ok], qk[ok]], axis=1),
            t_q=np.stack([t1[ok], t2[ok], t3[ok]], axis=1),
            t_r=np.stack([T1[ok], T2[ok], T3[ok]], axis=1),
        ))
    if not parts:
        return None
    return _Votes(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                    ("episode", "center", "scale", "shift", "q_idx", "t_q", "t_r")))


def _refine(v: _Votes, idx: npt.NDArray[np.int64], n_query_peaks: int,
            frame_s: float) -> Hit | None:
    """Fit one line (and one pitch shift) through the votes ``idx`` of one place."""
    line_tol = _LINE_TOL_S / frame_s
    if len(idx) < 2:
        return None
    shifts = v.shift[idx]
    scale = float(np.median(v.scale[idx]))
    shift = float(np.median(shifts))
    near = idx[np.abs(shifts - shift) <= _SHIFT_SPREAD]
    if len(near) == 0:
        return None
    tq = v.t_q[near]
    tr = v.t_r[near]
    offset = float(np.median(tr[:, 0] - scale * tq[:, 0]))
    for _ in range(3):
        resid = np.abs(tr - (offset + scale * tq)).max(axis=1)
        inl = resid <= line_tol + 0.01 * np.abs(tq[:, 2] - tq[:, 0])
        if inl.sum() < 2:
            return None
        x = tq[inl].ravel()
        y = tr[inl].ravel()
        dx = x - x.mean()
        sxx = float(dx @ dx)
        if sxx > 0:  # least squares, closed form
            scale = float(dx @ (y - y.mean())) / sxx
            offset = float(y.mean() - scale * x.mean())
        else:
            offset = float(np.median(y - scale * x))
    resid = np.abs(tr - (offset + scale * tq)).max(axis=1)
    inl = resid <= line_tol
    if not inl.any():
        return None
    on_line = np.zeros(n_query_peaks, dtype=bool)
    on_line[v.q_idx[near[inl]].ravel()] = True
    return Hit(
        episode_key=int(v.episode[near[0]]),
        offset_frames=offset,
        time_scale=scale,
        pitch_shift=float(np.median(v.shift[near[inl]])),
        score=int(on_line.sum()),
        votes=int(inl.sum()),
    )


def _verify(hit: Hit, query: Peaks, segments: Sequence[SegmentView], frame_s: float) -> Hit:
    """Count the reference peaks of the aligned window that the clip has too."""
    tol = _VERIFY_TOL_S / frame_s
    for seg in segments:
        where = np.flatnonzero(seg.episode_keys == hit.episode_key)
        if len(where):
            break
    else:
        return hit
    e = int(where[0])
    lo, hi = int(seg.episode_peak_start[e]), int(seg.episode_peak_start[e + 1])
    qf = query.frame.astype(np.float64)
    t_lo = hit.offset_frames + hit.time_scale * float(qf[0])
    t_hi = hit.offset_frames + hit.time_scale * float(qf[-1])
    frames = seg.peak_frame[lo:hi]
    a = lo + int(np.searchsorted(frames, t_lo + tol, side="left"))
    b = lo + int(np.searchsorted(frames, t_hi - tol, side="right"))
    if b <= a:
        return hit
    ref_t = seg.peak_frame[a:b].astype(np.float64)
    ref_p = seg.peak_pitch[a:b] * seg.pitch_unit + hit.pitch_shift
    clip_t = hit.offset_frames + hit.time_scale * qf
    same_pitch = np.abs(ref_p[:, None] - query.pitch[None, :]) <= _VERIFY_TOL_PITCH
    same_time = np.abs(ref_t[:, None] - clip_t[None, :]) <= tol
    matched = int((same_pitch & same_time).any(axis=1).sum())
    window = (2 * tol + 1) / max(t_hi - t_lo, 1.0)
    expected = float(np.minimum(1.0, same_pitch.sum(axis=1) * window).sum())
    return replace(hit, matched=matched, expected=expected,
                   evidence=(matched - expected) / float(np.sqrt(expected + 1.0)))


def _distinct_places(v: _Votes, frame_s: float, min_votes: int) -> list[npt.NDArray[np.int64]]:
    """Vote indices of the busiest places, one group per place, busiest first.

    Votes go to (episode, centre bin, pitch-shift bin) on four grids shifted by half a
    bin, so a cluster on a bin edge is still whole on one of them; a place is then taken
    once, from the grid where it is busiest. Places with fewer than ``min_votes`` votes
    could never be a match and are not refined.
    """
    n = len(v.episode)
    vote_bin = _VOTE_BIN_S / frame_s
    keys: list[npt.NDArray[np.int64]] = []
    for grid in range(4):
        c_half, s_half = grid & 1, grid >> 1
        cbin = np.floor(v.center / vote_bin + 0.5 * c_half).astype(np.int64)
        sbin = np.floor(v.shift / _SHIFT_BIN + 0.5 * s_half).astype(np.int64) + 64
        keys.append((v.episode << 40) | (cbin << 10) | (sbin << 2) | grid)
    all_keys = np.concatenate(keys)
    order = np.argsort(all_keys, kind="stable")
    sorted_keys = all_keys[order]
    first = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    counts = np.diff(np.r_[first, len(sorted_keys)])
    groups: list[npt.NDArray[np.int64]] = []
    taken: list[tuple[int, float, float]] = []
    for u in np.argsort(-counts, kind="stable")[: 8 * _REFINE_TOP]:
        if counts[u] < min_votes:
            break
        idx = order[first[u] : first[u] + counts[u]] % n
        ep = int(v.episode[idx[0]])
        c = float(np.median(v.center[idx]))
        sh = float(np.median(v.shift[idx]))
        if any(ep == e2 and abs(c - c2) < vote_bin and abs(sh - s2) < _SHIFT_BIN
               for e2, c2, s2 in taken):
            continue
        taken.append((ep, c, sh))
        groups.append(idx)
        if len(groups) == _REFINE_TOP:
            break
    return groups


def match_peaks(query: Peaks, segments: Sequence[SegmentView], *, params: AnalysisParams,
                match_params: MatchParams) -> list[Hit]:
    """Best hypotheses for where ``query`` comes from, best first, one per place."""
    if len(query) < 3:
        return []
    v = _collect(query, segments, params, match_params)
    if v is None:
        return []
    fs = params.frame_s
    places = _distinct_places(v, fs, max(2, match_params.min_votes))
    hits = [h for h in (_refine(v, idx, len(query), fs) for idx in places) if h is not None]
    hits = [_verify(h, query, segments, fs) for h in hits]
    return best_per_place(hits, frame_s=fs)


def best_per_place(hits: Sequence[Hit], *, frame_s: float) -> list[Hit]:
    """Best first, keeping only the best hit of each place (episode and offset)."""
    kept: list[Hit] = []
    for h in sorted(hits, key=lambda h: (-h.evidence, -h.votes)):
        if any(k.episode_key == h.episode_key
               and abs(k.offset_frames - h.offset_frames) * frame_s < 2 * _VOTE_BIN_S
               for k in kept):
            continue
        kept.append(h)
    return kept


def confidence(evidence: float, *, min_evidence: float) -> float:
    """Map evidence to a [0, 1] confidence: 0.5 at the decision threshold, 0.9 two
    points above it. The benchmark's outside clips (not in the library) stay below the
    threshold; see bench/README.md for the measured reliability."""
    return float(1.0 / (1.0 + np.exp(-(evidence - min_evidence) * 1.1)))
