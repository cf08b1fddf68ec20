"""Shapes of request and response bodies, for validation and the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from citywok.result import Episode


class CandidateOut(BaseModel):
    show: str
    season: int | None
    episode: int | None
    title: str | None
    episode_id: str
    offset_s: float = Field(description="Where in the episode the clip starts, in seconds.")
    confidence: float
    score: float
    speed: float
    pitch_semitones: float
    end_s: float | None = Field(None, description="Where in the episode the clip's scene "
                                "ends, in seconds (`offset_s` is where it starts).")
    episode_duration_s: float | None = Field(None, description="How long the episode is.")
    watch_url: str | None = Field(None, description="Where to watch the episode from this "
                                  "moment (the show's link from the library), or null.")
    preview_image: str | None = Field(None, description="A still of the moment (JPEG); add "
                                      "`?size=small` (320 px) or `medium` (640 px, default).")
    preview_video: str | None = Field(None, description="A few seconds of the scene (MP4, "
                                      "muted; `?sound=true` keeps the sound; `?size=`).")


class SharedOut(BaseModel):
    kind: Literal["intro", "outro", "cue"] = Field(
        description="intro: the opening theme; outro: the end credits; cue: material "
        "shared elsewhere (a recurring music cue, a recap).")
    episodes: int = Field(description="How many indexed episodes hold this material.")


class IdentifyOut(BaseModel):
    """The shape of ``citywok identify --json``, with links to act on and to share."""

    file: str | None = Field(None, description="The uploaded file's name, or the link.")
    status: Literal["match", "ambiguous", "no_match"]
    match: CandidateOut | None
    candidates: list[CandidateOut] = Field(description="Every candidate worth showing, best "
                                           "first; for `ambiguous`, every episode that fits.")
    elapsed_ms: float
    clip_duration_s: float
    shared: SharedOut | None = Field(None, description="For `ambiguous`: the shared material "
                                     "the clip lies in, when the catalogue knows it.")
    share_url: str | None = Field(None, description="A short link to this answer (`/r/<id>`), "
                                  "a page that previews in chat apps; null when sharing is off.")


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
