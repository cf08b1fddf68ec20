"""Shared material: stretches of audio that several episodes of a show hold (an opening
theme, end credits, a recurring music cue), found from the index itself.

Every reference hash of a show's episodes is paired with the same hash in its other
episodes; a stretch two episodes share gives many pairs at one time difference. Those
pairs are grouped into runs, runs of several episodes that overlap are one *group*, and
each group is named by where it sits: near the start of its episodes an ``intro``, near
the end an ``outro``, elsewhere a ``cue``. The result goes into the catalogue, which the
decision uses to answer ``ambiguous`` with every episode that holds the material, and to
say which kind it is.

Work grows with the square of a show's postings per hash, not with the library: hashes
more common than ``max_per_hash`` within a show say nothing and are skipped. Every knob
is a field of :class:`~citywok.params.SharedParams`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from citywok.analysis.peaks import Peaks
from citywok.families.base import Nominator
from citywok.params import AnalysisParams, SharedParams
from citywok.result import SharedKind, SharedStretch


def _kind(start_s: float, end_s: float, duration_s: float) -> SharedKind:
    """Where a stretch sits in its episode: the first fifth (or three minutes) is the
    opening, the last sixth (or two minutes) the credits."""
    if start_s <= max(180.0, 0.2 * duration_s):
        return SharedKind.INTRO
    if end_s >= duration_s - max(120.0, duration_s / 6):
        return SharedKind.OUTRO
    return SharedKind.CUE


def find_shared(peaks: Mapping[int, Peaks], durations: Mapping[int, float], *,
                params: AnalysisParams, family: Nominator, shared: SharedParams,
                ) -> list[SharedStretch]:
    """Shared stretches among the episodes ``peaks`` (one show's), keyed by episode,
    joined on the postings of the nominating ``family``."""
    keys = sorted(peaks)
    if len(keys) < 2:
        return []
    hashes, frames, owners = [], [], []
    for k in keys:
        h, v = family.reference_hashes(peaks[k], params)
        anchor, _, _ = family.unpack_value(v)
        hashes.append(h)
        frames.append(peaks[k].frame[anchor].astype(np.int64))
        owners.append(np.full(len(h), k, dtype=np.int64))
    h_all, f_all, o_all = np.concatenate(hashes), np.concatenate(frames), np.concatenate(owners)
    order = np.argsort(h_all, kind="stable")
    h_all, f_all, o_all = h_all[order], f_all[order], o_all[order]
    starts = np.flatnonzero(np.r_[True, h_all[1:] != h_all[:-1]])
    sizes = np.diff(np.r_[starts, len(h_all)])
    pairs: list[tuple[npt.NDArray[np.int64], ...]] = []
    for size in range(2, shared.max_per_hash + 1):
        group_starts = starts[sizes == size]
        if len(group_starts) == 0:
            continue
        idx = group_starts[:, None] + np.arange(size)[None, :]
        a, b = np.triu_indices(size, k=1)
        ia, ib = idx[:, a].ravel(), idx[:, b].ravel()
        other = o_all[ia] != o_all[ib]
        pairs.append((o_all[ia][other], f_all[ia][other], o_all[ib][other], f_all[ib][other]))
    if not pairs:
        return []
    ea, ta, eb, tb = (np.concatenate(col) for col in zip(*pairs, strict=True))
    # Order each pair so that the first episode is the smaller key.
    swap = ea > eb
    ea, eb = np.where(swap, eb, ea), np.where(swap, ea, eb)
    ta, tb = np.where(swap, tb, ta), np.where(swap, ta, tb)
    runs = _runs(ea, ta, eb, tb, params.frame_s, shared)
    return _groups(runs, durations, params.frame_s)


@dataclass(frozen=True)
class _Run:
    a: int
    a_lo: float
    a_hi: float
    b: int
    b_lo: float
    b_hi: float
    #: Time in ``b`` minus time in ``a`` of the same audio (seconds).
    delta_s: float


def _runs(ea: npt.NDArray[np.int64], ta: npt.NDArray[np.int64], eb: npt.NDArray[np.int64],
          tb: npt.NDArray[np.int64], frame_s: float, sp: SharedParams) -> list[_Run]:
    """Contiguous stretches two episodes share at one time difference."""
    delta = np.floor((tb - ta) / sp.delta_bin_frames).astype(np.int64)
    key = np.stack([ea, eb, delta], axis=1)
    uniq, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    out: list[_Run] = []
    gap = sp.run_gap_s / frame_s
    for u in np.flatnonzero(counts >= sp.min_pairs):
        sel = np.flatnonzero(inverse == u)
        t = ta[sel]
        order = np.argsort(t)
        t, t_b = t[order], tb[sel][order]
        breaks = np.flatnonzero(np.diff(t) > gap) + 1
        for part_a, part_b in zip(np.split(t, breaks), np.split(t_b, breaks), strict=True):
            if (len(part_a) < sp.min_pairs
                    or (part_a[-1] - part_a[0]) * frame_s < sp.min_length_s):
                continue
            out.append(_Run(int(uniq[u][0]), part_a[0] * frame_s, part_a[-1] * frame_s,
                            int(uniq[u][1]), part_b[0] * frame_s, part_b[-1] * frame_s,
                            float(np.median(part_b - part_a)) * frame_s))
    return out


def _groups(runs: Sequence[_Run], durations: Mapping[int, float], frame_s: float
            ) -> list[SharedStretch]:
    """Join runs that overlap on some episode into groups of copies, and give every copy
    the group's whole extent, aligned through the runs' time differences (each copy
    alone may miss a quiet stretch that others show)."""
    # Each run end is a node (episode, stretch); stretches of one episode that overlap
    # are one node. Edges carry the time difference between their nodes.
    nodes: list[tuple[int, float, float]] = []
    edges: dict[int, list[tuple[int, float]]] = defaultdict(list)

    def node(ep: int, lo: float, hi: float) -> int:
        for n, (e, a, b) in enumerate(nodes):
            if e == ep and lo <= b and hi >= a:
                nodes[n] = (e, min(a, lo), max(b, hi))
                return n
        nodes.append((ep, lo, hi))
        return len(nodes) - 1

    for r in runs:
        x, y = node(r.a, r.a_lo, r.a_hi), node(r.b, r.b_lo, r.b_hi)
        edges[x].append((y, r.delta_s))
        edges[y].append((x, -r.delta_s))
    # Walk each group from its first node: ``shift[n]`` maps the first node's time to
    # node n's (t_n = t_first + shift[n]).
    shift: dict[int, float] = {}
    out: list[SharedStretch] = []
    group = 0
    for first in range(len(nodes)):
        if first in shift:
            continue
        shift[first] = 0.0
        members, todo = [first], [first]
        while todo:
            n = todo.pop()
            for m, delta in edges[n]:
                if m not in shift:
                    shift[m] = shift[n] + delta
                    members.append(m)
                    todo.append(m)
        episodes = {nodes[n][0] for n in members}
        if len(episodes) < 2:
            continue
        # The group's extent in the first node's time; the hashes' anchors end a little
        # before the audio does (a triplet spans up to a second), hence the half second.
        lo = min(nodes[n][1] - shift[n] for n in members)
        hi = max(nodes[n][2] - shift[n] for n in members) + 0.5
        stretches = []
        for n in members:
            ep = nodes[n][0]
            dur = durations.get(ep, hi + shift[n])
            stretches.append((ep, max(0.0, lo + shift[n]), min(dur, hi + shift[n])))
        kinds = [_kind(a, b, durations.get(ep, b)) for ep, a, b in stretches]
        # An opening or credits only when (nearly) every copy sits there; material that
        # turns up at the start of one episode and the middle of others is a cue.
        kind = max(set(kinds), key=kinds.count)
        if kinds.count(kind) < 0.75 * len(kinds):
            kind = SharedKind.CUE
        for ep, a, b in stretches:
            out.append(SharedStretch(ep, round(a, 3), round(b, 3), kind, len(episodes),
                                     group))
        group += 1
    return out
