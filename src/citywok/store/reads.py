"""Reading postings: the store's one read path for lookups (hashes in, postings out).

Each lookup reads one directory row of every segment; rows are read rarest first until
the budget of postings is spent, so a query costs about the same whatever the library's
size, and the common hashes (which say least) are the ones left out when it binds.

Segments are read through memory maps, so a file damaged on disk after it was checked
shows through: no count read from a segment is trusted before it is bounded, and a
segment found damaged while reading is reported (``on_damage``) and left out while the
others answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from citywok.store.segment import Segment, row_and_check


@dataclass(frozen=True)
class Postings:
    """What one segment answered: ``values[i]`` answers lookup ``lookup[i]``. ``table``
    holds the peaks the values name (a family reads them through ``PeakTable``)."""

    table: Segment
    lookup: npt.NDArray[np.int64]
    values: npt.NDArray[np.uint32]

    def episode_keys(self, peak_index: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The episode each of the table's peaks ``peak_index`` belongs to (IndexError
        when one lies outside every episode: only damage does that)."""
        t = self.table
        local = np.searchsorted(t.episode_peak_start, peak_index, side="right") - 1
        if len(local) and not 0 <= int(local.min()) <= int(local.max()) < len(t.episode_keys):
            raise IndexError("a peak lies outside every episode")
        return t.episode_keys[local]

    def peak_frames(self, peak_index: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
        return self.table.peak_frame[peak_index]


#: Told of a segment found damaged while reading it, and why.
OnDamage = Callable[[Segment, str], None]


def damage_reason(seg: Segment, what: str) -> str:
    return (f"segment {seg.path.name} is damaged ({what}; it changed on disk since it was "
            "checked)")


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


def plan_reads(hashes: npt.NDArray[np.uint32], segments: Sequence[Segment], *, budget: int,
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
            rows_of[seg.dir_bits] = row_and_check(hashes, seg.dir_bits)
        rows, check = rows_of[seg.dir_bits]
        lo = seg.directory[rows].astype(np.int64)
        hi = seg.directory[rows + 1].astype(np.int64)
        if len(rows) and not (bool(np.all(lo <= hi)) and int(hi.max()) <= len(seg.values)):
            if on_damage is not None:
                on_damage(seg, damage_reason(seg, "a directory row lies outside its postings"))
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


def read_postings(hashes: npt.NDArray[np.uint32], segments: Sequence[Segment], *,
                  budget: int, on_damage: OnDamage | None = None) -> list[Postings]:
    """For each segment, the values whose check byte matches and the lookup each answers
    (see :func:`plan_reads`)."""
    plan = plan_reads(hashes, segments, budget=budget, on_damage=on_damage)
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
        out.append(Postings(seg, np.repeat(owners, c)[same], seg.values[pos[same]]))
    return out
