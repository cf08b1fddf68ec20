"""Verification: a place's evidence is how well the clip agrees with the stored
features of the verifying family (the sketch) at the place's alignment, beyond chance.

Each place's alignment is applied to the clip's spectrogram, the clip's sketch is
computed on the reference's grid, and its agreement with the stored sketch beyond
chance is the place's *evidence*. Hash votes only nominate; the evidence decides,
because it weighs every band of every 48 ms of the clip, not the few peaks that
survived a distortion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from citywok.analysis.sketch import ClipSketcher
from citywok.families.base import Verifier
from citywok.index import Index
from citywok.match.places import Hit
from citywok.params import MatchParams


def _scores(judge: Verifier, clip: ClipSketcher, ref: npt.NDArray[np.uint16],
            offsets: npt.NDArray[np.float64], scale: float, shift: float, start: int,
            stop: int, bits_per_code: int) -> list[float]:
    """Scores of the clip against ``ref[start:stop]`` at each offset."""
    equal, total = judge.agreement(clip, ref, offsets_frames=offsets, time_scale=scale,
                                   shift_semitones=shift, first_code=start,
                                   n_codes=stop - start, bits_per_code=bits_per_code)
    return [judge.score(int(e), int(t)) for e, t in zip(equal, total, strict=True)]


def verify(hit: Hit, sketcher: ClipSketcher, index: Index, mp: MatchParams, *,
           search_scale: bool = False) -> Hit:
    """Score a place by how well the clip's sketch agrees with the stored one, at the
    best of ``mp.verify_offsets_frames`` around the fitted offset (and, with
    ``search_scale``, the best of ``mp.scale_search`` times the fitted time scale).
    ``hit`` is in the clip's own axes.

    The place keeps the offset its peaks fitted (the sketch's best offset can lie a frame
    or two late under reverberation); a searched time scale replaces the fitted one."""
    scales: Sequence[float] = mp.scale_search if search_scale else (1.0,)
    ref = index.sketch_window(hit.episode_key)
    if ref is None:
        return hit
    try:
        return _verify(hit, sketcher, ref, index, mp, scales)
    except (IndexError, ValueError) as exc:
        # Its sketch table disagrees with itself: damage. No evidence from it, and no
        # more questions to it.
        index.set_aside_read(hit.episode_key, exc)
        return replace(hit, evidence=0.0)


def _verify(hit: Hit, sketcher: ClipSketcher, ref: npt.NDArray[np.uint16], index: Index,
            mp: MatchParams, scales: Sequence[float]) -> Hit:
    judge = index.verifier
    params = index.params
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
        # Codes compared stay clear of the clip's ends by the widest offsets the search
        # may move them (fixed by the sketch's layout and ``verify_offsets_frames``).
        start = max(0, int(np.ceil((offset + 2.0) / f)))
        stop = min(len(ref), int(np.floor((offset - 3.0 + span) / f)) - 1)
        if stop - start < 2:
            continue
        offsets = np.asarray(mp.verify_offsets_frames, dtype=np.float64)
        if len(scales) == 1:
            # A glance first: a place that shows nothing at the likeliest offsets (the
            # fitted one, or a frame or two early under reverberation) is chance.
            glance = _scores(judge, sketcher, ref,
                             offset + np.asarray(mp.glance_offsets_frames, dtype=np.float64),
                             scale, hit.pitch_shift, start, stop, bits_per_code)
            if max(glance) < mp.glance_min_score:
                best_hit = replace(hit, evidence=float(max(glance)))
                continue
        equal, total = judge.agreement(
            sketcher, ref, offsets_frames=offset + offsets, time_scale=scale,
            shift_semitones=hit.pitch_shift, first_code=start, n_codes=stop - start,
            bits_per_code=bits_per_code)
        excess = (equal - total / 2) / np.sqrt(np.maximum(total, 1))
        best = int(np.argmax(excess))
        if excess[best] > best_excess:
            best_excess = float(excess[best])
            best_hit = replace(hit, offset_frames=offset, time_scale=scale,
                               bits=int(total[best]),
                               equal_bits=int(equal[best]),
                               evidence=judge.score(int(equal[best]), int(total[best])))
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
