"""What CityWok returns: frozen dataclasses, turned into JSON only at the edges."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    MATCH = "match"
    #: Several episodes fit equally well (shared intro, recurring cue, recap).
    AMBIGUOUS = "ambiguous"
    #: The audio is not in the library.
    NO_MATCH = "no_match"


@dataclass(frozen=True)
class Episode:
    """One indexed recording and what is known about it."""

    episode_id: str
    show: str
    season: int | None
    episode: int | None
    title: str | None
    duration_s: float
    source_path: str
    content_hash: str
    #: Where the episode can be watched: a template with ``{season}``, ``{episode}`` and
    #: ``{t}`` (from the library sidecar), or ``None``.
    watch_url: str | None = None

    @property
    def label(self) -> str:
        """``Show S01E02 - Title`` (parts that are unknown are left out)."""
        parts = [self.show]
        if self.season is not None and self.episode is not None:
            parts.append(f"S{self.season:02d}E{self.episode:02d}")
        elif self.episode is not None:
            parts.append(f"E{self.episode:02d}")
        text = " ".join(parts)
        return f"{text} - {self.title}" if self.title else text


@dataclass(frozen=True)
class Candidate:
    """A place in an episode where the clip fits."""

    episode: Episode
    #: Where in the episode the clip's first sample falls, in seconds.
    offset_s: float
    #: Evidence: reference peaks found in the clip beyond chance, in standard deviations.
    score: float
    #: Probability-like confidence in [0, 1] that this place is right.
    confidence: float
    #: Playback speed of the clip relative to the episode (1.25 = 25 % fast).
    speed: float
    #: Pitch of the clip relative to the episode, in semitones.
    pitch_semitones: float

    def to_json(self) -> dict[str, Any]:
        e = self.episode
        return {
            "show": e.show,
            "season": e.season,
            "episode": e.episode,
            "title": e.title,
            "episode_id": e.episode_id,
            "offset_s": round(self.offset_s, 3),
            "confidence": round(self.confidence, 4),
            "score": self.score,
            "speed": round(self.speed, 4),
            "pitch_semitones": round(self.pitch_semitones, 2),
        }


class SharedKind(StrEnum):
    """What kind of material several episodes share (from the catalogue, not a guess)."""

    #: Shared at the start of the episodes (an opening theme).
    INTRO = "intro"
    #: Shared at the end (end credits).
    OUTRO = "outro"
    #: Shared somewhere in between (a recurring music cue, a recap).
    CUE = "cue"


@dataclass(frozen=True)
class SharedStretch:
    """One episode's copy of a group of shared material."""

    episode_key: int
    start_s: float
    end_s: float
    kind: SharedKind
    #: How many episodes hold the group.
    episodes: int
    group: int


@dataclass(frozen=True)
class SharedMaterial:
    """Why an answer is ambiguous: the clip lies in audio that several episodes hold."""

    kind: SharedKind
    #: How many indexed episodes hold this material.
    episodes: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "episodes": self.episodes}


@dataclass(frozen=True)
class IdentifyResult:
    """The answer for one clip."""

    status: Status
    #: The best candidate; ``None`` for ``no_match``.
    match: Candidate | None
    #: Every candidate worth showing, best first (for ``ambiguous``: all that fit).
    candidates: tuple[Candidate, ...]
    #: Time spent matching (and decoding, when the caller decoded through CityWok).
    elapsed_ms: float
    clip_duration_s: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: For ``ambiguous``: the shared material the clip lies in, when the catalogue knows it.
    shared: SharedMaterial | None = None
    #: Indexed episodes that could not be searched (their segment is damaged): the answer
    #: holds for the rest of the library only, and a ``no_match`` may be wrong.
    episodes_not_searched: int = 0

    def to_json(self, *, file: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if file is not None:
            out["file"] = file
        out["status"] = self.status.value
        out["match"] = self.match.to_json() if self.match else None
        out["candidates"] = [c.to_json() for c in self.candidates]
        out["elapsed_ms"] = round(self.elapsed_ms, 2)
        out["clip_duration_s"] = round(self.clip_duration_s, 3)
        if self.shared is not None:
            out["shared"] = self.shared.to_json()
        if self.episodes_not_searched:
            out["episodes_not_searched"] = self.episodes_not_searched
        return out


@dataclass(frozen=True)
class Progress:
    """A progress event yielded by long work; shells render it (bar, SSE)."""

    #: Stage name: ``scanning``, ``decoding``, ``fingerprinting``, ``matching``,
    #: ``indexing``, ``skipped``, ``done`` ...
    stage: str
    #: Units done and total (``None`` when unknown); units depend on the stage.
    done: float = 0.0
    total: float | None = None
    #: What is being worked on (a file name), for display.
    item: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class IndexSummary:
    """What ``index`` did."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    audio_s: float
    elapsed_s: float
    #: Files found but not taken as media: (path within the folder scanned, why).
    left_out: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IndexStats:
    episodes: int
    shows: int
    hours: float
    peaks: int
    hashes: int
    segments: int
    index_bytes: int
    format_version: int
    path: str
    #: Segments refused as damaged ("file: why"); their episodes are not answered.
    damaged: tuple[str, ...] = ()
