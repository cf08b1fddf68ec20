"""Timeline of a long input: every stretch of it, which episode it comes from and where.

A stage: pure (no printing, no environment), fed decoded chunks as they stream in (the
whole decoded input is never held: a minute of samples at most), yielding
:class:`~citywok.result.Progress` events and each :class:`Stretch` as soon as its
boundaries are final, and returning a frozen :class:`Timeline`.

"Stretch" is the timeline's word; "segment" is an index file's. (The JSON keeps
``segments``/``segment``: API and CLI field names clients read.)

How (see :mod:`citywok.long.follow`; every knob is a field of
:class:`~citywok.params.TimelineParams`): where nothing is known, windows of
``window_s`` seconds, ``stride_s`` apart, are identified (a cheap plain-warp probe
first). A window that matches starts a *follower* per place it fits (several for shared
material); the place's stretch is grown backwards to where its run of found peaks
starts, then followed forward one second at a time, checking predicted reference peaks,
until its alarm says it stopped. Where two stretches meet (a cut, a crossfade, a jump
within one episode, a change of speed), the boundary is the time that best splits the
two places' observations. A member of a shared-material group that stops fitting while
another goes on was shared material only: the stretch belongs to the one that goes on.
What no place explains is ``unknown``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from citywok.analysis.decode import SILENCE_PEAK, iter_decode
from citywok.errors import EmptyMediaError, SilentMediaError
from citywok.index import Index
from citywok.long.engine import PeakFeed, Verifier, confidence
from citywok.long.follow import Follower, RecentSamples, llr, meet, search, start_following
from citywok.params import MatchParams, TimelineParams
from citywok.result import Candidate, Progress


class StretchStatus(StrEnum):
    MATCH = "match"
    #: Several episodes fit the whole stretch (shared intro, outro, recurring cue).
    AMBIGUOUS = "ambiguous"
    #: Not in the library (or too weak to tell).
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class StretchMatch:
    """An episode a stretch comes from: ``candidate.offset_s`` is where the stretch
    starts in the episode, ``end_offset_s`` where it ends."""

    candidate: Candidate
    end_offset_s: float

    def to_json(self) -> dict[str, Any]:
        return {**self.candidate.to_json(), "end_offset_s": round(self.end_offset_s, 3)}


@dataclass(frozen=True)
class Stretch:
    """One stretch of the input, ``[start_s, end_s)`` in input seconds."""

    start_s: float
    end_s: float
    status: StretchStatus
    #: The episodes it fits, best first (one for ``match``, none for ``unknown``).
    matches: tuple[StretchMatch, ...] = ()

    @property
    def match(self) -> StretchMatch | None:
        return self.matches[0] if self.matches else None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_json(self) -> dict[str, Any]:
        return {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "status": self.status.value,
            "match": self.matches[0].to_json() if self.matches else None,
            "candidates": ([m.to_json() for m in self.matches]
                           if self.status is StretchStatus.AMBIGUOUS else []),
        }


@dataclass(frozen=True)
class Timeline:
    """Every stretch of the input, in order, covering it from 0 to ``duration_s``."""

    stretches: tuple[Stretch, ...]
    duration_s: float
    elapsed_ms: float
    #: Windows identified from scratch (the rest of the input was followed).
    searches: int = 0

    def to_json(self, *, file: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if file is not None:
            out["file"] = file
        out["duration_s"] = round(self.duration_s, 3)
        # "segments" is the API's and the CLI's JSON name for the stretches (kept: it is
        # what clients read).
        out["segments"] = [s.to_json() for s in self.stretches]
        out["elapsed_ms"] = round(self.elapsed_ms, 2)
        return out


TimelineEvent = Progress | Stretch


@dataclass
class _Track:
    """Places found together (one, or several for shared material) and their stretch."""

    members: list[Follower]
    start_u: float
    end_u: float = math.inf
    #: Found and expected peaks of earlier stretches merged into this one.
    prior_found: float = 0.0
    prior_expected: float = 0.0

    @property
    def ended(self) -> bool:
        return all(f.ended for f in self.members)

    def settle(self, together_s: float) -> None:
        """Once every member stopped: keep those that lasted (stopped within
        ``together_s`` of the last; see the module docstring)."""
        last = max(f.end_u for f in self.members)
        kept = [f for f in self.members if f.end_u >= last - together_s / f.frame_s]
        self.members = kept
        self.end_u = last

    @property
    def lead(self) -> Follower:
        return self.members[0]

    def same_line(self, other: _Track, at_u: float, tp: TimelineParams) -> bool:
        """Whether ``other`` carries on this track's place (same episodes, same line)."""
        mine = {f.place.episode_key: f.place for f in self.members}
        if len(mine) != len(other.members):
            return False
        tol = tp.same_line_s / self.lead.frame_s
        for f in other.members:
            p = mine.get(f.place.episode_key)
            if p is None or abs(p.ref_frame(at_u) - f.place.ref_frame(at_u)) > tol:
                return False
            if abs(p.time_scale / f.place.time_scale - 1.0) > tp.same_line_speed:
                return False
        return True


