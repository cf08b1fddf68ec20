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


class IdentifyOut(BaseModel):
    """The same shape as ``citywok identify --json``."""

    file: str | None = Field(None, description="The uploaded file's name, or the link.")
    status: Literal["match", "ambiguous", "no_match"]
    match: CandidateOut | None
    candidates: list[CandidateOut]
    elapsed_ms: float
    clip_duration_s: float


class IdentifyLinkIn(BaseModel):
    """Identify the media behind a link (JSON body)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, description="A TikTok, YouTube, Instagram, X or Reddit "
                     "link, or a direct link to a media file on an allowed host.")
    stream: bool = Field(False, description="Answer with Server-Sent Events.")


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


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]
    episodes: int


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
    audio_s: float
    elapsed_s: float
    episodes: int


class RemovedOut(BaseModel):
    removed: EpisodeOut
