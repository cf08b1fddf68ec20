"""Analysis parameters: everything that decides which hashes a recording produces.

They are stored in every index; opening an index with different parameters is an
:class:`~citywok.errors.IndexParamsMismatchError`, because hashes made one way never meet
hashes made another way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from citywok.errors import IndexParamsMismatchError


@dataclass(frozen=True)
class PeakParams:
    """How spectral peaks are picked.

    A peak is the largest value in a rectangle of ``2 * half_frames + 1`` frames by
    ``2 * half_bins + 1`` bins around it. A smaller rectangle keeps every peak a larger
    one keeps (and more), which is why queries use a smaller one than the index: the
    query's peaks are a superset of the reference's, even after a speed change.
    """

    half_frames: int
    half_bins: int
    #: Peaks weaker than the loudest value of their one-second neighbourhood by more than
    #: this are dropped: they are the first to vanish under noise or lossy coding.
    floor_db: float
    #: A peak must exceed the mean power of its surroundings by this much.
    prominence_db: float = 0.0


@dataclass(frozen=True)
class AnalysisParams:
    """Parameters of decoding, spectrogram, peaks and hashes (stored in the index)."""

    #: 8 kHz keeps the band that survives every re-upload (telephone band included),
    #: makes decoding and the FFT cheap, and is what ffmpeg resamples to fastest.
    sample_rate_hz: int = 8000
    #: 64 ms Hann window: 15.6 Hz bins, refined by parabolic interpolation.
    n_fft: int = 512
    #: 16 ms between frames (4 per window). With 2 per window, a clip that starts half a
    #: hop off the reference's frame grid kept only ~64 % of the reference's peaks; with
    #: 4 it keeps ~88 %, and triplets need all three of theirs.
    hop_length: int = 128
    #: Peaks outside this band are ignored: below it the bins are too coarse in
    #: semitones, above it lossy codecs and band-limiting remove energy.
    fmin_hz: float = 150.0
    fmax_hz: float = 3400.0
    index_peaks: PeakParams = PeakParams(half_frames=13, half_bins=10, floor_db=45.0,
                                          prominence_db=10.0)
    #: Queries pick peaks as the index does, so that "the next peaks" of an anchor are
    #: the same ones in both; the matcher's query-side fanout absorbs the few extra or
    #: missing peaks a distortion brings.
    query_peaks: PeakParams = PeakParams(half_frames=13, half_bins=10, floor_db=45.0,
                                          prominence_db=10.0)
    #: An anchor peak is combined with pairs of the next ``fanout`` peaks in time.
    index_fanout: int = 4
    query_fanout: int = 6
    #: Quantisation of the two pitch differences in a triplet hash (semitones).
    pitch_step_semitones: float = 0.5
    #: Number of bins for the time ratio (t2 - t1) / (t3 - t1).
    ratio_bins: int = 12
    #: Longest anchor-to-last-peak span of a reference triplet.
    max_span_frames: int = 128
    #: Partners of an anchor are taken within this many semitones of its pitch. 60 (the
    #: whole band) measured best: a narrow band kept more triplets under 0 dB noise but
    #: let unrelated music line up by chance more often.
    partner_band_semitones: float = 60.0

    @property
    def frame_s(self) -> float:
        return self.hop_length / self.sample_rate_hz

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisParams:
        fields = dict(data)
        for name in ("index_peaks", "query_peaks"):
            if isinstance(fields.get(name), dict):
                fields[name] = PeakParams(**fields[name])
        try:
            return cls(**fields)
        except TypeError as exc:
            raise IndexParamsMismatchError(f"unknown analysis parameters: {exc}") from None

    def require_same(self, other: AnalysisParams) -> None:
        """Raise if ``other`` would produce different hashes."""
        if self != other:
            ours, theirs = self.to_dict(), other.to_dict()
            diff = sorted(k for k in ours if ours[k] != theirs.get(k))
            raise IndexParamsMismatchError(
                "the index was built with other analysis parameters "
                f"({', '.join(diff)}); rebuild it or open it with its own parameters"
            )


DEFAULT_PARAMS = AnalysisParams()


@dataclass(frozen=True)
class MatchParams:
    """Decision rules of the matcher; not stored in the index, safe to change at will."""

    #: Time scale (reference duration / clip duration) a single hash hit may show, in
    #: the warped spectrogram being matched; the final answer must also fall within
    #: ``plausible_time_scale`` once the warp is undone.
    min_time_scale: float = 0.70
    max_time_scale: float = 1.45
    #: Pitch shift range searched, in semitones (speed 0.75-1.3x is -5 to +4.6).
    max_pitch_shift_semitones: float = 6.0
    #: Evidence (matched reference peaks beyond chance, in standard deviations) needed
    #: before a 5 s clip is called a match; it scales with the square root of the clip's
    #: length, as both chance and true evidence grow with the number of peaks compared.
    #: Calibrated on 400 clips of outside audio: none reached it (bench/README.md).
    min_evidence: float = 9.5
    evidence_reference_s: float = 5.0
    #: Triplets that must agree with the fitted line as well: two independent lines of
    #: evidence (hash level and peak level) before anything is called a match.
    min_votes: int = 6
    #: Other episodes with at least this share of the best evidence (and past the
    #: threshold themselves) make the answer ambiguous. A clip cut from one copy of a
    #: shared intro fits its own copy best (same encoder), the others less.
    ambiguous_ratio: float = 0.4
    #: How many candidates to return.
    max_candidates: int = 10
    #: Warps of the clip's spectrogram tried in turn, as (time factor, frequency factor):
    #: each undoes a guessed speed, tempo or pitch change before peaks are picked, so the
    #: clip's peaks are picked with the reference's geometry. The hashes are invariant to
    #: these changes, the peak picking is not; 3 x 3 guesses leave at most ~12 % to it.
    warps: tuple[tuple[float, float], ...] = (
        (1.0, 1.0),
        (0.8, 1.0), (1.22, 1.0), (1.0, 0.84), (1.0, 1.19),
        (0.8, 1.19), (1.22, 0.84), (0.8, 0.84), (1.22, 1.19),
    )
    #: Evidence at which the search stops early (the plain clip usually gets there).
    conclusive_evidence: float = 9.0
    #: What a real re-upload can do, in the clip's own axes once warps are undone: speed
    #: 0.75-1.3x, tempo 0.8-1.25x, pitch +-3 semitones. Places outside are chance.
    plausible_time_scale: tuple[float, float] = (0.72, 1.40)
    plausible_pitch_shift: float = 5.5

    def evidence_needed(self, clip_s: float) -> float:
        """The evidence threshold for a clip of ``clip_s`` seconds."""
        return self.min_evidence * float(np.sqrt(max(clip_s, 1.0) / self.evidence_reference_s))