class _Builder:
    """The state of one timeline as the input streams through."""

    def __init__(self, index: Index, mp: MatchParams, tp: TimelineParams) -> None:
        self._index = index
        self._mp = mp
        self._tp = tp
        self._fp = tp.follow
        params = index.params
        self._fs = params.frame_s
        self._hop = params.hop_length
        self._rate = params.sample_rate_hz
        self._feed = PeakFeed(index, block_s=tp.block_s)
        self._verifier = Verifier(index, tp.follow)
        self._recent = RecentSamples(keep_samples=int(tp.keep_s * self._rate))
        self._window_u = tp.window_s / self._fs
        self._stride_u = tp.stride_s / self._fs
        self._step_u = tp.step_s / self._fs
        self._current: _Track | None = None
        #: The last track that ended; its end may still move to meet the next one.
        self._previous: _Track | None = None
        #: Input up to here is emitted as stretches.
        self._emitted_u = 0.0
        self._search_u = 0.0
        #: Where the window that found the current track started.
        self._found_at_u = 0.0
        self._final = False
        self.loudest = 0.0
        self.searches = 0

    # -- input ------------------------------------------------------------------------

    def feed(self, chunk: npt.NDArray[np.float32]) -> list[Stretch]:
        if len(chunk):
            self.loudest = max(self.loudest, float(np.max(np.abs(chunk))))
        self._recent.append(chunk)
        self._feed.feed(chunk)
        return self._advance()

    def finish(self) -> list[Stretch]:
        self._feed.finish()
        self._final = True
        out = self._advance()
        end_u = self._end_u()
        if self._current is not None:
            track = self._current
            self._current = None
            for f in track.members:
                f.stop(end_u)
            out += self._close(track)
        if self._previous is not None:
            out += self._seal(self._previous, next_start_u=end_u)
            self._previous = None
        if end_u - self._emitted_u > 1e-6:
            out.append(self._unknown(self._emitted_u, end_u))
            self._emitted_u = end_u
        return out

    @property
    def processed_s(self) -> float:
        return self._recent.end / self._rate

    def _end_u(self) -> float:
        return self._recent.end / self._hop

    # -- the loop ---------------------------------------------------------------------

    def _advance(self) -> list[Stretch]:
        out: list[Stretch] = []
        ready = self._feed.ready_frame
        end_u = self._end_u()
        limit = min(ready, end_u)
        # Peaks are looked at again only near where work is going on: walking a place
        # back, settling a boundary, testing a gap between two stretches of one line.
        front = self._search_u
        if self._current is not None:
            front = min(f.cursor_u for f in self._current.members)
        if self._previous is not None:
            front = min(front, self._previous.end_u)
        tp = self._tp
        self._feed.peaks.forget_before(front - (2 * tp.back_s + tp.merge_gap_max_s) / self._fs)
        while True:
            track = self._current
            if track is not None:
                if not self._follow(track, limit):
                    break
                self._current = None
                out += self._close(track)
                # Search on from its end; a stretch that ended before the window that
                # found it (it only reached into it) must not make that window repeat.
                self._search_u = (track.end_u if track.end_u > self._found_at_u
                                  else self._found_at_u + self._stride_u)
                continue
            s_u = self._search_u
            e_u = s_u + self._window_u
            if e_u > limit:
                if not self._final:
                    break
                e_u = end_u
                if (e_u - s_u) * self._fs < tp.min_stretch_s * 2:
                    break
            found = self._search(s_u, e_u, reach_u=self._reach(s_u))
            if found is None:
                self._search_u = s_u + self._stride_u
                continue
            self._found_at_u = s_u
            out += self._begin(found, s_u)
        return out

    def _reach(self, s_u: float) -> float:
        """How far back a place found in a window at ``s_u`` may reach."""
        lo = s_u - self._tp.back_s / self._fs
        if self._previous is not None:
            # Up to the previous stretch's start: if that one was carried on too far,
            # the cut between the two (below) takes back what is not its own.
            lo = max(lo, self._previous.start_u + self._tp.min_stretch_s / self._fs)
        lo = max(lo, self._emitted_u, self._recent.start / self._hop)
        return max(0.0, lo)

    def _follow(self, track: _Track, limit: float) -> bool:
        """Advance a track's followers up to ``limit``; True once all have stopped."""
        while not track.ended:
            cursor = min(f.cursor_u for f in track.members if not f.ended)
            if cursor >= limit:
                return False
            target = min(limit, cursor + self._step_u)
            for f in track.members:
                f.observe(self._feed.peaks, target)
        return True

    def _search(self, u_lo: float, u_hi: float, *, reach_u: float) -> _Track | None:
        u_lo = float(math.floor(u_lo))
        samples = self._recent.window(int(u_lo) * self._hop, int(u_hi) * self._hop)
        if len(samples) < self._tp.min_stretch_s * self._rate:
            return None
        self.searches += 1
        sighting = search(samples, self._index, self._mp, first_frame=u_lo,
                          params=self._fp, thorough=False)
        if sighting is None:
            return None
        members = [start_following(p, self._verifier, self._feed.peaks, u_lo=min(reach_u, u_lo),
                                   u_hi=u_hi, frame_s=self._fs, params=self._fp,
                                   window_lo=u_lo, confirm_s=self._tp.confirm_s)
                   for p in sighting.places]
        start = min(f.start_u for f in members)
        return _Track(members=members, start_u=start)

    def _begin(self, track: _Track, s_u: float) -> list[Stretch]:
        """A track was found in the window at ``s_u``: settle what came before it."""
        out: list[Stretch] = []
        prev = self._previous
        gap_lo = prev.end_u if prev is not None else self._emitted_u
        if (track.start_u - gap_lo) * self._fs >= self._tp.gap_search_s:
            # The window may have found the later of two stretches: look between.
            inner = self._search(gap_lo, track.start_u, reach_u=gap_lo)
            if inner is not None:
                self._follow(inner, track.start_u)
                for f in inner.members:
                    f.stop(track.start_u)
                out += self._close(inner)
                prev = self._previous
        if prev is not None:
            if self._continues(prev, track):
                self._carry_on(prev, track)
                self._previous = None
            else:
                self._bounds(prev, track)
                out += self._seal(prev, next_start_u=track.start_u)
                self._previous = None
        self._current = track
        self._search_u = max(s_u, track.start_u)
        return out

    def _continues(self, prev: _Track, track: _Track) -> bool:
        """Whether ``track`` is ``prev`` carrying on (the same line after a gap)."""
        tp = self._tp
        if not prev.same_line(track, track.start_u, tp):
            return False
        gap_s = (track.start_u - prev.end_u) * self._fs
        if gap_s <= tp.merge_gap_s:
            return True
        if gap_s > tp.merge_gap_max_s:
            return False
        # A reaction video talks over its episode for a while: the line is the same on
        # both sides, and one hypothesis tested on the gap needs little evidence.
        gap = self._verifier.check(prev.lead.place, self._feed.peaks, prev.end_u,
                                   track.start_u)
        return gap.evidence >= tp.gap_evidence

    def _carry_on(self, prev: _Track, track: _Track) -> None:
        """``track`` is ``prev`` carrying on: it starts where ``prev`` did, with its
        evidence."""
        track.start_u = prev.start_u
        track.prior_found = prev.prior_found + self._found(prev)
        track.prior_expected = prev.prior_expected + self._expected(prev)

    def _close(self, track: _Track) -> list[Stretch]:
        """A track's followers all stopped: it becomes the previous track."""
        track.settle(self._tp.together_s)
        out: list[Stretch] = []
        if (track.end_u - track.start_u) * self._fs < self._tp.min_stretch_s:
            return out  # too short to trust: left to its neighbours or ``unknown``
        prev = self._previous
        if prev is not None:
            if self._continues(prev, track):
                self._carry_on(prev, track)
            else:
                self._bounds(prev, track)
                out += self._seal(prev, next_start_u=track.start_u)
        self._previous = track
        return out

    def _found(self, track: _Track) -> float:
        obs = track.lead.obs
        return obs.totals(track.start_u, track.end_u)[1]

    def _expected(self, track: _Track) -> float:
        obs = track.lead.obs
        return obs.totals(track.start_u, track.end_u)[2]

    def _bounds(self, a: _Track, b: _Track) -> None:
        """Settle where ``a`` ends and ``b`` starts, from both places' peaks around them
        (see :func:`citywok.long.follow.meet`)."""
        fs = self._fs
        tp = self._tp
        chance_range = self._fp.chance_range
        lo = max(a.start_u, min(a.end_u, b.start_u) - tp.join_s / fs)
        hi = max(a.end_u, b.start_u) + tp.join_s / fs
        fa, fb = a.lead, b.lead
        ca = self._verifier.check(fa.place, self._feed.peaks, lo, hi)
        cb = self._verifier.check(fb.place, self._feed.peaks, lo, hi)
        la = llr(ca.u, ca.found, ca.chance, fa.obs.find_rate(a.start_u, a.end_u),
                 chance_range=chance_range)
        lb = llr(cb.u, cb.found, cb.chance, fb.obs.find_rate(b.start_u, fb.cursor_u),
                 chance_range=chance_range)
        end, start = meet(ca.u, la, cb.u, lb, lo=lo, hi=hi, min_gap=tp.min_unknown_s / fs)
        a.end_u, b.start_u = end, start

    # -- output -----------------------------------------------------------------------

    def _seal(self, track: _Track, *, next_start_u: float) -> list[Stretch]:
        """Emit ``track`` (and the unknown stretch before it, if any)."""
        out: list[Stretch] = []
        min_s = self._tp.min_stretch_s
        start, end = track.start_u, min(track.end_u, next_start_u)
        if (start - self._emitted_u) * self._fs < min_s / 2:
            start = self._emitted_u  # a sliver before it is its own
        else:
            out.append(self._unknown(self._emitted_u, start))
        if (next_start_u - end) * self._fs < min_s / 2:
            end = next_start_u
        if (end - start) * self._fs < min_s:
            return []  # squeezed by its neighbours: left to the unknown stretch around it
        out.append(self._stretch(track, start, end))
        self._emitted_u = end
        return out

    def _unknown(self, start_u: float, end_u: float) -> Stretch:
        return Stretch(start_s=start_u * self._fs, end_s=end_u * self._fs,
                       status=StretchStatus.UNKNOWN)

    def _stretch(self, track: _Track, start_u: float, end_u: float) -> Stretch:
        duration_s = (end_u - start_u) * self._fs
        matches = []
        n = len(track.members)
        for f in track.members:
            obs = f.obs
            _, found, expected = obs.totals(start_u, end_u)
            found += track.prior_found
            expected += track.prior_expected
            evidence = (found - expected) / math.sqrt(expected + 1.0)
            conf = confidence(evidence, clip_s=max(1.0, duration_s), params=self._fp)
            place = f.place
            matches.append(StretchMatch(
                candidate=Candidate(
                    episode=self._index.episode(place.episode_key),
                    offset_s=max(0.0, place.ref_frame(start_u) * self._fs),
                    score=round(evidence, 2),
                    confidence=round(conf / n, 4),
                    speed=place.time_scale,
                    pitch_semitones=place.pitch_shift,
                ),
                end_offset_s=max(0.0, place.ref_frame(end_u) * self._fs),
            ))
        matches.sort(key=lambda m: -m.candidate.score)
        status = StretchStatus.MATCH if n == 1 else StretchStatus.AMBIGUOUS
        return Stretch(start_s=start_u * self._fs, end_s=end_u * self._fs, status=status,
                       matches=tuple(matches))


