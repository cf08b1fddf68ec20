"""The one place where live following and timelines reach below the stable engine API.

:mod:`citywok.long.live` and :mod:`citywok.long.timeline` search with the stable API
(:func:`~citywok.pipeline.match_clip`, :func:`~citywok.pipeline.decide`) and, once they
know a place, *follow* it cheaply: they ask whether the reference peaks that the place
predicts are in the input. That needs the input's peaks as a stream and the index's
stored peaks, which are engine internals; everything that touches them is here, behind
four names, so that a new fingerprint, index or matcher changes this module only:

* :class:`Place`: "input frame ``u`` plays frame ``offset_frames + time_scale * u`` of
  episode ``episode_key``, pitch shifted by ``pitch_shift`` semitones";
* :class:`PeakFeed`: the input's peaks, computed as the decoded samples stream in;
* :class:`Verifier`: which of a place's reference peaks the input has, as a
  :class:`Check` of per-peak observations (found or not, and the chance of finding it
  anyway), which is all the layers above look at;
* :func:`place_of`, :func:`confidence`, :func:`evidence_needed`: hits, and the
  followers' own peak evidence, in the engine's terms.

Following uses its own statistic (reference peaks found beyond chance, on the stored
peaks), not the matcher's sketch score: it is computed second by second on a stream,
where the peaks are already at hand. Its threshold and confidence curve are the ones the
matcher used with that statistic (CityWok 0.1), calibrated then on outside audio; its
tolerances are :class:`~citywok.params.FollowParams`. The input's peaks are picked with
the index's own ``index_peaks``, whatever parameters built it.

Frames are the index's analysis frames (``index.params.frame_s`` seconds), counted from
the first sample of the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from citywok.analysis.peaks import Peaks, PeakStream
from citywok.index import Index
from citywok.match.places import Hit
from citywok.params import FollowParams

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Place:
    """Where the input lines up with an episode: ``t_ref = offset_frames + time_scale * u``.

    ``u`` counts input frames from the input's first sample; ``time_scale`` above 1 means
    the input plays fast; the input's pitch is the reference's plus ``pitch_shift``.
    """

    episode_key: int
    offset_frames: float
    time_scale: float
    pitch_shift: float

    def ref_frame(self, u: float) -> float:
        return self.offset_frames + self.time_scale * u

    def input_frame(self, t_ref: float) -> float:
        return (t_ref - self.offset_frames) / self.time_scale


def place_of(hit: Hit, *, first_frame: float) -> Place:
    """The place of a hit of a clip whose first frame is input frame ``first_frame``."""
    return Place(episode_key=hit.episode_key,
                 offset_frames=hit.offset_frames - hit.time_scale * first_frame,
                 time_scale=hit.time_scale, pitch_shift=hit.pitch_shift)


def evidence_needed(clip_s: float, params: FollowParams) -> float:
    """Peak evidence that confirms a place over ``clip_s`` seconds of input: it grows
    with the square root of the stretch's length, as chance and true evidence both do."""
    return params.evidence_5s * float(np.sqrt(max(clip_s, 1.0) / 5.0))


def confidence(evidence: float, *, clip_s: float, params: FollowParams) -> float:
    """Confidence for this much peak evidence over ``clip_s`` seconds: 0.5 at the
    threshold, 0.9 two points above it (the slope 1.1 is ln 9 / 2, rounded)."""
    return float(1.0 / (1.0 + np.exp(-(evidence - evidence_needed(clip_s, params)) * 1.1)))


