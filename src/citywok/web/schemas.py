"""Shapes of request and response bodies, for validation and the OpenAPI document.

The answer's models are not written here field by field: :func:`model_of` derives them
from the dataclasses in ``citywok.result`` (the one answer model), each with one typed
extension of what the web adds (scene end, links).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from types import UnionType
from typing import Any, Literal, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from citywok.result import (
    Candidate,
    Disagreement,
    Episode,
    IdentifyResult,
    SharedMaterial,
    shown_fields,
)

M = TypeVar("M", bound=BaseModel)


class AnswerModel(BaseModel):
    """The base of every model derived from an answer dataclass (see :func:`model_of`)."""


def _wire_type(hint: Any, models: Mapping[type, type[BaseModel]]) -> Any:
    """``hint`` with every answer dataclass in it replaced by its model (tuples as lists)."""
    if isinstance(hint, type) and hint in models:
        return models[hint]
    if isinstance(hint, type) and is_dataclass(hint):
        raise TypeError(f"no answer model given for {hint.__name__}")
    args = get_args(hint)
    if get_origin(hint) in (Union, UnionType):
        return Union[tuple(_wire_type(a, models) for a in args)]  # noqa: UP007
    if get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return list[_wire_type(args[0], models)]  # type: ignore[misc]
    return hint


def _wire_fields(cls: type, models: Mapping[type, type[BaseModel]]) -> dict[str, Any]:
    hints = get_type_hints(cls)
    defaults = {f.name: f.default for f in fields(cls)}
    out: dict[str, Any] = {}
    for name, how in shown_fields(cls):
        if how.inline:
            out.update(_wire_fields(hints[name], models))
            continue
        default = defaults[name]
        info = (Field(description=how.doc) if default is MISSING
                else Field(default, description=how.doc))
        out[name] = (_wire_type(hints[name], models), info)
    return out


def model_of(cls: type, *, name: str, extend: type[M],
             models: Mapping[type, type[BaseModel]] | None = None) -> type[M]:
    """The pydantic model of answer dataclass ``cls`` (``citywok.result``): its shown
    fields with their types and descriptions (a field with a default in the dataclass has
    it here, so an answer stored before the field existed still reads), then the fields
    of ``extend``, the typed extension a shell adds (``AnswerModel``: none). ``models``
    gives the model of each answer dataclass nested in ``cls``. Written once, not field by
    field: a field added to the dataclass is in the API, its OpenAPI document and the
    page's generated types."""
    own = _wire_fields(cls, models or {})
    if extend is AnswerModel:
        return cast("type[M]", create_model(name, __base__=AnswerModel, __module__=__name__,
                                            __doc__=cls.__doc__, **own))
    # The dataclass's fields first, then the extension's (pydantic orders fields by the
    # bases from the last): the JSON reads as the CLI's, with the links after.
    fields_of = create_model(f"{name}Fields", __base__=AnswerModel, __module__=__name__,
                             **own)
    bases: tuple[type[BaseModel], ...] = (extend, fields_of)
    return cast("type[M]", create_model(name, __base__=bases, __module__=__name__,
                                        __doc__=extend.__doc__))


class CandidateLinks(AnswerModel):
    """A place in an episode where the clip fits, with what a person can act on."""

    end_s: float | None = Field(None, description="Where in the episode the clip's scene "
                                "ends, in seconds (`offset_s` is where it starts).")
    episode_duration_s: float | None = Field(None, description="How long the episode is.")
    watch_url: str | None = Field(None, description="Where to watch the episode from this "
                                  "moment (the show's link from the library), or null.")
    preview_image: str | None = Field(None, description="A still of the moment (JPEG); add "
                                      "`?size=small` (320 px) or `medium` (640 px, default).")
    preview_video: str | None = Field(None, description="A few seconds of the scene (MP4, "
                                      "muted; `?sound=true` keeps the sound; `?size=`).")


class AnswerLinks(AnswerModel):
    """The shape of ``citywok identify --json``, with links to act on and to share."""

    file: str | None = Field(None, description="The uploaded file's name, or the link.")
    share_url: str | None = Field(None, description="A short link to this answer (`/r/<id>`), "
                                  "a page that previews in chat apps; null when sharing is off.")


#: How shared material is described in an answer.
SharedOut = model_of(SharedMaterial, name="SharedOut", extend=AnswerModel)
#: A candidate as the web service gives it: the answer's candidate and its links.
CandidateOut = model_of(Candidate, name="CandidateOut", extend=CandidateLinks)
#: Where sound and picture name different places (issue 17): each one's candidate.
DisagreementOut = model_of(Disagreement, name="DisagreementOut", extend=AnswerModel,
                           models={Candidate: CandidateOut})
#: The answer as the web service gives it (``response_model`` of identify and shares).
IdentifyOut = model_of(IdentifyResult, name="IdentifyOut", extend=AnswerLinks,
                       models={Candidate: CandidateOut, SharedMaterial: SharedOut,
                               Disagreement: DisagreementOut})


class MeOut(BaseModel):
    """Who the caller is to the rate limiter, and what is left."""

    tier: Literal["anonymous", "key"]
    key_id: str | None = Field(description="The API key's id (keyed tier).")
    key_name: str | None
    limit: int | None = Field(description="Identifications allowed per window (null: no "
                              "limit, as on a server that listens on loopback only).")
    remaining: int | None = Field(description="Identifications left in the current window "
                                  "(null: no limit).")
    window_s: int
    reset_s: float = Field(description="Seconds until the window has room again.")


class LinkIn(BaseModel):
    """The media behind a link (JSON body)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, description="A TikTok, YouTube, Instagram, X or Reddit "
                     "link, or a direct link to a media file on an allowed host.")
    stream: bool = Field(False, description="Answer with Server-Sent Events.")


class IdentifyLinkIn(LinkIn):
    """Identify the media behind a link (JSON body)."""


class EpisodeOut(BaseModel):
    episode_id: str
    show: str
    season: int | None
    episode: int | None
    title: str | None
    duration_s: float

    @classmethod
    def of(cls, e: Episode) -> EpisodeOut:
        return cls(episode_id=e.episode_id, show=e.show, season=e.season, episode=e.episode,
                   title=e.title, duration_s=e.duration_s)


class EpisodePage(BaseModel):
    items: list[EpisodeOut]
    total: int
    offset: int
    limit: int


class StatsOut(BaseModel):
    episodes: int
    shows: int
    hours: float
    index_bytes: int
    segments: int
    hashes: int
    format_version: int
    damaged: list[str] = Field(default_factory=list, description="Segments refused as "
                               "damaged (file: why); their episodes are not answered.")


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready", "degraded"] = Field(description="`degraded`: some segments "
                                                 "were refused as damaged; the others answer.")
    episodes: int
    damaged: list[str] = Field(default_factory=list, description="Segments refused as "
                               "damaged (file: why).")


class IndexPathsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(min_length=1, max_length=100,
                             description="Files or folders on the server, inside one of the "
                             "configured library roots.")


class IndexSummaryOut(BaseModel):
    added: list[str]
    updated: list[str]
    skipped: list[str]
    failed: list[dict[str, str]]
    left_out: list[dict[str, str]] = Field(
        default_factory=list, description="Files found that are not media, each with why.")
    audio_s: float
    elapsed_s: float
    episodes: int


class RemovedOut(BaseModel):
    removed: EpisodeOut
