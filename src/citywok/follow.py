"""Following a place through a stream: what live listening and timelines share.

Identifying every window of a long input from scratch is slow (a window of audio that is
not in the library tries every speed/pitch warp before it says ``no_match``). Once a
place is known, the next stretch of input only has to be *checked*: the reference peaks
the place predicts are looked up in the input's peaks, which costs a fraction of a
millisecond per second of audio. So both :mod:`citywok.live` and
:mod:`citywok.timeline` run the same loop: :func:`search` (the stable engine API: a
plain-warp probe, then every warp only when the probe looks promising) finds a place;
a :class:`Follower` per place observes each reference peak as found or not, refits the
place's line as it goes, and raises an alarm when the observations stop fitting (a
CUSUM of the log-likelihood ratio "the place plays" against "chance"); where it stopped
fitting (the change point) is the segment's boundary, to a fraction of a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from citywok.index import Index
from citywok.params import MatchParams
from citywok.pipeline import decide, match_clip
from citywok.result import Candidate, Status
from citywok.timeline_engine import Check, InputPeaks, Place, Verifier, place_of

Floats = npt.NDArray[np.float64]

#: A plain-warp probe whose best place reaches this share of the evidence a match needs
#: is searched again with every speed/pitch warp; below it the window is passed over.
#: Outside audio stays under ~0.5 (bench); sped-up and pitch-shifted episodes reach
#: 1-2.5 on the plain warp alone.
PROMISING_SHARE = 0.5
#: Find rate assumed for a place before it has enough observations of its own, and the
#: range an estimate is kept in (a near-perfect rate would make one missing peak look
#: like the end; a rate near chance could never end).
_PRIOR_FIND_RATE = 0.6
_FIND_RATE_RANGE = (0.2, 0.9)
_MIN_OBS_FOR_RATE = 30
#: Chance of finding a peak anyway is kept in this range for the likelihood ratio.
_CHANCE_RANGE = (0.02, 0.5)
#: The CUSUM alarm: this much log-likelihood in favour of "gone" (nats) ...
ALARM_NATS = 10.0
#: ... lasting at least this long (seconds) since the change point.
ALARM_MIN_S = 0.75
#: The line is refitted from found peaks once this many span at least this long.
_REFIT_MIN_PAIRS = 24
_REFIT_MIN_SPAN_S = 2.0
_REFIT_MAX_PAIRS = 4000


@dataclass(frozen=True)
class Sighting:
    """What a search of one window found: places that fit, best first."""

    status: Status
    places: tuple[Place, ...]
    #: The identify answer's candidates for the window (offsets at its first sample).
    candidates: tuple[Candidate, ...]


def search(samples: npt.NDArray[np.float32], index: Index, match_params: MatchParams, *,
           first_frame: float, thorough: bool = True) -> Sighting | None:
    """Identify one window of input whose first sample is input frame ``first_frame``.

    The plain clip is matched first; every warp of ``match_params`` is tried only when
    that looks promising (or ``thorough`` insists), which keeps windows of audio that is
    not in the library cheap.
    """
    mp = match_params
    clip_s = len(samples) / index.params.sample_rate_hz
    plain = replace(mp, warps=mp.warps[:1])
    hits = match_clip(samples, index, plain)
    status, candidates = decide(hits, index, mp, clip_s=clip_s)
    if status is Status.NO_MATCH:
        best = hits[0].evidence if hits else 0.0
        if not (thorough or best >= PROMISING_SHARE * mp.evidence_needed(clip_s)):
            return None
        hits = match_clip(samples, index, mp)
        status, candidates = decide(hits, index, mp, clip_s=clip_s)
        if status is Status.NO_MATCH:
            return None
    needed = mp.evidence_needed(min(clip_s, 30.0))
    key_of = {ep.episode_id: key for key, ep in index.episodes.items()}
    places: list[Place] = []
    for c in candidates:
        key = key_of[c.episode.episode_id]
        hit = next((h for h in hits if h.episode_key == key and h.evidence >= needed
                    and h.votes >= mp.min_votes), None)
        if hit is not None:
            places.append(place_of(hit, first_frame=first_frame))
    if status is Status.MATCH:
        places = places[:1]
    if not places:
        return None
    return Sighting(status=status, places=tuple(places), candidates=candidates)


class Observations:
    """Per reference peak: where it falls in the input, found or not, chance of that."""

    def __init__(self) -> None:
        self.u: Floats = np.empty(0, np.float64)
        self.found = np.empty(0, bool)
        self.chance: Floats = np.empty(0, np.float64)

    def __len__(self) -> int:
        return len(self.u)

    def add(self, check: Check) -> None:
        if len(check):
            self.u = np.concatenate([self.u, check.u])
            self.found = np.concatenate([self.found, check.found])
            self.chance = np.concatenate([self.chance, check.chance])

    def between(self, u_lo: float, u_hi: float) -> slice:
        return slice(int(np.searchsorted(self.u, u_lo, side="left")),
                     int(np.searchsorted(self.u, u_hi, side="left")))

    def find_rate(self, u_lo: float, u_hi: float) -> float:
        """Share of reference peaks found in ``[u_lo, u_hi)``, kept in a sane range."""
        s = self.between(u_lo, u_hi)
        n = s.stop - s.start
        if n < _MIN_OBS_FOR_RATE:
            return _PRIOR_FIND_RATE
        rate = float(self.found[s].mean())
        return min(max(rate, _FIND_RATE_RANGE[0]), _FIND_RATE_RANGE[1])

    def llr(self, find_rate: float, s: slice = slice(None)) -> Floats:
        """Log-likelihood ratio of each observation, "the place plays" over "chance".

        Peaks of one frame (the harmonics of one note, an onset) are found or lost
        together, so they share one observation's weight.
        """
        return llr(self.u[s], self.found[s], self.chance[s], find_rate)


    def evidence(self, u_lo: float, u_hi: float) -> float:
        """Found peaks in ``[u_lo, u_hi)`` beyond chance, in standard deviations."""
        s = self.between(u_lo, u_hi)
        expected = float(self.chance[s].sum())
        return (int(self.found[s].sum()) - expected) / math.sqrt(expected + 1.0)


def llr(u: Floats, found: npt.NDArray[np.bool_], chance: Floats, find_rate: float) -> Floats:
    """See :meth:`Observations.llr`."""
    c = np.clip(chance, *_CHANCE_RANGE)
    p = np.maximum(find_rate, c + 0.05)
    out: Floats = np.where(found, np.log(p / c), np.log((1 - p) / (1 - c)))
    if len(u) > 1:
        frame = np.round(u).astype(np.int64)
        _, where, size = np.unique(frame, return_inverse=True, return_counts=True)
        out = out / size[where]
    return out


def best_interval(u: Floats, score: Floats) -> tuple[int, int, float]:
    """The run ``[i, j)`` of observations with the largest total score (Kadane)."""
    best, best_i, best_j = 0.0, 0, 0
    run, run_i = 0.0, 0
    for k, v in enumerate(score.tolist()):
        if run <= 0.0:
            run, run_i = 0.0, k
        run += v
        if run > best:
            best, best_i, best_j = run, run_i, k + 1
    return best_i, best_j, best


def midpoint(u: Floats, k: int, default: float) -> float:
    """Between observation ``k - 1`` and ``k`` (where a change happened)."""
    if 0 < k < len(u):
        return 0.5 * float(u[k - 1] + u[k])
    return default


class Follower:
    """One place followed through the input: observations, a refitted line, an alarm.

    ``observe`` is called with consecutive stretches of input; once the observations
    stop fitting, ``ended`` is set and ``end_u`` is where they stopped (the change point).
    """

    def __init__(self, place: Place, verifier: Verifier, *, start_u: float,
                 frame_s: float) -> None:
        self.place = place
        self._verifier = verifier
        self._frame_s = frame_s
        self.obs = Observations()
        self.start_u = start_u
        #: Input observed up to here.
        self.cursor_u = start_u
        self.ended = False
        self.end_u = math.inf
        self._cusum = 0.0
        self._since = start_u
        self._pair_u: list[Floats] = []
        self._pair_ref: list[Floats] = []
        self._pairs = 0

    def observe(self, peaks: InputPeaks, u_hi: float) -> None:
        """Check the place over ``[cursor_u, u_hi)``, refit its line, run the alarm."""
        if self.ended or u_hi <= self.cursor_u:
            return
        check = self._verifier.check(self.place, peaks, self.cursor_u, u_hi)
        self._take(check)
        self.cursor_u = u_hi
        rate = self.obs.find_rate(self.start_u, u_hi)
        n = len(check)
        if n:
            steps = -llr(check.u, check.found, check.chance, rate)
            for k in range(n):
                self._cusum += float(steps[k])
                if self._cusum <= 0.0:
                    self._cusum = 0.0
                    self._since = 0.5 * float(check.u[k] + (check.u[k + 1] if k + 1 < n
                                                             else u_hi))
        if (self._cusum >= ALARM_NATS
                and (u_hi - self._since) * self._frame_s >= ALARM_MIN_S):
            self.ended = True
            self.end_u = max(self.start_u, self._since)

    def take_history(self, check: Check) -> None:
        """Add observations from before ``start_u`` (a place found late, extended back)."""
        old = self.obs
        self.obs = Observations()
        self.obs.add(check)
        self.obs.u = np.concatenate([self.obs.u, old.u])
        self.obs.found = np.concatenate([self.obs.found, old.found])
        self.obs.chance = np.concatenate([self.obs.chance, old.chance])
        self._pair(check)

    def _take(self, check: Check) -> None:
        self.obs.add(check)
        self._pair(check)
        self._refit()

    def _pair(self, check: Check) -> None:
        if len(check.pair_u):
            self._pair_u.append(check.pair_u)
            self._pair_ref.append(check.pair_ref)
            self._pairs += len(check.pair_u)

    def _refit(self) -> None:
        """Least-squares line through the found peaks: speed and offset drift less than
        the find tolerance over a long segment only when refitted as it goes."""
        if self._pairs < _REFIT_MIN_PAIRS:
            return
        u = np.concatenate(self._pair_u)[-_REFIT_MAX_PAIRS:]
        t = np.concatenate(self._pair_ref)[-_REFIT_MAX_PAIRS:]
        self._pair_u, self._pair_ref = [u], [t]
        if (u[-1] - u[0]) * self._frame_s < _REFIT_MIN_SPAN_S:
            return
        du = u - u.mean()
        sxx = float(du @ du)
        if sxx <= 0:
            return
        scale = float(du @ (t - t.mean())) / sxx
        if abs(scale / self.place.time_scale - 1.0) > 0.02:
            return  # a fit this far off is not a refinement; keep the line searched
        offset = float(t.mean() - scale * u.mean())
        self.place = replace(self.place, offset_frames=offset, time_scale=scale)


def start_following(place: Place, verifier: Verifier, peaks: InputPeaks, *, u_lo: float,
                    u_hi: float, frame_s: float) -> Follower:
    """A follower for a place just found somewhere in ``[u_lo, u_hi)``.

    The place's stretch within the window is the run of observations that fits it best,
    so input before it (the end of something else) neither starts the follower early
    nor sets off its alarm at once.
    """
    check = verifier.check(place, peaks, u_lo, u_hi)
    obs = Observations()
    obs.add(check)
    rate = float(check.found.mean()) if len(check) >= _MIN_OBS_FOR_RATE else _PRIOR_FIND_RATE
    rate = min(max(rate, _FIND_RATE_RANGE[0]), _FIND_RATE_RANGE[1])
    i, _, _ = best_interval(obs.u, obs.llr(rate))
    start = midpoint(obs.u, i, u_lo)
    follower = Follower(place, verifier, start_u=start, frame_s=frame_s)
    follower.observe(peaks, u_hi)
    return follower


class RecentSamples:
    """The last ``keep_s`` seconds of input samples, addressed by absolute sample index."""

    def __init__(self, *, keep_samples: int) -> None:
        self._keep = keep_samples
        self._buf = np.empty(0, np.float32)
        #: Absolute index of the first sample kept.
        self.start = 0

    @property
    def end(self) -> int:
        return self.start + len(self._buf)

    def append(self, samples: npt.NDArray[np.float32]) -> None:
        self._buf = np.concatenate([self._buf, samples.astype(np.float32, copy=False)])
        extra = len(self._buf) - self._keep
        if extra > self._keep // 4:  # trim in steps, not on every append
            self._buf = self._buf[extra:]
            self.start += extra

    def window(self, s0: int, s1: int) -> npt.NDArray[np.float32]:
        lo = max(s0, self.start) - self.start
        hi = max(lo, min(s1, self.end) - self.start)
        return self._buf[lo:hi]

    def rms(self, s0: int, s1: int) -> float:
        x = self.window(s0, s1)
        return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
