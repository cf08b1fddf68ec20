"""Clip peaks → candidate places → places verified against the stored sketches.

1. **Lookups.** The clip's hashes (``hashes.<family>.query_lookups``) are looked up in
   every segment. Each lookup reads one directory row; rows are read rarest first until
   ``MatchParams.postings_budget`` postings have been read, so a query costs about the
   same whatever the library's size, and the common hashes (which say least) are the
   ones left out when the budget binds.
2. **Hits.** The family reads each posting's peaks back and keeps the hits whose exact
   features agree with the clip's; each implies a time scale and a pitch shift.
3. **Places.** Hits vote for (episode, where the clip's centre falls, pitch shift); the
   busiest distinct places with at least ``min_votes`` votes get a line fit
   ``t_ref = offset + scale * t_clip`` through their peak correspondences.
4. **Verification** (:func:`verify`). Each place's alignment is applied to the clip's
   spectrogram, the clip's sketch is computed on the reference's grid, and its
   agreement with the stored sketch beyond chance is the place's *evidence*. Hash votes
   only nominate; the evidence decides, because it weighs every band of every 48 ms of
   the clip, not the few peaks that survived a distortion.

Segments are read through memory maps, so a file damaged on disk after it was checked
shows through: no count read from a segment is trusted before it is bounded, and a
segment found damaged while reading is set aside (:meth:`Index.set_aside`) while the
others answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from citywok import sketch
from citywok.hashes import QueryLookups
from citywok.hashes import triplet as family
from citywok.index import Index
from citywok.params import AnalysisParams, MatchParams
from citywok.peaks import Peaks
from citywok.store.segment import Segment, row_and_check


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
class ReadPlan:
    """Which directory rows a query reads: ``lookup[i]`` reads ``count[i]`` postings of
    segment ``segment[i]`` from ``start[i]``, keeping those whose check byte is
    ``check[i]``."""

    segment: npt.NDArray[np.int64]
    lookup: npt.NDArray[np.int64]
    start: npt.NDArray[np.int64]
    count: npt.NDArray[np.int64]
    check: npt.NDArray[np.uint8]


#: Told of a segment found damaged while reading it, and why.
OnDamage = Callable[[Segment, str], None]


def _damaged(seg: Segment, what: str) -> str:
    return (f"segment {seg.path.name} is damaged ({what}; it changed on disk since it was "
            "checked)")


def plan_reads(lookups: QueryLookups, segments: Sequence[Segment], *, budget: int,
               on_damage: OnDamage | None = None) -> ReadPlan:
    """The rows of every lookup in every segment, rarest first, at most ``budget``
    postings in all (the rows that would go past it are left out whole).

    A segment whose directory rows run backwards or past its postings is left out, and
    ``on_damage`` told of it."""
    parts: list[tuple[npt.NDArray[Any], ...]] = []
    # Segments of one size share a directory width: each width's rows are hashed once.
    rows_of: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]] = {}
    for n, seg in enumerate(segments):
        if seg.dir_bits not in rows_of:
            rows_of[seg.dir_bits] = row_and_check(lookups.hashes, seg.dir_bits)
        rows, check = rows_of[seg.dir_bits]
        lo = seg.directory[rows].astype(np.int64)
        hi = seg.directory[rows + 1].astype(np.int64)
        if len(rows) and not (bool(np.all(lo <= hi)) and int(hi.max()) <= len(seg.values)):
            if on_damage is not None:
                on_damage(seg, _damaged(seg, "a directory row lies outside its postings"))
            continue
        cnt = hi - lo
        keep = np.flatnonzero(cnt > 0)
        parts.append((np.full(len(keep), n, dtype=np.int64), keep, lo[keep], cnt[keep],
                      check[keep]))
    if not parts:
        e = np.empty(0, np.int64)
        return ReadPlan(e, e, e, e, np.empty(0, np.uint8))
    s_no, l_no, st, ct, ck = (np.concatenate(col) for col in zip(*parts, strict=True))
    if ct.sum() > budget:
        take = rarest_within(ct, budget)
        s_no, l_no, st, ct, ck = s_no[take], l_no[take], st[take], ct[take], ck[take]
    return ReadPlan(s_no, l_no, st, ct, ck)


def rarest_within(count: npt.NDArray[np.int64], budget: int) -> npt.NDArray[np.int64]:
    """Indices of the rows to read: the longest run of rows, rarest first (ties in
    order), whose counts sum to at most ``budget``; every count is positive.

    The same rows as a stable argsort of every count followed by a cumulative sum, found
    by counting instead: in a 1,000 h library a query has ~700,000 rows to choose from,
    and sorting them all was a third of a query's time."""
    # A row longer than the budget is never read; leaving it out first bounds the table
    # counted below by the budget, not by whatever count a row claims.
    if int(count.max(initial=0)) > budget:
        fits = np.flatnonzero(count <= budget)
        return fits[rarest_within(count[fits], budget)]
    per_count = np.bincount(count)
    whole = np.cumsum(per_count * np.arange(len(per_count), dtype=np.int64))
    # Every row rarer than ``last`` fits; of the rows of exactly ``last``, the first few.
    last = int(np.searchsorted(whole, budget, side="right"))
    if last >= len(per_count):
        return np.argsort(count, kind="stable")
    room = budget - int(whole[last - 1])
    chosen = np.concatenate([np.flatnonzero(count < last),
                             np.flatnonzero(count == last)[: room // last]])
    # Rarest first, as the sort would give them (counts this small sort by radix).
    key = count[chosen].astype(np.uint16 if last < 1 << 16 else np.int64)
    return chosen[np.argsort(key, kind="stable")]


def read_postings(lookups: QueryLookups, segments: Sequence[Segment], *, budget: int,
                  on_damage: OnDamage | None = None,
                  ) -> list[tuple[Segment, npt.NDArray[np.int64], npt.NDArray[np.uint32]]]:
    """For each segment, the values whose check byte matches and the lookup each answers
    (see :func:`plan_reads`)."""
    plan = plan_reads(lookups, segments, budget=budget, on_damage=on_damage)
    out = []
    for n, seg in enumerate(segments):
        mine = plan.segment == n
        if not mine.any():
            continue
        c, s0, owners = plan.count[mine], plan.start[mine], plan.lookup[mine]
        total = int(c.sum())
        first = np.cumsum(c) - c
        pos = np.arange(total, dtype=np.int64) - np.repeat(first - s0, c)
        same = seg.check[pos] == np.repeat(plan.check[mine], c)
        out.append((seg, np.repeat(owners, c)[same], seg.values[pos[same]]))
    return out


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
    for seg, which, values in read_postings(lookups, index.segments,
                                            budget=mp.postings_budget * len(views),
                                            on_damage=index.set_aside):
        try:
            hits = family.resolve(lookups, query, which, values, seg, params, mp)
            if len(hits) == 0:
                continue
            local = np.searchsorted(seg.episode_peak_start, hits.ref[:, 0], side="right") - 1
            if len(local) and not 0 <= int(local.min()) <= int(local.max()) < len(
                    seg.episode_keys):
                raise IndexError("a peak lies outside every episode")
            keys = seg.episode_keys[local]
            live = np.isin(keys, live_keys)
            if not live.any():
                continue
            # The view each hit came through, from the clip peaks it pairs with.
            v_no = view_of_peak[hits.clip[live, 0]]
            tf = time_factor[v_no][:, None]
            t_r = seg.peak_frame[hits.ref[live]].astype(np.float64)
        except (IndexError, ValueError) as exc:
            # Only damage makes a segment's own arrays disagree: the others still answer.
            index.set_aside(seg, _damaged(seg, str(exc) or type(exc).__name__))
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
    """Median; sorting a handful of values in Python beats ``np.median``'s overhead,
    and most places have a handful of votes."""
    if len(x) > 32:
        return float(np.median(x))
    v = sorted(x.tolist())
    m = len(v) // 2
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
        inl = resid <= line_tol + 0.01 * np.abs(tq[:, -1] - tq[:, 0])
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
    inl = resid <= line_tol + 0.01 * np.abs(tq[:, -1] - tq[:, 0])
    if not inl.any():
        return None
    on_line = np.zeros(n_query_peaks, dtype=bool)
    on_line[v.q_idx[near[inl]].ravel()] = True
    return Hit(
        episode_key=int(v.episode[near[0]]),
        offset_frames=offset,
        time_scale=scale,
        pitch_shift=_median(v.shift[near[inl]]),
        score=int(on_line.sum()),
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


def _busy_only(v: _Votes, vote_bin: float, mp: MatchParams) -> _Votes:
    """The votes that may belong to a place with ``min_votes``: most chance votes are
    alone in their bin, and counting in a hashed table (collisions only over-count) finds
    them in linear time, before the exact grouping sorts what is left."""
    n = len(v.episode)
    if n < 256:
        return v
    table = 1 << 20
    busy = np.zeros(n, dtype=bool)
    for grid in range(4):
        with np.errstate(over="ignore"):
            mixed = _grid_keys(v, vote_bin, mp, grid).astype(np.uint64) * _MIX64
        slot = (mixed >> np.uint64(44)).astype(np.int64)
        busy |= np.bincount(slot, minlength=table)[slot] >= mp.min_votes
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


#: Offsets (frames) around a place's fitted offset at which its sketch is compared: the
#: sketch's 48 ms codes need the alignment to about a frame, and reverberation delays a
#: clip's energy by one or two frames (measured: the best offset moved by -2 frames).
_OFFSET_SEARCH = np.arange(-2.5, 1.51, 0.5)


#: Time scales (times the fitted one) tried by :func:`verify` when asked to search: a
#: place nominated by few hash hits may have its scale wrong by a few per cent, which
#: over 5 s moves the clip's end by several frames.
#: The offsets of the first glance, and the score under which a place is left there.
_GLANCE = np.array([-2.0, -1.0, 0.0])
_GLANCE_MIN = 2.0


def _agreement(sketcher: sketch.ClipSketcher, ref: npt.NDArray[np.uint16],
               offsets: npt.NDArray[np.float64], scale: float, shift: float, start: int,
               stop: int, bits_per_code: int) -> list[float]:
    """Sketch scores of the clip against ``ref[start:stop]`` at each offset."""
    codes, inside = sketcher.codes(offsets_frames=offsets, time_scale=scale,
                                   shift_semitones=shift, first_code=start,
                                   n_codes=stop - start)
    differing = np.where(inside, np.bitwise_count(np.bitwise_xor(codes, ref[start:stop])),
                         0).sum(axis=1)
    total = inside.sum(axis=1) * bits_per_code
    return [sketch.score(int(t - d), int(t)) for d, t in zip(differing, total, strict=True)]


SCALE_SEARCH = tuple(float(x) for x in np.round(np.arange(0.95, 1.0501, 0.005), 4))


def verify(hit: Hit, sketcher: sketch.ClipSketcher, index: Index, *,
           scales: Sequence[float] = (1.0,)) -> Hit:
    """Score a place by how well the clip's sketch agrees with the stored one, at the
    best offset near the fitted one (and the best of ``scales`` times the fitted time
    scale). ``hit`` is in the clip's own axes.

    The place keeps the offset its peaks fitted (the sketch's best offset can lie a frame
    or two late under reverberation); a searched time scale replaces the fitted one."""
    where = index.locate(hit.episode_key)
    if where is None:
        return hit
    seg, local = where
    try:
        return _verify(hit, sketcher, index, seg, local, scales)
    except (IndexError, ValueError) as exc:
        # Its sketch table disagrees with itself: damage. No evidence from it, and no
        # more questions to it.
        index.set_aside(seg, _damaged(seg, str(exc) or type(exc).__name__))
        return replace(hit, evidence=0.0)


def _verify(hit: Hit, sketcher: sketch.ClipSketcher, index: Index, seg: Segment, local: int,
            scales: Sequence[float]) -> Hit:
    params = index.params
    ref = seg.episode_sketch(local)
    bits_per_code = params.sketch_bands - 1
    f = params.sketch_frames
    best_hit = hit
    best_excess = -np.inf
    # A scale is changed about where the hits lie, where the fitted line is surest.
    centre = hit.pivot_frames if hit.pivot_frames >= 0 else 0.5 * (sketcher.n_frames - 1)
    for factor in scales:
        scale = hit.time_scale * factor
        offset = hit.offset_frames + (hit.time_scale - scale) * centre
        span = scale * (sketcher.n_frames - 1)
        start = max(0, int(np.ceil((offset + 2.0) / f)))
        stop = min(len(ref), int(np.floor((offset - 3.0 + span) / f)) - 1)
        if stop - start < 2:
            continue
        offsets = _OFFSET_SEARCH
        if len(scales) == 1:
            # A glance first: a place that shows nothing at the likeliest offsets (the
            # fitted one, or a frame or two early under reverberation) is chance.
            glance = _agreement(sketcher, ref, offset + _GLANCE, scale, hit.pitch_shift,
                                start, stop, bits_per_code)
            if max(glance) < _GLANCE_MIN:
                best_hit = replace(hit, evidence=float(max(glance)))
                continue
        codes, inside = sketcher.codes(
            offsets_frames=offset + offsets, time_scale=scale,
            shift_semitones=hit.pitch_shift, first_code=start, n_codes=stop - start)
        differing = np.bitwise_count(np.bitwise_xor(codes, ref[start:stop][None, :]))
        differing = np.where(inside, differing, 0).sum(axis=1)
        total = inside.sum(axis=1) * bits_per_code
        equal = total - differing
        excess = (equal - total / 2) / np.sqrt(np.maximum(total, 1))
        best = int(np.argmax(excess))
        if excess[best] > best_excess:
            best_excess = float(excess[best])
            best_hit = replace(hit, offset_frames=offset, time_scale=scale,
                               bits=int(total[best]),
                               equal_bits=int(equal[best]),
                               evidence=sketch.score(int(equal[best]), int(total[best])))
    return best_hit


def best_per_place(hits: Sequence[Hit], *, frame_s: float, vote_bin_s: float) -> list[Hit]:
    """Best first, keeping only the best hit of each place (episode and offset)."""
    kept: list[Hit] = []
    for h in sorted(hits, key=lambda h: (-h.evidence, -h.votes)):
        if any(k.episode_key == h.episode_key
               and abs(k.offset_frames - h.offset_frames) * frame_s < 2 * vote_bin_s
               for k in kept):
            continue
        kept.append(h)
    return kept
