"""Parameters, in two kinds that never mix.

* :class:`AnalysisParams` decide what the *index* holds (peaks, hashes, sketches). They
  are stored in every index; opening an index with different ones is an
  :class:`~citywok.errors.IndexParamsMismatchError`, because hashes made one way never
  meet hashes made another way. Each is checked against the bit width it must fit.
* :class:`MatchParams` are every knob of the *query* side and of the decision: how the
  clip's peaks are picked, which warps are tried, how many postings a query may read,
  the thresholds. They are never stored, so changing one never locks an index out.

Long inputs (:mod:`citywok.long`) have knobs of their own, never stored either:
:class:`FollowParams` (following one known place), :class:`TimelineParams` (a file's
timeline) and :class:`LiveParams` (live following), each holding the follower's. Indexing
has :class:`BuildParams`. Every knob is declared once, here, with why it has its value.
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
    #: How reference peaks are picked (and, when following, the input's, so that "found"
    #: means the same peak).
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
    #: with the sketch (+-5 % in 0.5 % steps) before they are answered ...
    refine_answers: int = 3
    #: ... and so do the best places within this share of it. 1.0: only those that
    #: pass. The search over scales takes the best of many tries, so it lifts chance
    #: places too: at 0.5 a 3 s clip at 1.25x under a song went from 5.9 as fitted to
    #: 12.0 refined, but a timeline window of 4 s outside audio and 1 s of the shared
    #: theme went from under 7 to 7.3 at a wrong place and speed (0.975) and was
    #: answered `match` (tests/test_timeline.py's theme running into an episode).
    refine_from_share: float = 1.0
    #: Line-fit tolerance (seconds) and the spread of pitch shifts kept in a place.
    line_tolerance_s: float = 0.064
    shift_spread_semitones: float = 0.5
    #: The line-fit tolerance grows by this much per frame a hit's triplet spans: a
    #: small error in the fitted scale moves a hit's far peaks by a share of its span.
    line_tolerance_per_frame: float = 0.01

    # -- verifying a place with the sketch ------------------------------------------------
    #: Offsets (frames) around a place's fitted offset at which its sketch is compared:
    #: the sketch's 48 ms codes need the alignment to about a frame, and reverberation
    #: delays a clip's energy by one or two frames (measured: the best offset moved by
    #: -2 frames).
    verify_offsets_frames: tuple[float, ...] = tuple(-2.5 + 0.5 * i for i in range(9))
    #: The offsets of a first glance at a place (the fitted one, or a frame or two early
    #: under reverberation) ...
    glance_offsets_frames: tuple[float, ...] = (-2.0, -1.0, 0.0)
    #: ... and the score under which a place is left there as chance.
    glance_min_score: float = 2.0
    #: Time scales (times the fitted one) tried when a place's scale is searched: a place
    #: nominated by few hash hits may have its scale wrong by a few per cent, which over
    #: 5 s moves the clip's end by several frames (+-5 % in 0.5 % steps).
    scale_search: tuple[float, ...] = tuple(round(0.95 + 0.005 * i, 4) for i in range(21))

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
    #: this rounded-up value. One value serves every length: chance agreement of
    #: sketches does not grow with the clip's length (the score is already normalised by
    #: the number of bits), so neither does the threshold.
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

    # -- the learned front end (engine v3) ------------------------------------------------
    #: Search the index's embeddings when the peaks found nothing conclusive (the
    #: room-proof front end; an index without an embedding family skips it).
    use_embeddings: bool = True
    #: Nearest reference windows each 0.1 s query window nominates alignments with.
    embedding_top_k: int = 10
    #: The place an embedding search names is judged by one fused statistic:
    #: ``z + margin_weight * margin + sketch_weight * min(max(sketch, 0), sketch_cap)
    #: + votes_weight * votes`` (the mean standardised similarity along the alignment,
    #: its lead over the best alignment elsewhere, the sketch's agreement at the place,
    #: the share of windows whose own nearest neighbours agree; see
    #: :mod:`citywok.match.sequence`). The weights were chosen on held-out ranges of the
    #: bench library under rooms, noise and music, and outside audio; the threshold is
    #: 0.35 above the highest any of 429 clips reached that were not the place they
    #: named (outside audio, and degraded clips whose best alignment was wrong).
    embedding_margin_weight: float = 30.0
    embedding_sketch_weight: float = 0.3
    embedding_sketch_cap: float = 8.0
    embedding_votes_weight: float = 1.0
    #: The fused statistic at which an embedding place reaches the sketch's threshold: it
    #: is reported as evidence ``embedding_evidence_scale * fused / embedding_min_fused``
    #: so that one decision weighs both front ends (with the default ``min_score`` 7, a
    #: fused 10 is the threshold). A fixed scale, not ``min_score`` itself: a calibration
    #: that moves the threshold moves it for both front ends alike.
    embedding_min_fused: float = 10.0
    embedding_evidence_scale: float = 7.0
    #: A reference of more windows than this (0.5 s each: 200,000 is 28 h) is searched
    #: through inverted lists (:mod:`citywok.learned.coarse`) rather than whole: exact
    #: search costs 9 ms a query at 4 h, 0.43 s at 100 h and 2.4 s at 1,000 h.
    embedding_exact_max_windows: int = 200_000
    #: The lists: this many times the square root of the windows (1,000 h: 2,683),
    #: each centroid trained on this many sampled windows, and the lists a query window
    #: reads (its nearest centroids).
    embedding_lists_per_sqrt: float = 1.0
    embedding_train_per_list: int = 40
    embedding_nprobe: int = 16

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
        if not 0 < self.refine_from_share <= 1:
            raise ConfigError("refine_from_share must be in (0, 1]")
        if not 0 < self.ambiguous_ratio <= 1:
            raise ConfigError("ambiguous_ratio must be in (0, 1]")
        if not self.warps:
            raise ConfigError("at least one warp is needed")


@dataclass(frozen=True)
class FollowParams:
    """Knobs of following one known place through a stream (:mod:`citywok.long`): which
    reference peaks count as found, the alarm that says the place stopped, the refits of
    its line and the walk back to where it started. Never stored."""

    #: A plain-warp probe whose best place reaches this share of ``min_score`` is
    #: searched again with every warp; below it the window is passed over. Outside audio
    #: stays under ~0.5 (bench); sped-up and pitch-shifted episodes reach 1-2.5.
    promising_share: float = 0.5
    #: A reference peak is found when an input peak lies this close to where the place
    #: puts it (reference seconds): the matcher's own verification tolerance.
    found_tol_s: float = 0.048
    #: ... and this close in pitch (semitones).
    found_tol_semitones: float = 0.35
    #: Chance of finding a peak is counted over input peaks of the same pitch within this
    #: many seconds of it (local density, not the whole input's).
    chance_half_s: float = 1.0
    #: Chance is kept in this range for the likelihood ratio (0 or 1 would make one peak
    #: decide everything).
    chance_range: tuple[float, float] = (0.02, 0.5)
    #: Peak evidence a followed place needs over 5 s (it grows with the square root of
    #: the stretch's length, as chance and true evidence both do): the threshold the
    #: matcher used with this statistic (CityWok 0.1), calibrated on outside audio.
    evidence_5s: float = 9.5
    #: Find rate assumed for a place before it has ``min_obs_for_rate`` observations of
    #: its own: about what a clean re-upload finds.
    prior_find_rate: float = 0.6
    min_obs_for_rate: int = 30
    #: An estimated find rate is kept in this range: a near-perfect rate would make one
    #: missing peak look like the end; a rate near chance could never end.
    find_rate_range: tuple[float, float] = (0.2, 0.9)
    #: The CUSUM alarm: this much log-likelihood in favour of "gone" (nats) ...
    alarm_nats: float = 10.0
    #: ... lasting at least this long (seconds) since the change point: shorter dips are
    #: a loud moment, not an end.
    alarm_min_s: float = 0.75
    #: The line is refitted from found peaks once ``refit_min_pairs`` of them span at
    #: least ``refit_min_span_s`` (fewer, closer, fit the speed worse than the search
    #: did); the last ``refit_max_pairs`` are used, so a long stretch costs the same.
    refit_min_pairs: int = 24
    refit_min_span_s: float = 2.0
    refit_max_pairs: int = 4000
    #: A refit may change the speed by this much (relative); more is not a refinement.
    max_refit_change: float = 0.02
    #: Time tolerances (times ``found_tol_s``) of the refits of a searched place, widest
    #: first: the search's line is known only roughly, so it is pulled in gradually.
    refine_slacks: tuple[float, ...] = (3.0, 2.0, 1.0, 1.0)
    #: A found place's stretch is walked back in blocks this long (seconds) while each
    #: shows the place with ``back_evidence``; blocks with fewer than ``back_min_peaks``
    #: reference peaks cannot tell, and are walked through. One hypothesis checked needs
    #: far less evidence than a search among millions.
    back_block_s: float = 2.5
    back_evidence: float = 2.0
    back_min_peaks: int = 8
    #: After an alarm, a follower with a look-ahead (``confirm_s``) looks past the first
    #: ``settle_s`` seconds: the place showing there with ``continue_evidence`` was a dip
    #: (a loud overlay, a noisy moment), not an end.
    continue_evidence: float = 3.5
    settle_s: float = 0.5


@dataclass(frozen=True)
class TimelineParams:
    """Knobs of a long input's timeline (:mod:`citywok.long.timeline`). Never stored."""

    #: Windows searched where nothing is known (seconds) and how far apart: 5 s finds
    #: what a 5 s clip finds; half a window apart, a stretch of 5 s or more is always
    #: wholly inside one.
    window_s: float = 5.0
    stride_s: float = 2.5
    #: Two places whose boundaries are closer than this (seconds) meet at one cut;
    #: further apart, the stretch between them is ``unknown``.
    join_s: float = 1.5
    #: Neither place explaining less than this (seconds) between two stretches is no
    #: ``unknown`` stretch: they meet at one cut.
    min_unknown_s: float = 1.0
    #: Stretches shorter than this (seconds) are not worth one of their own: too few
    #: peaks to trust.
    min_stretch_s: float = 1.0
    #: A gap this long (seconds) between a stretch and one found after it is searched
    #: again: the window that found the later one may have hidden a short one before it.
    gap_search_s: float = 2.5
    #: A found place's stretch may reach back this far (seconds) before its window.
    back_s: float = 30.0
    #: Members of a shared-material group that stop within this long (seconds) of the
    #: last one stopped together: the stretch is ambiguous between them.
    together_s: float = 1.0
    #: Consecutive stretches of one episode on one line (within ``same_line_s`` seconds
    #: and ``same_line_speed`` relative speed) with a gap shorter than ``merge_gap_s``
    #: are one stretch that lost its peaks for a moment.
    same_line_s: float = 0.3
    same_line_speed: float = 0.015
    merge_gap_s: float = 3.0
    #: Longer gaps, up to ``merge_gap_max_s``, are taken in when the line shows in them
    #: with ``gap_evidence`` (a reaction video talking over its episode for a while).
    merge_gap_max_s: float = 60.0
    gap_evidence: float = 3.0
    #: After a follower's alarm, the next seconds decide whether its place really stopped.
    confirm_s: float = 6.0
    #: Followers are advanced this far (seconds) at a time.
    step_s: float = 1.0
    #: Recent samples kept for searches (seconds): more than any window and walk back.
    keep_s: float = 60.0
    #: Peaks are picked in blocks this long (seconds): throughput, not latency, counts.
    block_s: float = 8.0
    #: How each place found is followed.
    follow: FollowParams = FollowParams()