class InputPeaks:
    """The input's peaks from some frame on, sorted by frame: appended at the end,
    forgotten at the start (buffers grow by doubling, so appending stays cheap)."""

    def __init__(self) -> None:
        self._frame = np.empty(4096, np.float64)
        self._pitch = np.empty(4096, np.float32)
        self._lo = 0
        self._hi = 0

    def __len__(self) -> int:
        return self._hi - self._lo

    @property
    def frame(self) -> Floats:
        return self._frame[self._lo : self._hi]

    @property
    def pitch(self) -> npt.NDArray[np.float32]:
        return self._pitch[self._lo : self._hi]

    def extend(self, peaks: Peaks) -> None:
        k = len(peaks)
        if k == 0:
            return
        if self._hi + k > len(self._frame):
            held = self._hi - self._lo
            size = max(len(self._frame), 2 * (held + k))
            frame, pitch = np.empty(size, np.float64), np.empty(size, np.float32)
            frame[:held], pitch[:held] = self.frame, self.pitch
            self._frame, self._pitch, self._lo, self._hi = frame, pitch, 0, held
        self._frame[self._hi : self._hi + k] = peaks.frame
        self._pitch[self._hi : self._hi + k] = peaks.pitch
        self._hi += k

    def forget_before(self, u: float) -> None:
        """Drop peaks before input frame ``u`` (bounds memory on long inputs)."""
        self._lo += int(np.searchsorted(self.frame, u, side="left"))

    def count_between(self, u_lo: float, u_hi: float) -> int:
        return int(np.searchsorted(self.frame, u_hi) - np.searchsorted(self.frame, u_lo))


class PeakFeed:
    """The input's peaks as its samples arrive, identical to picking them on the whole.

    A peak is final once enough later audio has been seen (about 1.2 s: peak picking
    looks at a neighbourhood); ``ready_frame`` says up to where peaks are final.
    ``block_s`` trades latency (live) for throughput (timelines).
    """

    def __init__(self, index: Index, *, block_s: float) -> None:
        params = index.params
        self._frame_s = params.frame_s
        self._hop = params.hop_length
        # Picked as the index's own reference peaks were (its stored parameters, not
        # today's defaults), so "found" means the same peak.
        self._stream = PeakStream(params=params, peak_params=params.index_peaks,
                                  block_frames=max(8, round(block_s / params.frame_s)))
        self.peaks = InputPeaks()
        self._ready = 0.0
        self._finished = False

    @property
    def ready_frame(self) -> float:
        """Peaks of frames before this are final."""
        return self._ready

    @property
    def frames_seen(self) -> float:
        """Frames whose start has been fed (the end of the input so far)."""
        return self._stream.samples_seen / self._hop

    def feed(self, samples: npt.NDArray[np.float32]) -> None:
        got = self._stream.feed(samples)
        self.peaks.extend(got)
        self._ready = max(self._ready, float(self._stream._next_frame))

    def finish(self) -> None:
        if not self._finished:
            self.peaks.extend(self._stream.finish())
            self._ready = float("inf")
            self._finished = True


@dataclass(frozen=True)
class Check:
    """What a place predicts for a stretch of input, one entry per reference peak.

    ``u`` is where each reference peak falls in the input (frames, ascending); ``found``
    whether the input has it; ``chance`` the probability that it would be found anyway
    (input peaks of that pitch nearby). ``pair_u``/``pair_ref`` are the (input frame,
    reference frame) of each found peak, for refitting the place's line.
    """

    u: Floats
    found: Bools
    chance: Floats
    pair_u: Floats
    pair_ref: Floats

    @classmethod
    def empty(cls) -> Check:
        z = np.empty(0, np.float64)
        return cls(z, np.empty(0, bool), z, z, z)

    def __len__(self) -> int:
        return len(self.u)

    @property
    def evidence(self) -> float:
        """Found peaks beyond chance, in standard deviations (the matcher's statistic)."""
        expected = float(self.chance.sum())
        return (int(self.found.sum()) - expected) / float(np.sqrt(expected + 1.0))


