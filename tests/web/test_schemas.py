"""The web's answer models are derived from result.py's dataclasses: every shown field is
there, with its description, and only the web's typed extension is added."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from citywok.result import Candidate, Episode, IdentifyResult, SharedMaterial, shown, shown_fields
from citywok.web.app import create_app
from citywok.web.core.config import Settings
from citywok.web.schemas import (
    AnswerLinks,
    AnswerModel,
    CandidateLinks,
    CandidateOut,
    IdentifyOut,
    SharedOut,
    model_of,
)


def _names(cls: type) -> list[str]:
    out: list[str] = []
    for name, how in shown_fields(cls):
        out += _names(Episode) if how.inline else [name]
    return out


def test_models_have_the_dataclass_fields_then_the_extension() -> None:
    assert list(CandidateOut.model_fields) == _names(Candidate) + list(CandidateLinks.model_fields)
    assert list(IdentifyOut.model_fields) == (_names(IdentifyResult)
                                              + list(AnswerLinks.model_fields))
    assert list(SharedOut.model_fields) == _names(SharedMaterial)


def test_the_openapi_document_describes_every_answer_field() -> None:
    schemas = create_app(Settings()).openapi()["components"]["schemas"]
    candidate = schemas["CandidateOut"]
    assert candidate["properties"]["offset_s"]["description"].startswith("Where in the episode")
    assert schemas["Evidence"]["enum"] == ["sound", "picture", "both"]
    # Fields without a default are required, so the page's generated types need them.
    assert {"episode_id", "offset_s", "confidence", "score"} <= set(candidate["required"])
    assert "decided_by" not in candidate["required"]
    assert {"status", "match", "candidates", "clip_duration_s"} <= set(
        schemas["IdentifyOut"]["required"])


def test_an_answer_stored_before_decided_by_still_reads() -> None:
    old: dict[str, Any] = {
        "show": "Show", "season": 1, "episode": 2, "title": None, "episode_id": "s-1-2",
        "offset_s": 1.5, "confidence": 0.9, "score": 8.0, "speed": 1.0,
        "pitch_semitones": 0.0, "end_s": 6.5, "episode_duration_s": 600.0}
    answer = IdentifyOut.model_validate({"status": "match", "match": old, "candidates": [old],
                                         "elapsed_ms": 3.0, "clip_duration_s": 5.0})
    assert answer.model_dump(mode="json")["match"]["decided_by"] == "sound"


def test_a_new_dataclass_field_is_a_new_model_field() -> None:
    @dataclass(frozen=True)
    class Thing:
        """A thing."""

        size_m: float = field(metadata=shown("How big.", digits=1))
        secret: str = "kept inside"
        colour: str | None = field(default=None, metadata=shown("Its colour."))

    model = model_of(Thing, name="ThingOut", extend=AnswerModel)
    assert list(model.model_fields) == ["size_m", "colour"]
    assert model.model_fields["colour"].description == "Its colour."
    assert model.model_json_schema()["required"] == ["size_m"]
