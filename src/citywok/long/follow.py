"""Following a place through a stream: what live listening and timelines share.

Identifying every window of a long input from scratch is slow (a window of audio that is
not in the library tries every speed/pitch warp before it says ``no_match``). Once a
place is known, the next stretch of input only has to be *checked*: the reference peaks
the place predicts are looked up in the input's peaks, which costs a fraction of a
millisecond per second of audio. So both :mod:`citywok.long.live` and
:mod:`citywok.long.timeline` run the same loop: :func:`search` (the stable engine API: a
plain-warp probe, then every warp only when the probe looks promising) finds a place;
a :class:`Follower` per place observes each reference peak as found or not, refits the
place's line as it goes, and raises an alarm when the observations stop fitting (a
CUSUM of the log-likelihood ratio "the place plays" against "chance"); where it stopped
fitting (the change point) is the stretch's boundary, to a fraction of a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from citywok.index import Index
from citywok.long.engine import Check, InputPeaks, Place, Verifier, place_of
from citywok.match.decide import decide
from citywok.match.query import match_clip
from citywok.params import FollowParams, MatchParams
from citywok.result import Candidate, Status

Floats = npt.NDArray[np.float64]

@dataclass(frozen=True)
class Sighting:
    """What a search of one window found: places that fit, best first."""

    status: Status
    places: tuple[Place, ...]
    #: The identify answer's candidates for the window (offsets at its first sample).
    candidates: tuple[Candidate, ...]


def search(samples: npt.NDArray[np.float32], index: Index, match_params: MatchParams, *,
           first_frame: float, params: FollowParams, thorough: bool = True,
           ) -> Sighting | None:
    """Identify one window of input whose first sample is input frame ``first_frame``.

    The plain clip is matched first; every warp of ``match_params`` is tried only when
    that looks promising (its best place reaches ``params.promising_share`` of
    ``min_score``) or ``thorough`` insists, which keeps windows of audio that is not in
    the library cheap.
    """
    mp = match_params
    clip_s = len(samples) / index.params.sample_rate_hz
    plain = replace(mp, warps=mp.warps[:1])
    hits = match_clip(samples, index, plain)
    status, candidates = decide(hits, index, mp, clip_s=clip_s)
    if status is Status.NO_MATCH:
        best = hits[0].evidence if hits else 0.0
        if not (thorough or best >= params.promising_share * mp.min_score):
            return None
        hits = match_clip(samples, index, mp)
        status, candidates = decide(hits, index, mp, clip_s=clip_s)
        if status is Status.NO_MATCH:
            return None
    needed = mp.min_score
    key_of = {ep.episode_id: key for key, ep in index.episodes.items()}
    places: list[Place] = []
    for c in candidates:
        key = key_of[c.episode.episode_id]
        hit = next((h for h in hits if h.episode_key == key and h.evidence >= needed), None)
        if hit is not None:
            places.append(place_of(hit, first_frame=first_frame))
    if status is Status.MATCH:
        places = places[:1]
    if not places:
        return None
    return Sighting(status=status, places=tuple(places), candidates=candidates)


class Observations:
    """Per reference peak: where it falls in the input, found or not, chance of that.

    Kept in buffers that grow by doubling, with running sums, so that following a place
    for hours costs the same per second as following it for a minute.
    """

    def __init__(self, params: FollowParams) -> None:
        self._params = params
        self._n = 0
        self._u = np.empty(64, np.float64)
        self._found = np.empty(64, bool)
        self._chance = np.empty(64, np.float64)
        #: Sums of found and of chance over the first i observations, at [i].
        self._sum_found = np.zeros(65, np.float64)
        self._sum_chance = np.zeros(65, np.float64)

    def __len__(self) -> int:
        return self._n

    @property
    def u(self) -> Floats:
        return self._u[: self._n]

    @property
    def found(self) -> npt.NDArray[np.bool_]:
        return self._found[: self._n]

    @property
    def chance(self) -> Floats:
        return self._chance[: self._n]

    def add(self, check: Check) -> None:
        self.extend(check.u, check.found, check.chance)

    def extend(self, u: Floats, found: npt.NDArray[np.bool_], chance: Floats) -> None:
        """Append observations that lie after those already held."""
        k = len(u)
        if k == 0:
            return
        n = self._n
        if n + k > len(self._u):
            size = max(2 * len(self._u), n + k)
            self._u = np.resize(self._u, size)
            self._found = np.resize(self._found, size)
            self._chance = np.resize(self._chance, size)
            self._sum_found = np.resize(self._sum_found, size + 1)
            self._sum_chance = np.resize(self._sum_chance, size + 1)
        self._u[n : n + k] = u
        self._found[n : n + k] = found
        self._chance[n : n + k] = chance
        self._sum_found[n + 1 : n + k + 1] = self._sum_found[n] + np.cumsum(found)
        self._sum_chance[n + 1 : n + k + 1] = self._sum_chance[n] + np.cumsum(chance)
        self._n = n + k

    def between(self, u_lo: float, u_hi: float) -> slice:
        return slice(int(np.searchsorted(self.u, u_lo, side="left")),
                     int(np.searchsorted(self.u, u_hi, side="left")))

    def totals(self, u_lo: float, u_hi: float) -> tuple[int, float, float]:
        """Observations in ``[u_lo, u_hi)``: how many, how many found, chance summed."""
        s = self.between(u_lo, u_hi)
        return (s.stop - s.start, float(self._sum_found[s.stop] - self._sum_found[s.start]),
                float(self._sum_chance[s.stop] - self._sum_chance[s.start]))

    def find_rate(self, u_lo: float, u_hi: float) -> float:
        """Share of reference peaks found in ``[u_lo, u_hi)``, kept in a sane range."""
        p = self._params
        n, found, _ = self.totals(u_lo, u_hi)
        if n < p.min_obs_for_rate:
            return p.prior_find_rate
        return min(max(found / n, p.find_rate_range[0]), p.find_rate_range[1])

    def llr(self, find_rate: float, s: slice = slice(None)) -> Floats:
        """Log-likelihood ratio of each observation, "the place plays" over "chance".

        Peaks of one frame (the harmonics of one note, an onset) are found or lost
        together, so they share one observation's weight.
        """
        return llr(self.u[s], self.found[s], self.chance[s], find_rate,
                   chance_range=self._params.chance_range)

    def evidence(self, u_lo: float, u_hi: float) -> float:
        """Found peaks in ``[u_lo, u_hi)`` beyond chance, in standard deviations."""
        _, found, expected = self.totals(u_lo, u_hi)
        return (found - expected) / math.sqrt(expected + 1.0)


def llr(u: Floats, found: npt.NDArray[np.bool_], chance: Floats, find_rate: float, *,
        chance_range: tuple[float, float]) -> Floats:
    """See :meth:`Observations.llr`; chance is clipped to ``chance_range``."""
    c = np.clip(chance, *chance_range)
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


def meet(ua: Floats, la: Floats, ub: Floats, lb: Floats, *, lo: float, hi: float,
         min_gap: float) -> tuple[float, float]:
    """Where place ``a`` (before) ends and place ``b`` (after) starts within
    ``[lo, hi]``, from the log-likelihood ratios ``la``/``lb`` of their observations at
    ``ua``/``ub`` (ascending).

    Scored against chance, a stretch neither place explains adds nothing, so ``a`` ends
    where the sum of its ratios before the end is largest, and ``b`` starts where the
    sum after the start is: a weak end or start (an overlay's loud moment) is taken in,
    and what neither explains between them is left to ``unknown``. When the two overlap
    (a crossfade, or one carried on too far) or leave less than ``min_gap`` between
    them, they meet at the single cut that scores best. Ties (a stretch with no peaks)
    are settled in their middle.
    """
    points = np.unique(np.concatenate([ua, ub, [lo, hi]]))
    cuts = np.concatenate([[lo], 0.5 * (points[1:] + points[:-1]), [hi]])
    cum_a = np.concatenate([[0.0], np.cumsum(la)])
    cum_b = np.concatenate([[0.0], np.cumsum(lb)])
    before_a = cum_a[np.searchsorted(ua, cuts, side="left")]
    after_b = cum_b[-1] - cum_b[np.searchsorted(ub, cuts, side="left")]
    end = _middle_of_best(cuts, before_a)
    start = _middle_of_best(cuts, after_b)
    if start - end < min_gap:
        end = start = _middle_of_best(cuts, before_a + after_b)
    return end, start


def _middle_of_best(cuts: Floats, score: Floats) -> float:
    best = np.flatnonzero(score >= score.max() - 1e-9)
    return float(0.5 * (cuts[best[0]] + cuts[best[-1]]))


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
                 frame_s: float, params: FollowParams, confirm_s: float = 0.0) -> None:
        self.place = place
        self._verifier = verifier
        self._frame_s = frame_s
        self._params = params
        self.obs = Observations(params)
        self.start_u = start_u
        #: Input observed up to here.
        self.cursor_u = start_u
        self.ended = False
        self.end_u = math.inf
        #: It ended because the input reached the end of its episode.
        self.episode_over = False
        self._cusum = 0.0
        self._since = start_u
        self._confirm_u = confirm_s / frame_s
        #: Where an alarm said the place stopped, while the look-ahead decides.
        self._suspect: float | None = None
        self._pair_u: list[Floats] = []
        self._pair_ref: list[Floats] = []
        self._pairs = 0

    @property
    def frame_s(self) -> float:
        return self._frame_s

    @property
    def episode_end_u(self) -> float:
        """The input frame where the place's episode ends: nothing of it plays after."""
        return self.place.input_frame(self._verifier.episode_frames(self.place.episode_key))

    def in_doubt(self, now_u: float) -> bool:
        """Whether the place may have stopped by input frame ``now_u``, which its peaks
        cannot tell yet: the latest observations lean towards "gone" (half the evidence
        an alarm needs, or an alarm waiting on its look-ahead), or ``now_u`` is past the
        end of the episode (nothing of it plays there; the peaks will say whether it
        played to its end or stopped before)."""
        return (self._suspect is not None or self._cusum >= self._params.alarm_nats / 2
                or now_u >= self.episode_end_u)

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
            steps = -llr(check.u, check.found, check.chance, rate,
                         chance_range=self._params.chance_range)
            for k in range(n):
                self._cusum += float(steps[k])
                if self._cusum <= 0.0:
                    self._cusum = 0.0
                    self._since = 0.5 * float(check.u[k] + (check.u[k + 1] if k + 1 < n
                                                             else u_hi))
        p = self._params
        if (self._suspect is None and self._cusum >= p.alarm_nats
                and (u_hi - self._since) * self._frame_s >= p.alarm_min_s):
            self._suspect = self._since
        if self._suspect is not None:
            settle = p.settle_s / self._frame_s
            if u_hi >= self._suspect + settle + self._confirm_u:
                self._decide(self._suspect + settle + self._confirm_u)
        # Past the episode's end nothing can be checked, and nothing plays there either;
        # an alarm raised before the end says where it stopped instead.
        end = self.episode_end_u
        if not self.ended and u_hi >= end:
            suspect = self._suspect
            self.episode_over = suspect is None or suspect >= end
            self.ended = True
            self.end_u = max(self.start_u, end if suspect is None else min(end, suspect))

    def stop(self, at_u: float) -> None:
        """The input ends at ``at_u``: decide any pending alarm with what there is."""
        if self.ended:
            return
        if self._suspect is not None:
            self._decide(at_u)
        if not self.ended:
            self.ended, self.end_u = True, max(self.start_u, min(self.cursor_u, at_u))

    def _decide(self, look_to: float) -> None:
        assert self._suspect is not None
        p = self._params
        look_from = self._suspect + p.settle_s / self._frame_s
        s = self.obs.between(look_from, look_to)
        informative = s.stop - s.start >= p.back_min_peaks
        if (self._confirm_u > 0 and informative
                and self.obs.evidence(look_from, look_to) >= p.continue_evidence):
            self._suspect = None  # a dip, not an end
            self._cusum = 0.0
            self._since = self.cursor_u
            return
        self.ended = True
        self.end_u = max(self.start_u, self._suspect)

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
        the find tolerance over a long stretch only when refitted as it goes."""
        p = self._params
        if self._pairs < p.refit_min_pairs:
            return
        u = np.concatenate(self._pair_u)[-p.refit_max_pairs:]
        t = np.concatenate(self._pair_ref)[-p.refit_max_pairs:]
        self._pair_u, self._pair_ref = [u], [t]
        if (u[-1] - u[0]) * self._frame_s < p.refit_min_span_s:
            return
        fit = fit_line(u, t)
        if fit is None or abs(fit[1] / self.place.time_scale - 1.0) > p.max_refit_change:
            return  # a fit this far off is not a refinement; keep the line searched
        self.place = replace(self.place, offset_frames=fit[0], time_scale=fit[1])


def fit_line(u: Floats, t: Floats) -> tuple[float, float] | None:
    """Least-squares ``t = offset + scale * u``; None when ``u`` does not spread."""
    du = u - u.mean()
    sxx = float(du @ du)
    if sxx <= 0:
        return None
    scale = float(du @ (t - t.mean())) / sxx
    return float(t.mean() - scale * u.mean()), scale


def refine(place: Place, verifier: Verifier, peaks: InputPeaks, u_lo: float,
           u_hi: float, params: FollowParams) -> Place:
    """The place's line refitted through the peaks it finds in ``[u_lo, u_hi)``.

    A search's line comes from a few seconds of hits; a small error in its speed grows
    as the line is extended over a long stretch. Peaks found with a wide tolerance first,
    then the usual one, pull it onto the true line.
    """
    for slack in params.refine_slacks:
        check = verifier.check(place, peaks, u_lo, u_hi, slack=slack)
        if len(check.pair_u) < params.refit_min_pairs // 2:
            break
        fit = fit_line(check.pair_u, check.pair_ref)
        if fit is None or abs(fit[1] / place.time_scale - 1.0) > 2 * params.max_refit_change:
            break
        place = replace(place, offset_frames=fit[0], time_scale=fit[1])
    return place


def start_following(place: Place, verifier: Verifier, peaks: InputPeaks, *, u_lo: float,
                    u_hi: float, frame_s: float, params: FollowParams,
                    window_lo: float | None = None, confirm_s: float = 0.0) -> Follower:
    """A follower for a place found in the window ``[window_lo, u_hi)``, whose stretch
    may reach back to ``u_lo``.

    The line is refitted on the window, then the stretch is walked back in blocks for as
    long as each block still shows the place (one hypothesis checked needs far less
    evidence than a search among millions, so a weak, talked-over stretch still counts).
    Its start is where the run of observations that fits the place best begins, so input
    before it (the end of something else) neither starts the follower early nor sets off
    its alarm at once.
    """
    window_lo = u_lo if window_lo is None else window_lo
    place = refine(place, verifier, peaks, window_lo, u_hi, params)
    u_lo = max(u_lo, place.input_frame(0.0))  # nothing plays before the episode starts
    block = params.back_block_s / frame_s
    lo = edge = window_lo
    strikes = 0
    # One block short of evidence may be a loud moment of an overlay: two in a row end it.
    while strikes < 2 and edge - block >= u_lo:
        back = verifier.check(place, peaks, edge - block, edge)
        edge -= block
        if len(back) >= params.back_min_peaks and back.evidence < params.back_evidence:
            strikes += 1
        else:
            strikes = 0
            lo = edge
    if lo < window_lo:
        place = refine(place, verifier, peaks, lo, u_hi, params)
    region_lo = max(u_lo, lo - block)
    check = verifier.check(place, peaks, region_lo, u_hi)
    obs = Observations(params)
    obs.add(check)
    rate = obs.find_rate(lo, u_hi)
    i, _, _ = best_interval(obs.u, obs.llr(rate))
    start = midpoint(obs.u, i, region_lo)
    follower = Follower(place, verifier, start_u=start, frame_s=frame_s, params=params,
                        confirm_s=confirm_s)
    # What came before the start is kept: a boundary with the stretch before may move.
    follower.obs.extend(obs.u[:i], obs.found[:i], obs.chance[:i])
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