@dataclass(frozen=True)
class LiveParams:
    """Knobs of live following (:mod:`citywok.long.live`). Never stored."""

    #: A ``listening`` or ``position`` event at most this often (seconds of audio).
    update_every_s: float = 1.0
    #: Audio heard (since the start or the loss) before a search is tried: about what a
    #: search needs to find a place.
    min_search_s: float = 3.0
    #: How often a search is retried while nothing is found (seconds of audio).
    search_every_s: float = 0.5
    #: The longest stretch of recent audio a search looks at (seconds).
    window_s: float = 8.0
    #: Recent samples kept beyond the window (seconds), for telling a pause.
    keep_extra_s: float = 4.0
    #: Peaks are picked in small blocks (seconds): a peak is final ~1.2 s after it is
    #: heard, plus at most one block.
    block_s: float = 0.25
    #: Input quieter than this (RMS) is a pause whatever came before (about -60 dBFS) ...
    quiet_rms: float = 1e-3
    #: ... and so is input this much quieter than while the place played (-20 dB).
    quiet_ratio: float = 0.1
    #: Input right after a change point that is left out when telling a pause (seconds):
    #: the change point is known to a fraction of a second only.
    settle_s: float = 0.25
    #: Evidence over the last seconds is what a position's confidence is computed from.
    confidence_s: float = 5.0
    #: A new place within this many seconds of where the old one was heading (or paused)
    #: is the same place resumed, not a seek.
    same_place_s: float = 1.5
    #: Seconds of resumed audio that must confirm the paused place before it is taken
    #: again.
    resume_check_s: float = 1.0
    #: How far (seconds) around the paused position the resumed audio is looked for.
    resume_reach_s: float = 0.25
    #: How each place found is followed.
    follow: FollowParams = FollowParams()


