"""The answer model: what ``citywok identify --json`` prints is made from the marks on
result.py's dataclasses, rounded as the hand-written JSON was."""

from __future__ import annotations

import json

import numpy as np

from citywok.result import (
    Candidate,
    Disagreement,
    Episode,
    Evidence,
    IdentifyResult,
    SharedKind,
    SharedMaterial,
    Status,
    answer_json,
    shown_fields,
)

EPISODE = Episode("show-s01e02", "Show", 1, 2, "Two", 1320.5, "/lib/secret/2.mkv", "h2",
                  watch_url="https://tv.example/{season}/{episode}?t={t}")


def _candidate(offset_s: float = 83.45678, **more: object) -> Candidate:
    return Candidate(EPISODE, offset_s=offset_s, score=12.345678901, confidence=0.973149,
                     speed=1.150049, pitch_semitones=-0.12345, **more)  # type: ignore[arg-type]


def test_a_candidate_reads_as_it_always_did_plus_decided_by_and_front_end() -> None:
    assert _candidate().to_json() == {
        "episode_id": "show-s01e02", "show": "Show", "season": 1, "episode": 2,
        "title": "Two", "offset_s": 83.457, "score": 12.345678901, "confidence": 0.9731,
        "speed": 1.15, "pitch_semitones": -0.12, "decided_by": "sound", "front_end": "peaks"}


def test_what_is_not_marked_stays_inside() -> None:
    text = json.dumps(IdentifyResult(
        status=Status.MATCH, match=_candidate(), candidates=(_candidate(),),
        elapsed_ms=12.3456, clip_duration_s=5.0204, timings_ms={"decode_ms": 1.0},
    ).to_json(file="c.mp3"))
    for inside in ("/lib/secret", "h2", "tv.example", "1320.5", "decode_ms", "timings_ms"):
        assert inside not in text


def test_an_answer_has_its_fields_in_order_and_rounded() -> None:
    res = IdentifyResult(status=Status.AMBIGUOUS, match=_candidate(),
                         candidates=(_candidate(), _candidate(10.0)), elapsed_ms=12.3456,
                         clip_duration_s=5.0204,
                         shared=SharedMaterial(SharedKind.INTRO, 4))
    out = res.to_json(file="c.mp3")
    assert list(out) == ["file", "status", "match", "candidates", "elapsed_ms",
                         "clip_duration_s", "shared", "episodes_not_searched",
                         "disagreement"]
    assert out["status"] == "ambiguous" and out["elapsed_ms"] == 12.35
    assert out["clip_duration_s"] == 5.02 and out["shared"] == {"kind": "intro", "episodes": 4}
    assert [c["offset_s"] for c in out["candidates"]] == [83.457, 10.0]
    assert out["disagreement"] is None  # sound and picture did not name different places
    assert answer_json(res) == {k: v for k, v in out.items() if k != "file"}


def test_decided_by_names_the_evidence() -> None:
    assert _candidate(decided_by=Evidence.BOTH).to_json()["decided_by"] == "both"
    # the evidence fields close a candidate: which kind of evidence, then which front end
    assert [name for name, _ in shown_fields(Candidate)][-2:] == ["decided_by", "front_end"]
    learned = _candidate(front_end="learned").to_json()
    assert learned["front_end"] == "learned" and learned["decided_by"] == "sound"


def _as_hand_written(c: Candidate) -> dict[str, object]:
    """``Candidate.to_json`` as it was written by hand before the answer model (9ada7f4)."""
    e = c.episode
    return {"show": e.show, "season": e.season, "episode": e.episode, "title": e.title,
            "episode_id": e.episode_id, "offset_s": round(c.offset_s, 3),
            "confidence": round(c.confidence, 4), "score": c.score,
            "speed": round(c.speed, 4), "pitch_semitones": round(c.pitch_semitones, 2)}


def test_every_value_is_byte_for_byte_what_the_hand_written_json_gave() -> None:
    rng = np.random.default_rng(16)
    for _ in range(2000):
        c = Candidate(EPISODE, offset_s=float(rng.uniform(0, 3000)),
                      score=float(rng.exponential(20)), confidence=float(rng.uniform()),
                      speed=float(rng.uniform(0.7, 1.4)),
                      pitch_semitones=float(rng.uniform(-3, 3)))
        old, new = _as_hand_written(c), c.to_json()
        assert {k: json.dumps(new[k]) for k in old} == {k: json.dumps(v) for k, v in old.items()}
        elapsed, clip = float(rng.uniform(0, 5000)), float(rng.uniform(1, 60))
        res = IdentifyResult(status=Status.MATCH, match=c, candidates=(c,),
                             elapsed_ms=elapsed, clip_duration_s=clip)
        out = json.dumps(res.to_json(file="x"))
        assert f'"elapsed_ms": {json.dumps(round(elapsed, 2))}' in out
        assert f'"clip_duration_s": {json.dumps(round(clip, 3))}' in out


def test_a_disagreement_names_both_places() -> None:
    sound = _candidate(10.0)
    picture = _candidate(20.0, decided_by=Evidence.PICTURE, front_end="frames")
    res = IdentifyResult(status=Status.AMBIGUOUS, match=picture, candidates=(picture, sound),
                         elapsed_ms=1.0, clip_duration_s=5.0,
                         disagreement=Disagreement(sound=sound, picture=picture))
    out = res.to_json()["disagreement"]
    assert list(out) == ["sound", "picture"]
    assert out["sound"]["offset_s"] == 10.0 and out["picture"]["decided_by"] == "picture"
