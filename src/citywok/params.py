"""Parameters, in two kinds that never mix.

* :class:`AnalysisParams` decide what the *index* holds (peaks, hashes, sketches). They
  are stored in every index; opening an index with different ones is an
  :class:`~citywok.errors.IndexParamsMismatchError`, because hashes made one way never
  meet hashes made another way. Each is checked against the bit width it must fit.
* :class:`MatchParams` are every knob of the *query* side and of the decision: how the
  clip's peaks are picked, which warps are tried, how many postings a query may read,
  the thresholds. They are never stored, so changing one never locks an index out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from citywok.errors import ConfigError, IndexParamsMismatchError


@dataclass(frozen=True)
class PeakParams:
    """How spectral peaks are picked.

    A peak is the largest value in a rectangle of ``2 * half_frames + 1`` frames by
    ``2 * half_bins + 1`` bins around it, that stands ``prominence_db`` above the mean
    power around it and no more than ``floor_db`` below the loudest value of its second.
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
    """Parameters of decoding, spectrogram, reference peaks, hashes and sketches.

    Stored in the index. The hash layout's bit widths (``hashes.triplet``) bound several
    of them; :meth:`validate` says which and why.
    """

    #: 8 kHz keeps the band that survives every re-upload (telephone band included),
    #: makes decoding and the FFT cheap, and is what ffmpeg resamples to fastest.
    sample_rate_hz: int = 8000
    #: 64 ms Hann window: 15.6 Hz bins, refined by parabolic interpolation.
    n_fft: int = 512
    #: 16 ms between frames (4 per window): a clip rarely starts on the reference's
    #: frame grid, and at 2 frames per window a half-hop offset kept only ~64 % of the
    #: reference's peaks (~88 % at 4).
    hop_length: int = 128
    #: Peaks outside this band are ignored: below it the bins are too coarse in
    #: semitones, above it lossy codecs and band-limiting remove energy.
    fmin_hz: float = 150.0
    fmax_hz: float = 3400.0
    index_peaks: PeakParams = PeakParams(half_frames=13, half_bins=10, floor_db=45.0,
                                          prominence_db=10.0)
    #: An anchor peak is combined with pairs of its next ``index_fanout`` peaks in time.
    index_fanout: int = 4
    #: Quantisation of the two pitch differences in a triplet hash (semitones).
    pitch_step_semitones: float = 0.5
    #: Number of bins for the time ratio (t2 - t1) / (t3 - t1).
    ratio_bins: int = 16
    #: Width of the bands of log(span) (span = t3 - t1 in frames) and of anchor pitch
    #: (semitones) that the hash also carries; see ``MatchParams.band_margin_bins``.
    span_band_log: float = 0.55
    pitch_band_semitones: float = 7.0
    #: Longest anchor-to-last-peak span of a reference triplet.
    max_span_frames: int = 128
    #: Partners of an anchor are taken within this many semitones of its pitch. 60 (the
    #: whole band) measured best: a narrow band kept more triplets under 0 dB noise but
    #: let unrelated music line up by chance more often.
    partner_band_semitones: float = 60.0
    #: Sketch: band energies in ``sketch_bands`` log-spaced bands between these edges,
    #: summed over ``sketch_frames`` frames (48 ms); one bit per pair of neighbouring
    #: bands and sketch frames (``sketch_bands - 1`` bits per sketch frame).
    sketch_bands: int = 17
    sketch_frames: int = 3
    sketch_fmin_hz: float = 250.0
    sketch_fmax_hz: float = 3200.0

    @property
    def frame_s(self) -> float:
        return self.hop_length / self.sample_rate_hz

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisParams:
        fields = dict(data)
        if isinstance(fields.get("index_peaks"), dict):
            fields["index_peaks"] = PeakParams(**fields["index_peaks"])
        try:
            params = cls(**fields)
        except TypeError as exc:
            raise IndexParamsMismatchError(
                f"unknown analysis parameters ({exc}): the index was built by another "
                "CityWok; rebuild it with `citywok index --rebuild`") from None
        params.validate()
        return params

    def validate(self, *, layout_problems: Sequence[str] = ()) -> None:
        """Raise :class:`ConfigError` when a value cannot fit the sketch layout, or a hash
        family's (``layout_problems``: what the family's own ``check_params`` found; a
        family owns its bit widths, so the check lives beside them)."""
        problems: list[str] = list(layout_problems)
        if not 3 <= self.sketch_bands <= 17:
            problems.append("sketch_bands must be 3..17 (16 bits per sketch frame)")
        if not 0 < self.fmin_hz < self.fmax_hz <= self.sample_rate_hz / 2:
            problems.append("need 0 < fmin_hz < fmax_hz <= sample_rate_hz / 2")
        if not self.fmin_hz <= self.sketch_fmin_hz < self.sketch_fmax_hz <= self.fmax_hz:
            problems.append("the sketch band must lie inside [fmin_hz, fmax_hz]")
        if problems:
            raise ConfigError("invalid analysis parameters: " + "; ".join(problems))

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
    """Every knob of the query side and the decision (never stored in the index)."""

    #: Longest stretch of a query that is analysed; more adds time, not certainty.
    max_query_s: float = 30.0

    # -- the clip's peaks and hashes ----------------------------------------------------
    #: Queries pick peaks in the reference's rectangle but with a lower prominence: a
    #: clip under noise or a voice-over keeps more of the reference's peaks (measured at
    #: 3 s: 0 dB noise 10 -> 20 of 30 clips reach a candidate, voice-over 23 -> 26).
    query_peaks: PeakParams = PeakParams(half_frames=13, half_bins=10, floor_db=45.0,
                                          prominence_db=5.0)
    #: An anchor is combined with pairs of its next ``query_fanout`` peaks: more than the
    #: index's fanout, to absorb the peaks a distortion adds or removes.
    query_fanout: int = 6
    #: A feature closer than this (in bins) to a bin edge is looked up in both bins.
    edge_margin_bins: float = 0.2
    #: The same for the coarse span and pitch bands, which must absorb what the nearest
    #: warp leaves of a speed or pitch change (up to ~11 % and ~2 semitones).
    band_margin_bins: float = 0.3
    #: Warps of the clip's spectrogram tried in turn, as (time factor, frequency factor):
    #: each undoes a guessed speed, tempo or pitch change before peaks are picked, so the
    #: clip's peaks are picked with the reference's geometry and its span and pitch
    #: bands fall where the reference's do.
    #: The grid covers what re-uploads do: speed changes (time and pitch together),
    #: tempo changes (time only), pitch shifts (pitch only); not a tempo change combined
    #: with a pitch shift the other way.
    warps: tuple[tuple[float, float], ...] = (
        (1.0, 1.0),
        (0.8, 0.84), (1.22, 1.19), (0.8, 1.0), (1.22, 1.0), (1.0, 0.84), (1.0, 1.19),
    )

    # -- reading postings ---------------------------------------------------------------
    #: At most this many postings are read per warp, rarest hashes first: a query costs
    #: the same whatever the library's size, and common hashes (which say least) are the
    #: ones left out when the budget binds.
    postings_budget: int = 60_000

    # -- from hits to places -----------------------------------------------------------
    #: Time scale (reference duration / clip duration) a single hit may show, in the
    #: warped spectrogram.
    min_time_scale: float = 0.70
    max_time_scale: float = 1.45
    #: Pitch shift a single hit may show (semitones).
    max_pitch_shift_semitones: float = 6.0
    #: Exact-feature tolerances for a hit to count (semitones, ratio units).
    pitch_tolerance_semitones: float = 0.5
    ratio_tolerance: float = 0.12
    #: Clip-centre vote bins (seconds) and pitch-shift vote bins (semitones).
    vote_bin_s: float = 0.768
    shift_bin_semitones: float = 1.0
    #: Hits that must agree on a place before it is refined and verified.
    min_votes: int = 2
    #: How many distinct places (the busiest) are refined and verified per search (the
    #: plain clip first, then every other warp together): the right place was among the
    #: ten busiest of its warp in 98 % of the clips whose place was found at all
    #: (reverb, 0 dB noise, voice-over and music clips of 5 s).
    places_per_search: int = 16
    #: Beyond those, places with at least this share of the busiest place's votes are
    #: verified too: shared material has as many equally busy places as copies.
    copies_vote_share: float = 0.5
    #: ... when the busiest place has at least this many votes (chance places have two
    #: or three, and a dozen of them says nothing).
    copies_min_votes: int = 8
    #: ... but never more than this many places a search in all. Chance crowds grow with
    #: the library (at 40 h a clip of outside audio had 100-200 places of 8+ votes, each
    #: verified, most of a no_match's cost); copies of shared material the catalogue
    #: knows are all verified anyway (``pipeline._copies_of_shared``).
    max_places_per_search: int = 48
    #: When a warp finds nothing conclusive, its busiest places have their time scale
    #: searched a few per cent either way with the sketch (0: only the answers', below).
    scale_search_places: int = 0
    #: The best places that pass the threshold have their time scale measured again
    #: with the sketch (+-5 % in 0.5 % steps) before they are answered.
    refine_answers: int = 3
    #: Line-fit tolerance (seconds) and the spread of pitch shifts kept in a place.
    line_tolerance_s: float = 0.064
    shift_spread_semitones: float = 0.5

    # -- verification and decision --------------------------------------------------------
    #: What a real re-upload can do, in the clip's own axes once warps are undone: speed
    #: 0.75-1.3x, tempo 0.8-1.25x, pitch +-3 semitones. Places outside are chance.
    plausible_time_scale: tuple[float, float] = (0.72, 1.40)
    plausible_pitch_shift: float = 5.5
    #: The sketch score (agreement of the clip's sketch with the reference's beyond
    #: chance, in standard deviations of chance) a place needs to be an answer.
    #: Calibrated on outside audio (bench/README.md): 1.1 x the best score of any
    #: calibration clip that is not the same recording as the place it named (5.98 at
    #: 3 s, 6.14 at 5 s, 5.15 at 10 s) asks for 6.75; held-out clips are then scored with
    #: this rounded-up value. One value serves every length (see ``score_needed``).
    min_score: float = 7.0
    #: Score at which the warp search stops early.
    conclusive_score: float = 9.0
    #: Other episodes whose best place scores at least this share of the best (and pass
    #: ``min_score`` themselves) make the answer ambiguous.
    ambiguous_ratio: float = 0.6
    #: A ``match`` whose runner-up (another episode) scores ``r`` of the best has its
    #: confidence times ``1 - runner_up_discount * r``.
    runner_up_discount: float = 0.5
    #: How many candidates a ``match`` answer lists (ambiguous answers list them all).
    max_candidates: int = 10

    #: Measured reliability: (evidence, share of answers at that evidence that were right)
    #: pairs, from the benchmark's reliability table (bench/README.md: 2026-11-30 at
    #: ``87b3712``, 3,200 library clips under 32 distortions and 1,200 outside clips,
    #: read by ``bench.scoring.confidence_mapping``). An answer's confidence is read off it.
    reliability: tuple[tuple[float, float], ...] = (
        (2.0, 0.003), (5.0, 0.0535), (6.5, 0.6667), (7.5, 0.7297), (8.5, 0.8727),
        (9.5, 0.9307), (12.5, 0.9483), (14.0, 0.9905), (17.5, 0.9966), (25.0, 0.9987))

    def score_needed(self, clip_s: float) -> float:
        """The evidence a place needs to be an answer, for a clip of ``clip_s`` seconds.

        Chance agreement of sketches does not grow with the clip's length (the score is
        already normalised by the number of bits), so neither does the threshold."""
        del clip_s
        return self.min_score

    def confidence(self, evidence: float) -> float:
        """Probability that an answer with this evidence is right (the reliability
        table, interpolated)."""
        import numpy as np  # here, not at the top: the CLI imports params to show --help

        xs = [x for x, _ in self.reliability]
        ys = [y for _, y in self.reliability]
        return float(np.interp(evidence, xs, ys))

    def __post_init__(self) -> None:
        if self.min_votes < 1:
            raise ConfigError("min_votes must be at least 1")
        if self.max_places_per_search < self.places_per_search:
            raise ConfigError("max_places_per_search must be at least places_per_search")
        if self.postings_budget < 1:
            raise ConfigError("postings_budget must be positive")
        if not 0 < self.ambiguous_ratio <= 1:
            raise ConfigError("ambiguous_ratio must be in (0, 1]")
        if not self.warps:
            raise ConfigError("at least one warp is needed")
