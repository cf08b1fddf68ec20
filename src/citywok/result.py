"""What CityWok returns: frozen dataclasses, turned into JSON only at the edges.

**The answer model.** The fields of an answer that leave CityWok are marked here, once,
with ``field(metadata=shown(...))``: a description and, for floats, how many decimals
they keep. :func:`answer_json` turns a result into the JSON that ``citywok identify
--json`` prints; the web service derives its ``response_model`` from the same marks
(``citywok.web.schemas.model_of``), and the page's TypeScript types are generated from
that OpenAPI document (``scripts/gen-web-types``). A field without a mark (a file's path,
its content hash, timings) stays inside. docs/web.md, "Adding a field to the answer",
gives the steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum, StrEnum
from typing import Any

#: The metadata key that marks a dataclass field as part of the answer.
ANSWER = "citywok.answer"


@dataclass(frozen=True)
class Shown:
    """How a field reads in the answer's JSON."""

    #: One line of help (the OpenAPI description, the page's generated types).
    doc: str
    #: Decimals kept for a float (``None``: as it is).
    digits: int | None = None
    #: The field is a dataclass whose own shown fields are written in its place, flat.
    inline: bool = False


def shown(doc: str, *, digits: int | None = None, inline: bool = False) -> dict[str, Shown]:
    """Field metadata putting the field in the answer (``field(metadata=shown(...))``)."""
    return {ANSWER: Shown(doc, digits=digits, inline=inline)}


def shown_fields(cls: type) -> list[tuple[str, Shown]]:
    """The fields of dataclass ``cls`` that are in the answer, in their order."""
    return [(f.name, f.metadata[ANSWER]) for f in fields(cls) if ANSWER in f.metadata]


def answer_json(value: Any) -> dict[str, Any]:
    """The answer's JSON of a result dataclass: its shown fields, floats rounded as
    marked, enums as their values, nested results as objects (inline ones flattened)."""
    out: dict[str, Any] = {}
    for name, how in shown_fields(type(value)):
        item = getattr(value, name)
        if how.inline:
            out.update(answer_json(item))
        else:
            out[name] = _plain(item, how.digits)
    return out


def _plain(value: Any, digits: int | None) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return answer_json(value)
    if isinstance(value, tuple | list):
        return [_plain(v, digits) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v, digits) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and digits is not None:
        return round(value, digits)
    return value


class Status(StrEnum):
    MATCH = "match"
    #: Several episodes fit equally well (shared intro, recurring cue, recap).
    AMBIGUOUS = "ambiguous"
    #: The audio is not in the library.
    NO_MATCH = "no_match"


@dataclass(frozen=True)
class Episode:
    """One indexed recording and what is known about it."""

    episode_id: str = field(metadata=shown("The episode's id in the index."))
    show: str = field(metadata=shown("The show's name."))
    season: int | None = field(metadata=shown("Season number, when known."))
    episode: int | None = field(metadata=shown("Episode number, when known."))
    title: str | None = field(metadata=shown("The episode's title, when known."))
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


class Evidence(StrEnum):
    """Which kind of evidence decided a candidate."""

    #: The sound alone (every answer today).
    SOUND = "sound"
    #: The picture alone.
    PICTURE = "picture"
    #: Sound and picture together.
    BOTH = "both"


@dataclass(frozen=True)
class Candidate:
    """A place in an episode where the clip fits."""

    episode: Episode = field(metadata=shown("The episode.", inline=True))
    offset_s: float = field(metadata=shown(
        "Where in the episode the clip's first sample falls, in seconds.", digits=3))
    score: float = field(metadata=shown(
        "Evidence beyond chance, in standard deviations of the sketch's agreement (a "
        "`learned` place's fused statistic is put on the same scale: 7 is the threshold)."))
    confidence: float = field(metadata=shown(
        "Probability-like confidence in [0, 1] that this place is right.", digits=4))
    speed: float = field(metadata=shown(
        "Playback speed of the clip relative to the episode (1.25 = 25 % fast).", digits=4))
    pitch_semitones: float = field(metadata=shown(
        "Pitch of the clip relative to the episode, in semitones.", digits=2))
    decided_by: Evidence = field(default=Evidence.SOUND, metadata=shown(
        "Which evidence decided this place: `sound`, `picture` or `both`."))
    front_end: str = field(default="peaks", metadata=shown(
        "Which sound front end found and judged this place: `peaks` (triplet hashes, "
        "verified by the band-energy sketch) or `learned` (the room-proof embeddings, "
        "judged by their fused statistic); `frames` when the pictures alone found it."))

    def to_json(self) -> dict[str, Any]:
        return answer_json(self)


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

    kind: SharedKind = field(metadata=shown(
        "intro: the opening theme; outro: the end credits; cue: material shared elsewhere "
        "(a recurring music cue, a recap)."))
    episodes: int = field(metadata=shown("How many indexed episodes hold this material."))

    def to_json(self) -> dict[str, Any]:
        return answer_json(self)


@dataclass(frozen=True)
class Disagreement:
    """Sound and picture named different places: both are said, neither picked quietly."""

    sound: Candidate = field(metadata=shown("The place the sound alone names."))
    picture: Candidate = field(metadata=shown("The place the pictures alone name."))

    def to_json(self) -> dict[str, Any]:
        return answer_json(self)


@dataclass(frozen=True)
class IdentifyResult:
    """The answer for one clip."""

    status: Status = field(metadata=shown(
        "match: one place; ambiguous: several episodes fit equally well; no_match: the "
        "audio is not in the library."))
    match: Candidate | None = field(metadata=shown(
        "The best candidate; null for `no_match`."))
    candidates: tuple[Candidate, ...] = field(metadata=shown(
        "Every candidate worth showing, best first; for `ambiguous`, every episode that "
        "fits."))
    elapsed_ms: float = field(metadata=shown(
        "Time spent matching (and decoding, when CityWok decoded the clip).", digits=2))
    clip_duration_s: float = field(metadata=shown(
        "How long the clip is, in seconds.", digits=3))
    timings_ms: dict[str, float] = field(default_factory=dict)
    shared: SharedMaterial | None = field(default=None, metadata=shown(
        "For `ambiguous`: the shared material the clip lies in, when the catalogue knows "
        "it."))
    episodes_not_searched: int = field(default=0, metadata=shown(
        "Indexed episodes that could not be searched (their segment is damaged; see "
        "`/readyz`): the answer holds for the rest of the library, and a `no_match` may be "
        "wrong."))
    disagreement: Disagreement | None = field(default=None, metadata=shown(
        "When the sound and the pictures of a video name different episodes (or times "
        "far apart): the place each names. The status is then `ambiguous`, and `match` "
        "is the better-supported of the two."))

    def to_json(self, *, file: str | None = None) -> dict[str, Any]:
        """The answer as ``citywok identify --json`` prints it (``file``: the clip's name)."""
        head = {"file": file} if file is not None else {}
        return {**head, **answer_json(self)}


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
