"""The decision: ranked places → ``match`` / ``ambiguous`` / ``no_match``, the candidates
to show with a calibrated confidence, and the shared material an answer lies in."""

from __future__ import annotations

from collections.abc import Sequence

from citywok.index import Index
from citywok.match.places import Hit
from citywok.params import MatchParams
from citywok.result import Candidate, SharedMaterial, SharedStretch, Status


def decide(hits: Sequence[Hit], index: Index, match_params: MatchParams, *,
           clip_s: float) -> tuple[Status, tuple[Candidate, ...]]:
    """Turn ranked hits into a status and the candidates to show.

    A place answers when its evidence reaches ``mp.min_score``; the best place of every
    other episode that reaches it too and scores at least ``ambiguous_ratio`` of the best
    makes the answer ambiguous, and all such episodes are listed. When the best place
    lies wholly in material the catalogue knows several episodes share, every copy that
    reaches the threshold is listed, however much better the clip's own copy fits.
    """
    mp = match_params
    needed = mp.min_score
    good = [h for h in hits if h.evidence >= needed and h.episode_key in index.episodes]
    if not good:
        return Status.NO_MATCH, ()
    best_per_episode: dict[int, Hit] = {}
    for h in sorted(good, key=lambda h: -h.evidence):
        best_per_episode.setdefault(h.episode_key, h)
    ranked = list(best_per_episode.values())
    top = ranked[0].evidence
    close = [h for h in ranked if h.evidence >= mp.ambiguous_ratio * top]
    stretch = _shared_stretch(ranked[0], index, clip_s)
    if stretch is not None:
        sharing = {c.episode_key for c in index.copies(stretch)}
        close += [h for h in ranked if h.episode_key in sharing and h not in close]
    status = Status.AMBIGUOUS if len(close) > 1 else Status.MATCH
    shown = close if status is Status.AMBIGUOUS else ranked[: mp.max_candidates]
    candidates = []
    for h in shown:
        conf = mp.confidence(h.evidence)
        if status is Status.MATCH and h is ranked[0] and len(ranked) > 1:
            # A runner-up elsewhere lowers how sure we are of the winner.
            conf *= 1.0 - mp.runner_up_discount * ranked[1].evidence / top
        elif status is Status.AMBIGUOUS:
            conf /= len(close)
        candidates.append(Candidate(
            episode=index.episode(h.episode_key),
            offset_s=max(0.0, h.offset_frames) * index.params.frame_s,
            score=round(h.evidence, 2),
            confidence=round(float(conf), 4),
            speed=h.time_scale,
            pitch_semitones=h.pitch_shift,
            front_end=h.front_end,
        ))
    return status, tuple(candidates)


def _shared_stretch(hit: Hit, index: Index, clip_s: float) -> SharedStretch | None:
    start_s = hit.offset_frames * index.params.frame_s
    return index.shared_holding(hit.episode_key, start_s, start_s + clip_s * hit.time_scale)


def shared_material(index: Index, candidates: Sequence[Candidate], *, clip_s: float
                    ) -> SharedMaterial | None:
    """What the catalogue says the best candidate's place is shared as, if anything."""
    if not candidates:
        return None
    best = candidates[0]
    key = next((k for k, e in index.episodes.items()
                if e.episode_id == best.episode.episode_id), None)
    if key is None:
        return None
    row = index.shared_holding(key, best.offset_s, best.offset_s + clip_s * best.speed)
    return SharedMaterial(kind=row.kind, episodes=row.episodes) if row else None
