"""The query loop: a clip's views (warps), their candidate places, verification, and
the copies of shared material, until the evidence is conclusive.

The plain clip is searched first (most clips are not sped up: they stop there), then
every other warp in one search; the same place found twice is verified once. When the
peaks find nothing conclusive, the embedding family's place joins them
(:mod:`citywok.match.sequence`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from citywok.analysis.peaks import Peaks, band_bins, peaks_from_power
from citywok.analysis.sketch import ClipSketcher
from citywok.analysis.spectrogram import power_spectrogram, warp
from citywok.index import Index
from citywok.match.places import Hit, WarpedPeaks, find_places
from citywok.match.sequence import sequence_places
from citywok.match.verify import best_per_place, verify
from citywok.params import AnalysisParams, MatchParams


@dataclass(frozen=True)
class ClipAnalysis:
    """What matching needs of a clip, computed once: its full-band spectrogram, its
    power over the analysed band and its plain peaks."""

    full: npt.NDArray[np.float32]
    sketcher: ClipSketcher
    peaks: Peaks
    duration_s: float

    @property
    def frames(self) -> int:
        return int(self.full.shape[0])


def analyse_clip(samples: npt.NDArray[np.float32], params: AnalysisParams,
                 mp: MatchParams) -> ClipAnalysis:
    """The clip's spectrogram and plain peaks (at most ``mp.max_query_s`` of it)."""
    clip = samples[: int(mp.max_query_s * params.sample_rate_hz)]
    full = power_spectrogram(clip, n_fft=params.n_fft, hop_length=params.hop_length)
    lo, hi = band_bins(params)
    band = np.ascontiguousarray(full[:, lo:hi])
    peaks = peaks_from_power(band, peak_params=mp.query_peaks, params=params)
    return ClipAnalysis(full=full, sketcher=ClipSketcher(band, params=params, bin_lo=lo),
                        peaks=peaks, duration_s=len(clip) / params.sample_rate_hz)


def _view(clip: ClipAnalysis, time_factor: float, freq_factor: float,
          params: AnalysisParams, mp: MatchParams, lo: int, hi: int) -> WarpedPeaks:
    if time_factor == 1.0 and freq_factor == 1.0:
        return WarpedPeaks(clip.peaks)
    power = warp(clip.full, time_factor=time_factor, freq_factor=freq_factor, bin_lo=lo,
                 bin_hi=hi)
    return WarpedPeaks(peaks_from_power(power, peak_params=mp.query_peaks, params=params),
                       time_factor, freq_factor)


def match_clip(samples: npt.NDArray[np.float32], index: Index, mp: MatchParams, *,
               analysis: ClipAnalysis | None = None) -> list[Hit]:
    """Match a clip: for each warp in ``mp.warps`` (a guessed speed/pitch change undone
    before peaks are picked), find candidate places and verify them against the stored
    sketches, until one is conclusive. Hits are in the clip's own time and pitch, best
    evidence first, one per place."""
    params = index.params
    clip = analysis or analyse_clip(samples, params, mp)
    lo, hi = band_bins(params)
    lo_scale, hi_scale = mp.plausible_time_scale
    found: list[Hit] = []
    verified: dict[tuple[int, int, int, int], Hit] = {}
    searched: set[tuple[int, int]] = set()
    # The plain clip first (most clips are not sped up: they stop here), then every other
    # warp in one search.
    for stage in (mp.warps[:1], mp.warps[1:]):
        views = [_view(clip, tf, ff, params, mp, lo, hi) for tf, ff in stage]
        places = [h for h in find_places(views, index, mp, clip_frames=clip.frames)
                  if lo_scale <= h.time_scale <= hi_scale
                  and abs(h.pitch_shift) <= mp.plausible_pitch_shift]
        for h in places:
            # The same place found twice is verified once.
            key = (h.episode_key, round(h.offset_frames / params.sketch_frames),
                   round(h.time_scale * 50), round(h.pitch_shift * 4))
            if key not in verified:
                verified[key] = verify(h, clip.sketcher, index, mp)
            found.append(verified[key])
        if found and max(h.evidence for h in found) >= mp.conclusive_score:
            break
        # Nothing conclusive yet: the busiest few places may have their time scale a few
        # per cent off (few hits to fit it); search around it with the sketch.
        for h in sorted(places, key=lambda h: -h.votes)[: mp.scale_search_places]:
            spot = (h.episode_key, round(h.offset_frames / params.sketch_frames))
            if spot not in searched:
                searched.add(spot)
                found.append(verify(h, clip.sketcher, index, mp, search_scale=True))
        if found and max(h.evidence for h in found) >= mp.conclusive_score:
            break
    if not found or max(h.evidence for h in found) < mp.conclusive_score:
        # The peaks are not sure (a room, broadband noise): the embeddings' place, judged
        # by its fused statistic, joins the others on one evidence scale.
        clip_samples = samples[: int(mp.max_query_s * params.sample_rate_hz)]
        found += sequence_places(clip_samples, clip.sketcher, index, mp)
    ranked = best_per_place(found, frame_s=params.frame_s, vote_bin_s=mp.vote_bin_s)
    # The answers' time scales are measured again, finely, with the sketch: a place
    # nominated by few hash hits may be a few per cent off, which an answer's speed
    # (and a timeline that follows the place) would carry on.
    near = mp.refine_from_share * mp.min_score
    refined = [verify(h, clip.sketcher, index, mp, search_scale=True)
               if n < mp.refine_answers and h.evidence >= near and h.front_end == "peaks"
               else h
               for n, h in enumerate(ranked)]
    refined.sort(key=lambda h: -h.evidence)
    return refined + _copies_of_shared(refined, clip, index, mp)


def _copies_of_shared(hits: Sequence[Hit], clip: ClipAnalysis, index: Index,
                      mp: MatchParams) -> list[Hit]:
    """When the best place overlaps material other episodes share (per the catalogue),
    the places of the other copies, verified: an intro clip cut from one copy must find
    every copy, even those the hashes missed (how well each fits then decides)."""
    needed = mp.min_score
    if not hits or hits[0].evidence < needed:
        return []
    best = hits[0]
    fs = index.params.frame_s
    start_s = best.offset_frames * fs
    stretch = index.shared_overlapping(best.episode_key, start_s,
                                       start_s + clip.duration_s * best.time_scale)
    if stretch is None:
        return []
    have = {h.episode_key for h in hits if h.evidence >= needed}
    out = []
    for copy in index.copies(stretch):
        if copy.episode_key in have:
            continue
        offset_s = copy.start_s + (start_s - stretch.start_s)
        guess = replace(best, episode_key=copy.episode_key, offset_frames=offset_s / fs,
                        evidence=0.0, bits=0, equal_bits=0)
        out.append(verify(guess, clip.sketcher, index, mp))
    return out