@dataclass(frozen=True)
class SharedParams:
    """Knobs of finding shared material at index time (:mod:`citywok.match.shared`).
    Never stored: changing one changes what the next ``index`` run records."""

    #: Pairs of hashes at one time difference that make a shared stretch (about 2 s of
    #: identical audio gives several hundred; unrelated music gives a handful).
    min_pairs: int = 25
    #: Time-difference bins (frames): a pair's difference jitters by a frame or two.
    delta_bin_frames: int = 4
    #: The gap (seconds) that ends a run of pairs.
    run_gap_s: float = 2.0
    #: Shortest stretch worth recording (seconds).
    min_length_s: float = 2.0
    #: Hashes more common than this within a show say nothing and are skipped: the work
    #: grows with the square of a show's postings per hash.
    max_per_hash: int = 64


@dataclass(frozen=True)
class BuildParams:
    """Knobs of building an index (:func:`citywok.pipeline.index_paths`). Never stored."""

    #: An interrupted first index keeps what was done up to the last commit: commit at
    #: least this often (seconds of work) ...
    commit_every_s: float = 60.0
    #: ... and at most this much audio per segment file (seconds): a segment is written
    #: whole, so this bounds the memory a batch holds.
    batch_audio_s: float = 4 * 3600.0
    #: How shared material is found once the episodes are in.
    shared: SharedParams = SharedParams()


