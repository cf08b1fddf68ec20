"""The pictures' say in a timeline: stretches the sound leaves ``unknown`` (a song over
the scene, a long silence) are looked at (issue 17).

A stage over what the sound's timeline yields: every ``unknown`` stretch of a video
input, at least ``window_s`` long, is cut into windows of ``window_s`` seconds; each
window's frames are searched (:mod:`citywok.vision.search`); windows that name the same
episode at a consistent time merge into one ``match`` stretch decided by the picture,
and what the pictures do not name stays ``unknown``. Stretches keep their order and
cover the input without gaps; the sound's own stretches pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from citywok.index import Index
from citywok.long.timeline import Stretch, StretchMatch, StretchStatus
from citywok.match.fuse import picture_answers
from citywok.params import FuseParams, MatchParams
from citywok.result import Candidate, Evidence, Status
from citywok.vision.errors import PictureError
from citywok.vision.frames import sample_video
from citywok.vision.params import SearchParams
from citywok.vision.search import threshold

#: A picture window's length, and the shortest unknown stretch worth looking at.
WINDOW_S = 5.0


def _window_places(path: Path, index: Index, start_s: float, end_s: float,
                   sp: SearchParams) -> Iterator[tuple[float, float, Candidate | None]]:
    """(start, end, what the pictures name or None) for each window of the stretch."""
    searcher = index.picture_searcher()
    fam = index.pictures
    assert searcher is not None and fam is not None
    t = start_s
    while end_s - t >= WINDOW_S * 0.6:
        stop = min(end_s, t + WINDOW_S)
        try:
            frames = sample_video(path, rate_hz=sp.sample_rate_hz, max_side_px=sp.max_side_px,
                                  start_s=t, max_duration_s=stop - t)
        except PictureError:
            yield t, end_s, None
            return
        answer = fam.look(searcher, frames, sp)
        cand = None
        if answer.status is Status.MATCH and answer.place is not None and \
                picture_answers(answer, answer.place, sp=sp, fp=FuseParams()) and \
                int(answer.place.episode) in index.episodes:
            p = answer.place
            score = MatchParams().min_score * p.score / threshold(p, still=False, params=sp)
            cand = Candidate(episode=index.episode(int(p.episode)), offset_s=max(0.0, p.start_s),
                             score=round(score, 2), confidence=FuseParams().picture_confidence[0],
                             speed=p.speed, pitch_semitones=0.0, decided_by=Evidence.PICTURE,
                             front_end="frames")
        yield t, stop, cand
        t = stop
    if t < end_s:
        yield t, end_s, None


def _same_run(a: Candidate, a_start: float, b: Candidate, b_start: float) -> bool:
    """Whether window b continues window a's place (same episode, time consistent)."""
    expected = a.offset_s + (b_start - a_start) * a.speed
    return a.episode.episode_id == b.episode.episode_id and abs(b.offset_s - expected) <= 2.0


def look_at_unknown(stretch: Stretch, path: Path, index: Index, *,
                    sp: SearchParams = SearchParams()) -> list[Stretch]:
    """``stretch`` as the pictures see it: itself, or the stretches its windows make."""
    if (stretch.status is not StretchStatus.UNKNOWN or stretch.duration_s < WINDOW_S
            or not index.has_pictures()):
        return [stretch]
    out: list[Stretch] = []
    run: tuple[float, float, Candidate] | None = None  # start, end, first window's place

    def close() -> None:
        nonlocal run
        if run is not None:
            s, e, c = run
            out.append(Stretch(s, e, StretchStatus.MATCH, (StretchMatch(
                c, end_offset_s=c.offset_s + (e - s) * c.speed),)))
            run = None

    for s, e, cand in _window_places(path, index, stretch.start_s, stretch.end_s, sp):
        if cand is not None and run is not None and _same_run(run[2], run[0], cand, s):
            run = (run[0], e, run[2])
            continue
        close()
        if cand is not None:
            run = (s, e, cand)
        elif out and out[-1].status is StretchStatus.UNKNOWN:
            out[-1] = Stretch(out[-1].start_s, e, StretchStatus.UNKNOWN)
        else:
            out.append(Stretch(s, e, StretchStatus.UNKNOWN))
    close()
    return out or [stretch]