class Verifier:
    """Checks places against the index's stored reference peaks, with the tolerances of
    ``params``."""

    def __init__(self, index: Index, params: FollowParams) -> None:
        self._frame_s = index.params.frame_s
        self._tol_s = params.found_tol_s
        self._tol_semitones = params.found_tol_semitones
        self._chance_half_s = params.chance_half_s
        #: episode key -> (reference frames, pitches in semitones), views into the index.
        self._episodes: dict[int, tuple[npt.NDArray[np.int32], npt.NDArray[np.uint16],
                                        float]] = {}
        #: episode key -> its length in frames, from the catalogue (the decoded length).
        self._lengths = {key: ep.duration_s / self._frame_s
                         for key, ep in index.episodes.items()}
        for key in index.episodes:
            views = index.peak_views(key)
            if views is not None:
                self._episodes[key] = views

    def episode_frames(self, episode_key: int) -> float:
        """The episode's length in frames: where it ends, not where its last peak is (the
        last peak can come a second or more before the end)."""
        frames = self._episodes[episode_key][0]
        last_peak = float(frames[-1]) if len(frames) else 0.0
        return max(self._lengths.get(episode_key, 0.0), last_peak)

    def check(self, place: Place, peaks: InputPeaks, u_lo: float, u_hi: float, *,
              slack: float = 1.0) -> Check:
        """The place's reference peaks that fall in input frames ``[u_lo, u_hi)``.

        ``slack`` widens the time tolerance (for refitting a line known only roughly).
        """
        ref = self._episodes.get(place.episode_key)
        if ref is None or u_hi <= u_lo:
            return Check.empty()
        frames, pitches, unit = ref
        t_lo, t_hi = place.ref_frame(u_lo), place.ref_frame(u_hi)
        a = int(np.searchsorted(frames, t_lo, side="left"))
        b = int(np.searchsorted(frames, t_hi, side="left"))
        if b <= a:
            return Check.empty()
        ref_t = frames[a:b].astype(np.float64)
        ref_p = pitches[a:b].astype(np.float64) * unit + place.pitch_shift
        u = (ref_t - place.offset_frames) / place.time_scale
        tol_u = slack * self._tol_s / self._frame_s / place.time_scale
        half = self._chance_half_s / self._frame_s
        q_lo = int(np.searchsorted(peaks.frame, u_lo - half, side="left"))
        q_hi = int(np.searchsorted(peaks.frame, u_hi + half, side="right"))
        qf = peaks.frame[q_lo:q_hi]
        qp = peaks.pitch[q_lo:q_hi].astype(np.float64)
        found, best_u = _nearest_same_pitch(u, ref_p, qf, qp, tol_u, self._tol_semitones)
        # Chance: input peaks of the same pitch within +-half of each reference peak, each
        # catching it with probability (2 tol + 1) / (2 half + 1).
        same = _count_same_pitch(u, ref_p, qf, qp, half, self._tol_semitones)
        chance = np.minimum(1.0, same * (2 * tol_u + 1) / (2 * half + 1))
        return Check(u=u, found=found, chance=chance, pair_u=best_u[found],
                     pair_ref=ref_t[found])


def _neighbours(u: Floats, qf: Floats, reach: float) -> tuple[npt.NDArray[np.intp],
                                                              npt.NDArray[np.intp]]:
    """For each ``u``, the index range of input peaks within ``reach`` frames of it."""
    return (np.searchsorted(qf, u - reach, side="left"),
            np.searchsorted(qf, u + reach, side="right"))


def _nearest_same_pitch(u: Floats, ref_p: Floats, qf: Floats, qp: Floats,
                        tol_u: float, tol_semitones: float) -> tuple[Bools, Floats]:
    """Whether each reference peak has an input peak of its pitch within ``tol_u``
    frames, and the frame of the nearest such peak."""
    n = len(u)
    found = np.zeros(n, dtype=bool)
    best_u = np.zeros(n, dtype=np.float64)
    best_d = np.full(n, np.inf)
    if len(qf) == 0:
        return found, best_u
    first, last = _neighbours(u, qf, tol_u)
    # Few input peaks lie within a tolerance of one point: walk them all in lock step.
    for k in range(int((last - first).max(initial=0))):
        j = first + k
        live = j < last
        jj = np.where(live, j, 0)
        d = np.abs(qf[jj] - u)
        better = live & (np.abs(qp[jj] - ref_p) <= tol_semitones) & (d < best_d)
        best_d = np.where(better, d, best_d)
        best_u = np.where(better, qf[jj], best_u)
        found |= better
    return found, best_u


def _count_same_pitch(u: Floats, ref_p: Floats, qf: Floats, qp: Floats,
                      half: float, tol_semitones: float) -> Floats:
    """Input peaks within ``half`` frames of each reference peak and of its pitch."""
    count = np.zeros(len(u), dtype=np.float64)
    if len(qf) == 0:
        return count
    first, last = _neighbours(u, qf, half)
    for k in range(int((last - first).max(initial=0))):
        j = first + k
        live = j < last
        jj = np.where(live, j, 0)
        count += live & (np.abs(qp[jj] - ref_p) <= tol_semitones)
    return count
