"""Places named by the embedding family (the room-proof front end), judged by one fused
statistic.

The peaks' triplets need three peaks of the clip to survive; in a reverberant room or
under broadband noise at 0 dB most do not, and the sketch's band-energy differences
flatten under a reverberation tail. The learned embeddings of 1 s windows survive both
(:mod:`citywok.learned`). The clip's embeddings every 0.1 s are searched as a sequence
(:func:`citywok.learned.search.search`); the best alignment is then judged by

    fused = z + w_m * margin + w_s * min(max(sketch, 0), cap) + w_v * votes

where ``z`` is the mean standardised similarity along the alignment, ``margin`` its
lead over the best alignment elsewhere (chance alignments have rivals as good as
themselves: music beds, speech), ``sketch`` the band-energy sketch's agreement at that
place (what survives of it), and ``votes`` the share of windows whose own nearest
reference windows lie on the alignment. No one of them separates right places from
outside audio at 2-3 s; together they do (the weights and threshold live in
:class:`~citywok.params.MatchParams`). The statistic is reported as evidence on the
sketch's scale, ``embedding_evidence_scale * fused / embedding_min_fused`` (7 at the
threshold), so one decision weighs
places from both front ends.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from citywok.analysis.sketch import ClipSketcher
from citywok.index import Index
from citywok.learned.coarse import Coarse, CoarseSpec
from citywok.learned.search import search
from citywok.match.places import Hit
from citywok.match.verify import verify
from citywok.params import MatchParams

#: The inverted lists' sample and k-means start are drawn with this seed: the same
#: reference gives the same lists wherever it is opened.
COARSE_SEED = 2026


def fused_statistic(*, z: float, margin: float, votes: float, sketch: float,
                    mp: MatchParams) -> float:
    """The embedding place's fused statistic (see the module docstring)."""
    return (z + mp.embedding_margin_weight * margin
            + mp.embedding_sketch_weight * min(max(sketch, 0.0), mp.embedding_sketch_cap)
            + mp.embedding_votes_weight * votes)


def embedding_lists(index: Index, mp: MatchParams) -> Coarse | None:
    """The inverted lists the embedding search reads, for a reference past
    ``mp.embedding_exact_max_windows`` (None: it is searched whole). Indexing calls this
    once it is done, so that no query pays for building them."""
    got = index.embedding_reference() if mp.use_embeddings else None
    if got is None or len(got[0].codes) <= mp.embedding_exact_max_windows:
        return None
    return index.embedding_coarse(CoarseSpec.for_rows(
        len(got[0].codes), lists_per_sqrt=mp.embedding_lists_per_sqrt,
        train_per_list=mp.embedding_train_per_list, seed=COARSE_SEED))


def sequence_places(samples: npt.NDArray[np.float32], sketcher: ClipSketcher, index: Index,
                    mp: MatchParams) -> list[Hit]:
    """The best place the embedding search names, with its fused statistic as evidence
    (none when the index has no embeddings or the clip is shorter than one window).
    ``samples`` are the clip as analysed (at most ``mp.max_query_s``)."""
    got = index.embedding_reference() if mp.use_embeddings else None
    if got is None or index.embedder is None:
        return []
    reference, keys = got
    coarse = embedding_lists(index, mp)
    query, times_s = index.embedder.embed_query(samples)
    found = search(query, times_s, reference, top_k=mp.embedding_top_k, max_candidates=1,
                   coarse=coarse, nprobe=mp.embedding_nprobe)
    if not found:
        return []
    best = found[0]
    fs = index.params.frame_s
    place = Hit(episode_key=int(keys[best.episode]), offset_frames=best.offset_s / fs,
                time_scale=1.0, pitch_shift=0.0, peaks_on_line=0, votes=0,
                front_end=index.embedder.NAME)
    checked = verify(place, sketcher, index, mp)
    fused = fused_statistic(z=best.z, margin=best.margin, votes=best.votes,
                            sketch=checked.evidence, mp=mp)
    return [replace(place, bits=checked.bits, equal_bits=checked.equal_bits,
                    evidence=mp.embedding_evidence_scale * fused
                    / mp.embedding_min_fused)]
