"""Search a reference of learned embeddings with a clip's embedding sequence.

Pure functions over arrays. The reference holds, for each episode, one int8 embedding
per window every ``hop_s`` (0.5 s: 64 bytes per window, 7,200 windows, 0.46 MB per
hour of audio). A query is the clip's embeddings at a finer hop (0.1 s) with their start
times. Search is sequence-level:

1. every query window's ``top_k`` nearest reference windows (inner product: the
   embeddings have unit length) nominate an alignment ``(episode, offset_s)``, where
   ``offset_s`` is the reference time of the clip's first sample;
2. each distinct alignment is scored by the mean, over all query windows, of the
   similarity between the window and the reference window nearest to where the
   alignment puts it (a window that falls outside the episode counts 0), and by the
   same mean of similarities standardised per query window (``z``), and by the share
   of windows whose nearest reference windows it is (``votes``);
3. the best alignment of each episode is kept, best first.

Step 1 is exact (every reference window) for a small reference: at 4 h a query reads the
whole reference (7 MB of float32) in a few milliseconds. A large one (0.43 s a query at
100 h, 2.4 s at 1,000 h) is searched through its inverted lists
(:mod:`citywok.learned.coarse`): step 1 then reads a few lists, and steps 2-3 score the
nominated alignments from the reference's codes as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from citywok.learned.coarse import Coarse

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

INT8_LIMIT = 127


@dataclass(frozen=True)
class Reference:
    """Quantised reference embeddings of several episodes, concatenated.

    ``codes`` (n, dim) int8 hold ``round(embedding * scale)``; episode ``e`` owns rows
    ``episode_start[e]:episode_start[e + 1]``, window ``k`` of it starting at
    ``k * hop_s`` seconds.
    """

    codes: npt.NDArray[np.int8]
    scale: float
    episode_start: IntArray
    hop_s: float
    mean_vector: FloatArray = field(repr=False, compare=False)
    second_moment: FloatArray = field(repr=False, compare=False)
    """The embeddings' mean and ``vectors.T @ vectors / n``: a query window's mean and
    spread of similarity over the whole reference, without reading it twice."""

    @cached_property
    def vectors_t(self) -> FloatArray:
        """The dequantised embeddings, transposed ``(dim, n)`` and contiguous (a query's
        product with them reads memory in order: 40 % faster than through ``.T``).
        Made on first use: a reference searched through its lists never needs them."""
        return np.ascontiguousarray(self.codes.T, dtype=np.float32) / np.float32(self.scale)

    @property
    def vectors(self) -> FloatArray:
        """The dequantised embeddings ``(n, dim)`` (a view)."""
        return self.vectors_t.T

    @property
    def episodes(self) -> int:
        return len(self.episode_start) - 1

    @property
    def stored_bytes(self) -> int:
        """Bytes the reference needs on disk: the codes and the episode table."""
        return int(self.codes.nbytes + self.episode_start.nbytes)


@dataclass(frozen=True)
class Candidate:
    """One alignment: the clip starts ``offset_s`` into ``episode``.

    ``score`` in [-1, 1] is the mean similarity along the alignment (about 0.9 for a clean
    copy). ``z`` is the same mean taken over each query window's similarities standardised
    against the whole reference (how far the alignment stands out of the crowd, in
    standard deviations): windows that resemble everything (silence, noise) count less.
    ``votes`` is the share of query windows whose own ``top_k`` nearest reference windows
    include the one the alignment puts them on: chance makes it near 0 for audio that is
    not in the reference, however similar the embeddings are. ``margin`` is ``score``
    less the best score of any alignment more than :data:`DISTINCT_S` away from this
    one (in another episode, or elsewhere in the same one: a music bed's repeated
    phrase is as much a rival as another episode).
    """

    episode: int
    offset_s: float
    score: float
    z: float
    votes: float
    margin: float


def build_reference(
    embeddings: Sequence[FloatArray], *, hop_s: float, scale: float | None = None
) -> Reference:
    """Quantise each episode's embeddings ``(windows, dim)`` to int8 and concatenate.

    ``scale`` maps an embedding component to int8; by default the largest component
    over the whole reference maps to 127. ``hop_s`` must be the hop they were made at.
    """
    if hop_s <= 0:
        raise ValueError("hop_s must be positive")
    if not embeddings:
        raise ValueError("a reference needs at least one episode")
    dim = embeddings[0].shape[1]
    if any(e.ndim != 2 or e.shape[1] != dim for e in embeddings):
        raise ValueError("every episode's embeddings must be (windows, dim) of one dim")
    stacked = np.concatenate([np.asarray(e, dtype=np.float32) for e in embeddings])
    if scale is None:
        peak = float(np.abs(stacked).max()) if stacked.size else 1.0
        scale = INT8_LIMIT / max(peak, 1e-6)
    codes = np.clip(np.rint(stacked * scale), -INT8_LIMIT, INT8_LIMIT).astype(np.int8)
    starts = np.zeros(len(embeddings) + 1, dtype=np.int64)
    starts[1:] = np.cumsum([len(e) for e in embeddings])
    return reference_from_codes(codes, scale=scale, episode_start=starts, hop_s=hop_s)


def reference_from_codes(
    codes: npt.NDArray[np.int8], *, scale: float, episode_start: IntArray, hop_s: float
) -> Reference:
    """A :class:`Reference` from stored codes (e.g. memory-mapped from an index)."""
    dim = codes.shape[1]
    total = np.zeros(dim, np.float64)
    moment = np.zeros((dim, dim), np.float64)
    for lo in range(0, len(codes), MOMENT_CHUNK_ROWS):  # no float copy of it all at once
        chunk = codes[lo : lo + MOMENT_CHUNK_ROWS].astype(np.float32) / np.float32(scale)
        total += chunk.sum(axis=0)
        moment += chunk.T @ chunk
    n = max(len(codes), 1)
    return Reference(
        codes=codes,
        scale=float(scale),
        episode_start=np.asarray(episode_start),
        hop_s=float(hop_s),
        mean_vector=np.asarray(total / n, dtype=np.float32),
        second_moment=np.asarray(moment / n, dtype=np.float32),
    )


MOMENT_CHUNK_ROWS = 262_144


DISTINCT_S = 3.0
"""Alignments further apart than this (in the same episode) are rivals, not the same place
(at 1 s, the shoulders of the right alignment itself counted as rivals: 1 s windows of
steady music still agree 1-2 s off)."""

TOP_K_FLOOR_SD = 2.5
"""A window's nearest neighbours are looked for among the similarities this many standard
deviations above its mean; rows with fewer than ``top_k`` there fall back to a full
partition. (A partition of every row cost 11-15 ms of a 5 s query at 4 h.)"""


def top_rows(sims: FloatArray, k: int, *, floor: FloatArray) -> IntArray:
    """Column indices of each row's ``k`` largest values, ``(rows, k)``, in no order.

    ``floor`` (one value per row) only makes it faster: rows with ``k`` or more values
    at or above it are ranked among those alone; the others are partitioned whole.
    """
    m = sims.shape[0]
    out = np.empty((m, k), dtype=np.int64)
    rows, cols = np.nonzero(sims >= floor[:, None])
    counts = np.bincount(rows, minlength=m)
    enough = counts >= k
    if rows.size:
        order = np.lexsort((-sims[rows, cols], rows))  # by row, then best first
        rows, cols = rows[order], cols[order]
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rank = np.arange(rows.size) - first[rows]
        keep = (rank < k) & enough[rows]
        out[rows[keep], rank[keep]] = cols[keep]
    short = np.flatnonzero(~enough)
    if short.size:
        out[short] = np.argpartition(-sims[short], k - 1, axis=1)[:, :k]
    return out


def search(
    query: FloatArray,
    query_times_s: npt.ArrayLike,
    reference: Reference,
    *,
    top_k: int = 10,
    max_candidates: int = 10,
    coarse: Coarse | None = None,
    nprobe: int = 32,
) -> list[Candidate]:
    """The best alignment of each nominated episode, best first (at most ``max_candidates``).

    ``query`` is ``(m, dim)`` unit-length embeddings, ``query_times_s`` each window's start
    in the clip (seconds). An empty query gives no candidates. With ``coarse`` (the
    reference's inverted lists) each window's neighbours come from its ``nprobe``
    nearest lists instead of the whole reference.
    """
    q = np.asarray(query, dtype=np.float32)
    qt = np.asarray(query_times_s, dtype=np.float64)
    if len(q) == 0 or reference.vectors.shape[0] == 0:
        return []
    if len(qt) != len(q):
        raise ValueError("query and query_times_s differ in length")
    mu = q @ reference.mean_vector
    sd = np.sqrt(np.maximum(np.einsum("id,de,ie->i", q, reference.second_moment, q) - mu**2, 0))
    sd += 1e-6
    k = min(top_k, reference.codes.shape[0])
    if coarse is None:
        sims = q @ reference.vectors_t  # (m, n)
        top = top_rows(sims, k, floor=mu + TOP_K_FLOOR_SD * sd)  # (m, k) reference rows
        kth = np.take_along_axis(sims, top, axis=1).min(axis=1)  # each window's k-th best
    else:
        top_sims, top = coarse.neighbours(q, k, nprobe=nprobe)
        kth = top_sims.min(axis=1)
    starts = reference.episode_start
    episode_of = np.searchsorted(starts, top, side="right") - 1
    window_of = top - starts[episode_of]
    # Alignments on a grid of a tenth of the reference hop.
    grid = reference.hop_s / 10.0
    offset_ticks = np.rint((window_of * reference.hop_s - qt[:, None]) / grid).astype(np.int64)
    pairs = np.unique(np.stack([episode_of.ravel(), offset_ticks.ravel()], axis=1), axis=0)
    cand_ep = pairs[:, 0]
    cand_off = pairs[:, 1] * grid  # (c,)
    # Score: mean similarity at the nearest reference window along each alignment.
    pos = np.rint((cand_off[:, None] + qt[None, :]) / reference.hop_s).astype(np.int64)
    length = starts[cand_ep + 1] - starts[cand_ep]
    inside = (pos >= 0) & (pos < length[:, None])
    rows = np.where(inside, starts[cand_ep][:, None] + pos, 0)
    if coarse is None:
        gathered = sims[np.arange(len(q))[None, :], rows]
    else:  # the rows an alignment reads, from the codes: (c, m, dim) . (m, dim)
        picked = reference.codes[rows].astype(np.float32) / np.float32(reference.scale)
        gathered = np.einsum("cmd,md->cm", picked, q)
    scores = np.where(inside, gathered, 0.0).mean(axis=1)
    zs = np.where(inside, (gathered - mu[None, :]) / sd[None, :], 0.0).mean(axis=1)
    votes = (inside & (gathered >= kth[None, :])).mean(axis=1)
    order = np.argsort(-scores, kind="stable")
    out: list[Candidate] = []
    seen: set[int] = set()
    for c in order:
        e = int(cand_ep[c])
        if e in seen:
            continue
        seen.add(e)
        rival = (cand_ep != e) | (np.abs(cand_off - cand_off[c]) > DISTINCT_S)
        runner_up = float(scores[rival].max()) if rival.any() else 0.0
        out.append(
            Candidate(
                episode=e,
                offset_s=float(cand_off[c]),
                score=float(scores[c]),
                z=float(zs[c]),
                votes=float(votes[c]),
                margin=float(scores[c]) - runner_up,
            )
        )
        if len(out) == max_candidates:
            break
    return out