def timeline_steps(chunks: Iterable[npt.NDArray[np.float32]], index: Index, *,
                   match_params: MatchParams | None = None,
                   timeline_params: TimelineParams | None = None,
                   total_s: float | None = None, name: str = "input",
                   ) -> Generator[TimelineEvent, None, Timeline]:
    """The timeline of decoded audio fed as ``chunks`` (mono float32 at the index's
    sample rate, any sizes).

    Yields a ``Progress(stage="timeline", done=seconds processed, total=total_s)`` per
    chunk and every :class:`Stretch` as soon as it is final (in order, covering the input
    without gaps). ``timeline_params`` (:class:`~citywok.params.TimelineParams`) sets the
    search windows where nothing is known, and every other knob. Raises
    :class:`~citywok.errors.EmptyMediaError` for no audio and
    :class:`~citywok.errors.SilentMediaError` for silence only.
    """
    started = time.perf_counter()
    builder = _Builder(index, match_params or MatchParams(),
                       timeline_params or TimelineParams())
    stretches: list[Stretch] = []
    for chunk in chunks:
        for seg in builder.feed(np.asarray(chunk, dtype=np.float32)):
            stretches.append(seg)
            yield seg
        yield Progress(stage="timeline", done=builder.processed_s, total=total_s, item=name)
    for seg in builder.finish():
        stretches.append(seg)
        yield seg
    duration_s = builder.processed_s
    if duration_s == 0:
        raise EmptyMediaError(f"{name}: contains no audio")
    if builder.loudest < SILENCE_PEAK:
        raise SilentMediaError(f"{name}: the audio is silent")
    yield Progress(stage="done", done=duration_s, total=duration_s, item=name)
    return Timeline(stretches=tuple(stretches), duration_s=duration_s,
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                    searches=builder.searches)


