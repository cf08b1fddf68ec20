"""Fusion: the sound's decision and the pictures' places of one clip, weighed together.

The sound's answer (:func:`citywok.match.decide.decide`) and the pictures' answer
(:mod:`citywok.vision.search`) are each complete on their own; this stage says which
decided (``Candidate.decided_by``) and never picks quietly between them:

* no pictures (a sound file, a blank video track): the sound's answer, unchanged;
* the pictures name the place the sound names: ``both``; an ambiguous sound answer
  (shared material) whose episodes the pictures tell apart becomes a match;
* only one answers: that one decides (``sound`` or ``picture``); where neither reaches
  its threshold, a sound place and a picture place that agree may still add up
  (``FuseParams.partial_share``, ``fused_min``): ``both``;
* both answer and name different places (a song from another episode laid over the
  pictures): ``ambiguous``, with both places and a :class:`~citywok.result.Disagreement`.

A picture place's score is put on the sound's scale (``MatchParams.min_score`` at the
pictures' own threshold), so a candidate's ``score`` reads the same whichever decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from citywok.index import Index
from citywok.match.places import Hit
from citywok.params import FuseParams, MatchParams
from citywok.result import Candidate, Disagreement, Evidence, Status
from citywok.vision.params import SearchParams
from citywok.vision.search import FULL_FRAME_ASPECT, PictureAnswer, Place, threshold


@dataclass(frozen=True)
class Fused:
    status: Status
    candidates: tuple[Candidate, ...]
    disagreement: Disagreement | None = None


def picture_strength(place: Place, answer: PictureAnswer, *, sp: SearchParams) -> float:
    """A picture place's score as a share of its own threshold (1: just answers)."""
    return place.score / threshold(place, still=answer.still, params=sp)


def picture_answers(answer: PictureAnswer, place: Place | None, *, sp: SearchParams,
                    fp: FuseParams) -> bool:
    """Whether the pictures answer on their own: above their threshold, and, seen
    through a narrow box (a crop), well above it (``FuseParams.narrow_alone_share``)."""
    if answer.status is Status.NO_MATCH or place is None:
        return False
    if answer.still or place.box.aspect >= FULL_FRAME_ASPECT:
        return True
    return picture_strength(place, answer, sp=sp) >= fp.narrow_alone_share


def picture_candidate(place: Place, answer: PictureAnswer, index: Index, *, mp: MatchParams,
                      sp: SearchParams, fp: FuseParams) -> Candidate:
    """The candidate a picture place makes on its own."""
    strength = picture_strength(place, answer, sp=sp)
    lo, hi = fp.picture_confidence
    conf = float(np.interp(strength, [1.0, 2.0], [lo, hi]))
    return Candidate(
        episode=index.episode(int(place.episode)), offset_s=max(0.0, place.start_s),
        score=round(mp.min_score * strength, 2), confidence=round(conf, 4),
        speed=place.speed, pitch_semitones=0.0, decided_by=Evidence.PICTURE,
        front_end="frames")


def _agree(episode_id: str, offset_s: float, place: Place, index: Index,
           fp: FuseParams) -> bool:
    return (index.episode(int(place.episode)).episode_id == episode_id
            and abs(offset_s - place.start_s) <= fp.agree_s)


def fuse(sound: tuple[Status, tuple[Candidate, ...]], hits: Sequence[Hit],
         picture: PictureAnswer | None, index: Index, *, mp: MatchParams,
         sp: SearchParams, fp: FuseParams) -> Fused:
    """One answer from the sound's decision (and its verified ``hits``) and the
    pictures' answer (None: the clip has no pictures); see the module doc."""
    status, cands = sound
    if picture is None:
        return Fused(status, cands)
    places = [p for p in picture.candidates if int(p.episode) in index.episodes]
    best_place = picture.place if picture.place in places else None
    pic_answers = picture_answers(picture, best_place, sp=sp, fp=fp)

    if status is not Status.NO_MATCH:
        if picture.status is Status.NO_MATCH or best_place is None:
            return Fused(status, cands)
        agreeing = [c for c in cands
                    if _agree(c.episode.episode_id, c.offset_s, best_place, index, fp)]
        if agreeing and picture.status is Status.MATCH:
            # The pictures name one of the sound's places: it is the answer.
            pc = picture_candidate(best_place, picture, index, mp=mp, sp=sp, fp=fp)
            top = replace(agreeing[0], decided_by=Evidence.BOTH,
                          confidence=max(agreeing[0].confidence, pc.confidence))
            if status is Status.AMBIGUOUS:
                return Fused(Status.MATCH, (top,))
            return Fused(status, (top, *[c for c in cands if c is not agreeing[0]]))
        if agreeing or picture.status is Status.AMBIGUOUS or not pic_answers:
            # A recurring picture (a title card) that the sound's place holds too, one
            # the sound cannot be checked against, or a crop's pictures too weak to
            # stand alone: the sound decides.
            return Fused(status, cands)
        pc = picture_candidate(best_place, picture, index, mp=mp, sp=sp, fp=fp)
        sc = cands[0]
        first, second = (pc, sc) if pc.score > sc.score else (sc, pc)
        return Fused(Status.AMBIGUOUS, (first, second), Disagreement(sound=sc, picture=pc))

    frame_s = index.params.frame_s
    if pic_answers and best_place is not None:
        shown = [best_place] if picture.status is Status.MATCH else [
            p for p in places if p.score >= sp.ambiguous_ratio * best_place.score]
        out = [picture_candidate(p, picture, index, mp=mp, sp=sp, fp=fp) for p in shown]
        if picture.status is Status.MATCH:
            # A sound place below the threshold at the same place backs it up.
            for h in hits:
                if h.episode_key in index.episodes and _agree(
                        index.episode(h.episode_key).episode_id, h.offset_frames * frame_s,
                        best_place, index, fp) and h.evidence >= fp.partial_share * mp.min_score:
                    out[0] = replace(out[0], decided_by=Evidence.BOTH)
                    break
        return Fused(picture.status, tuple(out))

    # Neither answers alone: a sound place and a picture place that agree may add up.
    best: tuple[float, Hit, Place] | None = None
    for p in places:
        strength = picture_strength(p, picture, sp=sp)
        if strength < fp.partial_share:
            continue
        for h in hits:
            if (h.episode_key not in index.episodes
                    or h.evidence < fp.partial_share * mp.min_score
                    or not _agree(index.episode(h.episode_key).episode_id,
                                  h.offset_frames * frame_s, p, index, fp)):
                continue
            total = h.evidence + mp.min_score * strength
            if total >= fp.fused_min * mp.min_score and (best is None or total > best[0]):
                best = (total, h, p)
    if best is None:
        return Fused(Status.NO_MATCH, ())
    total, h, p = best
    lo, _ = fp.picture_confidence
    return Fused(Status.MATCH, (Candidate(
        episode=index.episode(h.episode_key), offset_s=max(0.0, h.offset_frames * frame_s),
        score=round(total, 2), confidence=round(max(lo, mp.confidence(total)), 4),
        speed=h.time_scale, pitch_semitones=h.pitch_shift, decided_by=Evidence.BOTH,
        front_end=h.front_end),))
