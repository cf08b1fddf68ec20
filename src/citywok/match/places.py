"""Clip peaks → candidate places, from the postings of the nominating family.

1. **Lookups.** The clip's hashes (the index's nominating family's ``query_lookups``)
   are read through :meth:`Index.postings`, rarest first within
   ``MatchParams.postings_budget`` (:mod:`citywok.store.reads`).
2. **Hits.** The family reads each posting's peaks back and keeps the hits whose exact
   features agree with the clip's; each implies a time scale and a pitch shift.
3. **Places.** Hits vote for (episode, where the clip's centre falls, pitch shift); the
   busiest distinct places with at least ``min_votes`` votes get a line fit
   ``t_ref = offset + scale * t_clip`` through their peak correspondences.
Verification (:mod:`citywok.match.verify`) then scores each place. A segment found
damaged while its postings are read is set aside (:meth:`Index.set_aside_read`) while
the others answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from citywok.analysis.peaks import Peaks
from citywok.families.base import QueryLookups
from citywok.index import Index
from citywok.params import AnalysisParams, MatchParams


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
    #: Distinct clip peaks on the fitted line (the hashes' count; the decision's
    #: statistic is ``evidence``, which an answer's ``Candidate.score`` reports).
    peaks_on_line: int
    #: Agreeing hash hits (several per peak).
    votes: int
    #: Clip frame around which the hits lie (where the fitted line is surest); a time
    #: scale is changed about it. Negative: the clip's centre.
    pivot_frames: float = -1.0
    #: Sketch bits compared and found equal (0 before verification).
    bits: int = 0
    equal_bits: int = 0
    #: Agreement of the sketches beyond chance, in standard deviations: the decision
    #: statistic (0 before verification).
    evidence: float = 0.0
    #: The front end that found the place: ``peaks`` (triplet hashes) or the embedding
    #: family's name (``learned``), whose evidence is its fused statistic, rescaled.
    front_end: str = "peaks"


@dataclass(frozen=True)
class _Votes:
    episode: npt.NDArray[np.int64]
    center: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    shift: npt.NDArray[np.float64]
    q_idx: npt.NDArray[np.int64]  # (n, k) clip peak indices
    t_q: npt.NDArray[np.float64]  # (n, k) clip frames
    t_r: npt.NDArray[np.float64]  # (n, k) reference frames


@dataclass(frozen=True)
class WarpedPeaks:
    """A clip's peaks picked from its spectrogram warped by ``time_factor`` (frames) and
    ``freq_factor`` (frequencies): one guess at undoing a speed, tempo or pitch change."""

    peaks: Peaks
    time_factor: float = 1.0
    freq_factor: float = 1.0


def _collect(views: Sequence[WarpedPeaks], clip_frames: float, index: Index,
             params: AnalysisParams, mp: MatchParams) -> _Votes | None:
    """Hits of every view, read in one pass and put back in the clip's own axes (a place
    seen through several warps gathers the votes of all of them)."""
    family = index.nominator
    peak_parts, tuple_parts, hash_parts, owner_parts = [], [], [], []
    view_parts: list[npt.NDArray[np.int64]] = []
    first_peak = first_tuple = 0
    for n, view in enumerate(views):
        if len(view.peaks) < 3:
            continue
        look = family.query_lookups(view.peaks, params, mp)
        peak_parts.append(view.peaks)
        tuple_parts.append(look.tuples + first_peak)
        hash_parts.append(look.hashes)
        owner_parts.append(look.owner + first_tuple)
        view_parts.append(np.full(len(view.peaks), n, dtype=np.int64))
        first_peak += len(view.peaks)
        first_tuple += len(look.tuples)
    if not hash_parts:
        return None
    query = Peaks.concat(peak_parts)
    lookups = QueryLookups(np.concatenate(hash_parts), np.concatenate(owner_parts),
                           np.concatenate(tuple_parts))
    view_of_peak = np.concatenate(view_parts)
    time_factor = np.array([v.time_factor for v in views], dtype=np.float64)
    shift_back = 12.0 * np.log2(np.array([v.freq_factor for v in views], dtype=np.float64))
    live_keys = np.fromiter(index.episodes, dtype=np.int64)
    parts: list[_Votes] = []
    for got in index.postings(lookups.hashes, budget=mp.postings_budget * len(views)):
        try:
            hits = family.resolve(lookups, query, got.lookup, got.values, got.table, params,
                                  mp)
            if len(hits) == 0:
                continue
            keys = got.episode_keys(hits.ref[:, 0])
            live = np.isin(keys, live_keys)
            if not live.any():
                continue
            # The view each hit came through, from the clip peaks it pairs with.
            v_no = view_of_peak[hits.clip[live, 0]]
            tf = time_factor[v_no][:, None]
            t_r = got.peak_frames(hits.ref[live]).astype(np.float64)
        except (IndexError, ValueError) as exc:
            # Only damage makes a segment's own arrays disagree: the others still answer.
            index.set_aside_read(got, exc)
            continue
        t_q = query.frame[hits.clip[live]].astype(np.float64) / tf
        scale = hits.scale[live] * tf[:, 0]
        parts.append(_Votes(
            episode=keys[live], center=np.zeros(int(live.sum())), scale=scale,
            shift=hits.shift[live] - shift_back[v_no], q_idx=hits.clip[live], t_q=t_q,
            t_r=t_r))
    if not parts:
        return None
    v = _Votes(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                 ("episode", "center", "scale", "shift", "q_idx", "t_q", "t_r")))
    # Where each hit puts the clip's centre (clip axes): the place it votes for.
    return replace(v, center=v.t_r[:, 0] + v.scale * (0.5 * clip_frames - v.t_q[:, 0]))


def _median(x: npt.NDArray[np.float64]) -> float:
    """Median, as ``np.median`` gives it (the middle value, or the mean of the middle
    two); sorting a handful of values in Python beats NumPy's overhead, and most places
    have a handful of votes. Past that, a partition: ``np.median`` also checks for NaN
    through ``np.ma``, whose first import cost a one-shot process ~20 ms (votes hold no
    NaN)."""
    m = len(x) // 2
    if len(x) > 32:
        part = np.partition(x, (m - 1, m))
        return float(part[m]) if len(x) % 2 else 0.5 * float(part[m - 1] + part[m])
    v = sorted(x.tolist())
    return float(v[m]) if len(v) % 2 else 0.5 * float(v[m - 1] + v[m])


def _refine(v: _Votes, idx: npt.NDArray[np.int64], n_query_peaks: int, frame_s: float,
            mp: MatchParams) -> Hit | None:
    """Fit one line (and one pitch shift) through the votes ``idx`` of one place."""
    line_tol = mp.line_tolerance_s / frame_s
    if len(idx) < 1:
        return None
    shifts = v.shift[idx]
    scale = _median(v.scale[idx])
    shift = _median(shifts)
    near = idx[np.abs(shifts - shift) <= mp.shift_spread_semitones]
    if len(near) == 0:
        return None
    tq = v.t_q[near]
    tr = v.t_r[near]
    offset = _median(tr[:, 0] - scale * tq[:, 0])
    for _ in range(3):
        resid = np.abs(tr - (offset + scale * tq)).max(axis=1)
        inl = resid <= line_tol + mp.line_tolerance_per_frame * np.abs(tq[:, -1] - tq[:, 0])
        if not inl.any():
            return None
        x = tq[inl].ravel()
        y = tr[inl].ravel()
        dx = x - x.mean()
        sxx = float(dx @ dx)
        # One triplet spans too little time to fix a scale; keep the hits' median then.
        if sxx > 0 and inl.sum() >= 3:
            scale = float(dx @ (y - y.mean())) / sxx
        offset = _median(y - scale * x)
    resid = np.abs(tr - (offset + scale * tq)).max(axis=1)
    inl = resid <= line_tol + mp.line_tolerance_per_frame * np.abs(tq[:, -1] - tq[:, 0])
    if not inl.any():
        return None
    on_line = np.zeros(n_query_peaks, dtype=bool)
    on_line[v.q_idx[near[inl]].ravel()] = True
    return Hit(
        episode_key=int(v.episode[near[0]]),
        offset_frames=offset,
        time_scale=scale,
        pitch_shift=_median(v.shift[near[inl]]),
        peaks_on_line=int(on_line.sum()),
        votes=int(inl.sum()),
        pivot_frames=float(tq[inl].mean()),
    )


def _grid_keys(v: _Votes, vote_bin: float, mp: MatchParams, grid: int
               ) -> npt.NDArray[np.int64]:
    c_half, s_half = grid & 1, grid >> 1
    cbin = np.floor(v.center / vote_bin + 0.5 * c_half).astype(np.int64)
    sbin = np.floor(v.shift / mp.shift_bin_semitones + 0.5 * s_half).astype(np.int64) + 64
    return (v.episode << 40) | ((cbin & 0x3FFFFFFF) << 10) | (sbin << 2) | grid


_MIX64 = np.uint64(0x9E3779B97F4A7C15)
#: The smallest and largest counting tables of :func:`_busy_only`, in bits of slot number.
_MIN_TABLE_BITS = 12
_MAX_TABLE_BITS = 20


def _busy_only(v: _Votes, vote_bin: float, mp: MatchParams) -> _Votes:
    """The votes that may belong to a place with ``min_votes``: most chance votes are
    alone in their bin, and counting in a hashed table (collisions only over-count) finds
    them in linear time, before the exact grouping sorts what is left."""
    n = len(v.episode)
    if n < 256:
        return v
    # 16 slots a vote or more (a lone vote shares its slot by chance ~6 % of the time),
    # no more: a table of 2^20 counts is 8 MB of fresh pages, which a one-shot process
    # paid in page faults (about 40 ms a clip) whatever the clip.
    bits = min(_MAX_TABLE_BITS, max(_MIN_TABLE_BITS, (16 * n - 1).bit_length()))
    busy = np.zeros(n, dtype=bool)
    for grid in range(4):
        with np.errstate(over="ignore"):
            mixed = _grid_keys(v, vote_bin, mp, grid).astype(np.uint64) * _MIX64
        slot = (mixed >> np.uint64(64 - bits)).astype(np.int64)
        busy |= np.bincount(slot, minlength=1 << bits)[slot] >= mp.min_votes
    keep = np.flatnonzero(busy)
    return _Votes(*(getattr(v, f)[keep] for f in
                    ("episode", "center", "scale", "shift", "q_idx", "t_q", "t_r")))


def _distinct_places(v: _Votes, frame_s: float, mp: MatchParams,
                     ) -> list[npt.NDArray[np.int64]]:
    """Vote indices of the busiest places, one group per place, busiest first.

    Votes go to (episode, centre bin, pitch-shift bin) on four grids shifted by half a
    bin, so a cluster on a bin edge is still whole on one of them; a place is then taken
    once, from the grid where it is busiest. Places with fewer than ``mp.min_votes``
    votes are not refined; past ``mp.places_per_search`` places, only those with at least
    ``mp.copies_vote_share`` of the busiest one's votes are kept, up to
    ``mp.max_places_per_search`` in all.
    """
    n = len(v.episode)
    vote_bin = mp.vote_bin_s / frame_s
    keys: list[npt.NDArray[np.int64]] = []
    for grid in range(4):
        keys.append(_grid_keys(v, vote_bin, mp, grid))
    all_keys = np.concatenate(keys)
    order = np.argsort(all_keys, kind="stable")
    sorted_keys = all_keys[order]
    first = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    counts = np.diff(np.r_[first, len(sorted_keys)])
    groups: list[npt.NDArray[np.int64]] = []
    taken: list[tuple[int, float, float]] = []
    by_count = np.argsort(-counts, kind="stable")
    top = int(counts[by_count[0]]) if len(by_count) else 0
    for u in by_count:
        c_u = int(counts[u])
        if c_u < mp.min_votes or len(groups) >= mp.max_places_per_search:
            break
        # Past the busiest few, only places about as busy as a clearly busy first one go
        # on: the copies of shared material (an intro in every episode) are all listed,
        # while the many two-vote places of chance are not.
        if len(groups) >= mp.places_per_search and (
                c_u < mp.copies_vote_share * top or top < mp.copies_min_votes):
            break
        idx = order[first[u] : first[u] + c_u] % n
        ep = int(v.episode[idx[0]])
        c = _median(v.center[idx])
        sh = _median(v.shift[idx])
        if any(ep == e2 and abs(c - c2) < vote_bin and abs(sh - s2) < mp.shift_bin_semitones
               for e2, c2, s2 in taken):
            continue
        taken.append((ep, c, sh))
        groups.append(idx)
    return groups


def find_places(views: Sequence[WarpedPeaks], index: Index, mp: MatchParams, *,
                clip_frames: float) -> list[Hit]:
    """Candidate places for a clip of ``clip_frames`` frames seen through ``views`` (in
    the clip's own axes), busiest first, unverified."""
    params = index.params
    v = _collect(views, clip_frames, index, params, mp)
    if v is None:
        return []
    fs = params.frame_s
    n_peaks = int(v.q_idx.max()) + 1
    v = _busy_only(v, mp.vote_bin_s / fs, mp)
    if len(v.episode) == 0:
        return []
    places = _distinct_places(v, fs, mp)
    return [h for h in (_refine(v, idx, n_peaks, fs, mp) for idx in places) if h is not None]