def timeline_file_steps(path: str | Path, index: Index, *,
                        match_params: MatchParams | None = None,
                        timeline_params: TimelineParams | None = None,
                        max_duration_s: float | None = None, timeout_s: float | None = None,
                        total_s: float | None = None,
                        ) -> Generator[TimelineEvent, None, Timeline]:
    """Decode a (long) file in a stream and build its timeline (see
    :func:`timeline_steps`); ``total_s``, when the caller knows the duration, makes the
    progress events say how far along it is."""
    chunks = iter_decode(path, sample_rate_hz=index.params.sample_rate_hz, chunk_s=4.0,
                         max_duration_s=max_duration_s, timeout_s=timeout_s)
    steps = timeline_steps(chunks, index, match_params=match_params,
                           timeline_params=timeline_params, total_s=total_s,
                           name=Path(path).name)
    if index.pictures is None or not index.pictures.may_have_pictures(path) or \
            not index.has_pictures():
        return (yield from steps)
    # A video, and an index with pictures: what the sound leaves unknown is looked at.
    from citywok.long.pictures import look_at_unknown

    seen: list[Stretch] = []
    while True:
        try:
            event = next(steps)
        except StopIteration as stop:
            done: Timeline = stop.value
            break
        if isinstance(event, Stretch):
            for part in look_at_unknown(event, Path(path), index):
                seen.append(part)
                yield part
        else:
            yield event
    return replace(done, stretches=tuple(seen))


def timeline_file(path: str | Path, index: Index, **kwargs: Any) -> Timeline:
    """:func:`timeline_file_steps` run to the end."""
    return run_to_end(timeline_file_steps(path, index, **kwargs))


def run_to_end(steps: Generator[TimelineEvent, None, Timeline]) -> Timeline:
    """The result of a timeline generator, its events ignored."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            result: Timeline = stop.value
            return result