@dataclass(frozen=True)
class FuseParams:
    """How the sound's and the pictures' evidence for one clip are weighed together
    (``match/fuse.py``, issue 17). Never stored."""

    #: A sound place and a picture place of the same episode whose starts lie within
    #: this many seconds are the same place (picture times are binned by 0.5 s, and a
    #: clip's frames are sampled twice a second).
    agree_s: float = 2.5
    #: A picture place's score is put on the sound's scale as ``min_score x score /
    #: threshold`` (its own threshold: a clip's, a 9:16 crop's or a screenshot's), so
    #: both answer at 7; below it, a place of each kind that agree add up, when each
    #: reaches this share of its own threshold ...
    partial_share: float = 0.5
    #: ... and their sum reaches this many times ``min_score``.
    fused_min: float = 1.3
    #: The confidence of a place the pictures alone found, at their threshold and at
    #: twice it (interpolated, capped).
    picture_confidence: tuple[float, float] = (0.8, 0.99)
    #: A clip's pictures seen through a narrow box (a 9:16 crop: one or two strips a
    #: frame) answer without the sound only at this share of their threshold: on the
    #: bench, outside video reached 1.0-1.33 of it there, and wrong places 1.5-1.83,
    #: while a whole frame's or a reaction's right places score 5-11.
    narrow_alone_share: float = 2.0

    def __post_init__(self) -> None:
        if self.agree_s <= 0 or not 0 < self.partial_share <= 1 or self.fused_min < 1:
            raise ConfigError("agree_s must be positive, partial_share in (0, 1] and "
                              "fused_min at least 1")
