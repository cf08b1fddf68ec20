"""Live following: feed audio as it plays, get the episode and the position *now*.

A :class:`LiveTracker` is pure: no threads, no I/O, no clock. Feed it decoded samples
(mono float32 at the index's sample rate, ``index.params.sample_rate_hz``) in chunks of
any size as they arrive; each :meth:`LiveTracker.feed` returns the events that the new
audio caused, in order. Times are seconds of audio fed so far (``at_s``), never wall
time, so a recording fed at full speed gives the same events as a microphone::

    tracker = LiveTracker(index)
    for chunk in chunks:                      # e.g. 0.1-1 s of samples each
        for event in tracker.feed(chunk):
            send(event.to_json())             # {"event": "position", ...}

Events (frozen dataclasses, each with ``to_json()`` whose ``"event"`` names it):

* :class:`Listening` ``listening``: no answer yet (every ``update_every_s`` while
  nothing is followed: at the start, and after a :class:`Lost`);
* :class:`Found` ``found``: a place was found; ``match.offset_s`` is the position in the
  episode *now* (at ``at_s``), with speed and pitch; ``change`` says what happened since
  the last place: ``first``, ``resume`` (the same place again, after a pause or a
  dropout), ``seek`` (the same episode, elsewhere), ``episode`` (another episode) or
  ``resolved`` (an ``ambiguous`` answer narrowed to one episode);
* :class:`Position` ``position``: the position now, every ``update_every_s`` while a
  place is followed and the latest audio still fits it (while it looks like it stopped,
  no position is claimed: the peaks that tell come about 1.3 s after the sound);
* :class:`Lost` ``lost``: the audio stopped fitting the place at ``since_s``;
  ``reason`` is ``pause`` (the input went quiet), ``end`` (the episode played to its
  end; no position is ever past it) or ``mismatch``
  (something else plays: a seek, another episode, audio not in the library; which one
  is known when the next :class:`Found` comes).

Times like ``update_every_s`` and ``min_search_s`` are fields of
:class:`~citywok.params.LiveParams`. After a seek or a change of episode the next
:class:`Found` comes once about 3 s of the new audio have been heard (``min_search_s``),
within 5 s of audio on the benchmark; after a pause, as soon as a second of the resumed
audio confirms the old place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from citywok.index import Index
from citywok.long.engine import PeakFeed, Place, Verifier, confidence, evidence_needed
from citywok.long.follow import Follower, RecentSamples, search, start_following
from citywok.params import LiveParams, MatchParams
from citywok.result import Candidate, Status


class Change(StrEnum):
    """What a :class:`Found` means relative to the place followed before."""

    FIRST = "first"
    RESUME = "resume"
    SEEK = "seek"
    EPISODE = "episode"
    RESOLVED = "resolved"


class LostReason(StrEnum):
    #: The input went quiet (a paused player, a muted microphone).
    PAUSE = "pause"
    #: Something else plays: a seek, another episode, or audio not in the library.
    MISMATCH = "mismatch"
    #: The episode played to its end.
    END = "end"


@dataclass(frozen=True)
class Listening:
    """No answer yet: ``heard_s`` seconds of audio since the start or since the loss."""

    at_s: float
    heard_s: float

    def to_json(self) -> dict[str, Any]:
        return {"event": "listening", "at_s": round(self.at_s, 3),
                "heard_s": round(self.heard_s, 3)}


@dataclass(frozen=True)
class Found:
    """A place: ``match.offset_s`` is the position in the episode at ``at_s``."""

    at_s: float
    status: Status
    match: Candidate
    #: For ``ambiguous``: every episode that fits (positions now), best first.
    candidates: tuple[Candidate, ...]
    change: Change

    def to_json(self) -> dict[str, Any]:
        return {"event": "found", "at_s": round(self.at_s, 3), "status": self.status.value,
                "change": self.change.value, "match": self.match.to_json(),
                "candidates": [c.to_json() for c in self.candidates]}


@dataclass(frozen=True)
class Position:
    """The position now, while a place is followed."""

    at_s: float
    status: Status
    match: Candidate
    candidates: tuple[Candidate, ...]

    def to_json(self) -> dict[str, Any]:
        return {"event": "position", "at_s": round(self.at_s, 3),
                "status": self.status.value, "match": self.match.to_json(),
                "candidates": [c.to_json() for c in self.candidates]}


@dataclass(frozen=True)
class Lost:
    """The audio stopped fitting the followed place at ``since_s`` (input seconds)."""

    at_s: float
    since_s: float
    reason: LostReason
    #: The place as it was when it stopped fitting.
    last: Candidate

    def to_json(self) -> dict[str, Any]:
        return {"event": "lost", "at_s": round(self.at_s, 3), "since_s": round(self.since_s, 3),
                "reason": self.reason.value, "last": self.last.to_json()}


LiveEvent = Listening | Found | Position | Lost


@dataclass(frozen=True)
class _Gone:
    """The last place followed, and where (input frame) it stopped fitting."""

    place: Place
    at_u: float
    reason: LostReason


class LiveTracker:
    """Follows live audio: see the module docstring for the events and their timing, and
    :class:`~citywok.params.LiveParams` for when it searches, how often it speaks and how
    it tells a pause.
    """

    def __init__(self, index: Index, *, match_params: MatchParams | None = None,
                 live_params: LiveParams | None = None) -> None:
        lp = live_params or LiveParams()
        self._index = index
        self._mp = match_params or MatchParams()
        self._lp = lp
        self._fp = lp.follow
        params = index.params
        self._fs = params.frame_s
        self._hop = params.hop_length
        self._rate = params.sample_rate_hz
        self._verifier = Verifier(index, lp.follow)
        self._feed = PeakFeed(index, block_s=lp.block_s)
        self._recent = RecentSamples(
            keep_samples=int((lp.window_s + lp.keep_extra_s) * self._rate))
        self._update_u = lp.update_every_s / self._fs
        self._min_search_u = lp.min_search_s / self._fs
        self._search_every_u = lp.search_every_s / self._fs
        self._window_u = lp.window_s / self._fs
        self._group: list[Follower] = []
        self._status = Status.NO_MATCH
        self._gone: _Gone | None = None
        #: Searches look at input from here on (the start, or where the place was lost).
        self._from_u = 0.0
        self._next_search_u = 0.0
        self._next_update_u = 0.0
        #: RMS of the input while the followed place played (for telling a pause).
        self._level = 0.0

    @property
    def heard_s(self) -> float:
        """Seconds of audio fed so far."""
        return self._recent.end / self._rate

    @property
    def following(self) -> bool:
        return bool(self._group)

    def feed(self, samples: npt.NDArray[np.float32]) -> list[LiveEvent]:
        """Take the next samples; return the events they caused, in order."""
        x = np.asarray(samples, dtype=np.float32).ravel()
        if len(x) == 0:
            return []
        self._recent.append(x)
        self._feed.feed(x)
        self._feed.peaks.forget_before(self._now_u() - 2 * self._window_u)
        events: list[LiveEvent] = []
        if self._group:
            self._follow(events)
        if not self._group:
            self._look(events)
        now_u = self._now_u()
        if now_u >= self._next_update_u:
            if not self._group:
                self._next_update_u = now_u + self._update_u
                events.append(Listening(at_s=now_u * self._fs,
                                        heard_s=(now_u - self._from_u) * self._fs))
            elif not self._group[0].in_doubt(now_u):
                # In doubt, the place is only extrapolated from audio that may be gone:
                # say nothing until the peaks confirm it (or it is lost). (Another place
                # of an ambiguous group in doubt is one about to drop out of it.)
                self._next_update_u = now_u + self._update_u
                lead = self._group[0]
                events.append(Position(at_s=now_u * self._fs, status=self._status,
                                       match=self._candidate(lead, now_u),
                                       candidates=self._candidates(now_u)))
        return events

    # -- following --------------------------------------------------------------------

    def _now_u(self) -> float:
        return self._recent.end / self._hop

    def _follow(self, events: list[LiveEvent]) -> None:
        now_u = self._now_u()
        ready = min(self._feed.ready_frame, now_u)
        for f in self._group:
            f.observe(self._feed.peaks, ready)
        alive = [f for f in self._group if not f.ended]
        if alive and len(alive) < len(self._group):
            self._group = alive
            if len(alive) == 1 and self._status is Status.AMBIGUOUS:
                self._status = Status.MATCH
                events.append(Found(at_s=now_u * self._fs, status=Status.MATCH,
                                    match=self._candidate(alive[0], now_u), candidates=(),
                                    change=Change.RESOLVED))
        elif not alive:
            last = max(self._group, key=lambda f: f.end_u)
            end_u = last.end_u
            # Skip the first moments: the change point is only known to a fraction of a
            # second, and the last of the sound before a pause must not hide it.
            lp = self._lp
            quiet = self._recent.rms(int((end_u + lp.settle_s / self._fs) * self._hop),
                                     self._recent.end)
            if last.episode_over:
                reason = LostReason.END
            elif quiet < max(lp.quiet_rms, lp.quiet_ratio * self._level):
                reason = LostReason.PAUSE
            else:
                reason = LostReason.MISMATCH
            events.append(Lost(at_s=now_u * self._fs, since_s=end_u * self._fs,
                               reason=reason, last=self._candidate(last, end_u)))
            self._gone = _Gone(place=last.place, at_u=end_u, reason=reason)
            self._group = []
            self._status = Status.NO_MATCH
            self._from_u = end_u
            self._next_search_u = 0.0
            self._next_update_u = now_u + self._update_u

    def _look(self, events: list[LiveEvent]) -> None:
        now_u = self._now_u()
        if (self._gone is not None and self._gone.reason is LostReason.PAUSE
                and self._try_resume(events)):
            return
        if now_u - self._from_u < self._min_search_u or now_u < self._next_search_u:
            return
        self._next_search_u = now_u + self._search_every_u
        u_lo = float(math.floor(max(self._from_u, now_u - self._window_u)))
        s0 = int(u_lo) * self._hop
        if self._recent.rms(s0, self._recent.end) < self._lp.quiet_rms:
            return  # silence: nothing to search for, and nothing to spend on it
        window = self._recent.window(s0, self._recent.end)
        sighting = search(window, self._index, self._mp, first_frame=u_lo, params=self._fp,
                          thorough=False)
        if sighting is None:
            return
        ready = min(self._feed.ready_frame, now_u)
        group = [start_following(p, self._verifier, self._feed.peaks, u_lo=u_lo,
                                 u_hi=max(ready, u_lo + 1), frame_s=self._fs,
                                 params=self._fp)
                 for p in sighting.places]
        self._start(group, sighting.status, events)

    def _try_resume(self, events: list[LiveEvent]) -> bool:
        """After a pause: does the resumed audio carry on from where it stopped?"""
        gone = self._gone
        assert gone is not None
        ready = min(self._feed.ready_frame, self._now_u())
        loud = self._first_sound_u(gone.at_u, ready)
        if loud is None or (ready - loud) * self._fs < self._lp.resume_check_s:
            return False
        paused_at = gone.place.ref_frame(gone.at_u)
        best: tuple[float, Place] | None = None
        reach = self._lp.resume_reach_s / self._fs
        for delta in np.arange(-reach, reach + 1.0, 1.0):
            place = Place(episode_key=gone.place.episode_key,
                          offset_frames=paused_at + delta - gone.place.time_scale * loud,
                          time_scale=gone.place.time_scale, pitch_shift=gone.place.pitch_shift)
            ev = self._verifier.check(place, self._feed.peaks, loud, ready).evidence
            if best is None or ev > best[0]:
                best = (ev, place)
        clip_s = (ready - loud) * self._fs
        if best is None or best[0] < evidence_needed(clip_s, self._fp):
            return False
        follower = start_following(best[1], self._verifier, self._feed.peaks, u_lo=loud,
                                   u_hi=ready, frame_s=self._fs, params=self._fp)
        if follower.ended:
            return False
        self._start([follower], Status.MATCH, events)
        return True

    def _first_sound_u(self, u_lo: float, u_hi: float) -> float | None:
        """The first frame in ``[u_lo, u_hi)`` where the input is audible again."""
        step = max(1, round(0.05 / self._fs))
        audible = max(self._lp.quiet_rms, self._lp.quiet_ratio * self._level)
        for u in range(int(u_lo), int(u_hi) - step, step):
            s0 = u * self._hop
            if self._recent.rms(s0, s0 + step * self._hop) >= audible:
                return float(u)
        return None

    def _start(self, group: list[Follower], status: Status, events: list[LiveEvent]) -> None:
        now_u = self._now_u()
        # A place whose episode has ended by now cannot be followed: nothing is found.
        group = [f for f in group if not f.ended and now_u < f.episode_end_u]
        if not group:
            return
        lead = group[0]
        change = self._change(lead.place, lead.start_u)
        self._group = group
        self._status = status if len(group) > 1 else Status.MATCH
        self._gone = None
        self._level = self._recent.rms(int(lead.start_u * self._hop), self._recent.end)
        events.append(Found(at_s=now_u * self._fs, status=self._status,
                            match=self._candidate(lead, now_u),
                            candidates=self._candidates(now_u), change=change))
        self._next_update_u = now_u + self._update_u

    def _change(self, place: Place, start_u: float) -> Change:
        gone = self._gone
        if gone is None:
            return Change.FIRST
        if place.episode_key != gone.place.episode_key:
            return Change.EPISODE
        now_ref = place.ref_frame(start_u)
        heading = gone.place.ref_frame(start_u)  # had it played on
        paused = gone.place.ref_frame(gone.at_u)  # had it stopped
        near = self._lp.same_place_s / self._fs
        if min(abs(now_ref - heading), abs(now_ref - paused)) <= near:
            return Change.RESUME
        return Change.SEEK

    # -- answers ----------------------------------------------------------------------

    def _candidate(self, f: Follower, at_u: float) -> Candidate:
        place = f.place
        lo = max(f.start_u, f.cursor_u - self._lp.confidence_s / self._fs)
        evidence = f.obs.evidence(lo, f.cursor_u)
        span_s = max(1.0, (f.cursor_u - lo) * self._fs)
        episode = self._index.episode(place.episode_key)
        return Candidate(
            episode=episode,
            offset_s=min(max(0.0, place.ref_frame(at_u) * self._fs), episode.duration_s),
            score=round(evidence, 2),
            confidence=round(confidence(evidence, clip_s=span_s, params=self._fp), 4),
            speed=place.time_scale,
            pitch_semitones=place.pitch_shift,
        )

    def _candidates(self, at_u: float) -> tuple[Candidate, ...]:
        if self._status is not Status.AMBIGUOUS:
            return ()
        return tuple(self._candidate(f, at_u) for f in self._group)
