"""The interfaces every evidence family provides, and the values they exchange.

Two roles, one module each per family:

* a :class:`Nominator` turns a recording's peaks into postings (a hash ``HASH_BITS``
  wide and a 32-bit value naming the peaks it came from), a clip's peaks into lookups,
  and the postings a lookup read back into peak correspondences (triplets);
* a :class:`Verifier` scores a candidate place: how well the clip's own features agree
  with the stored ones at an alignment, beyond chance (the sketch).

The store keeps postings and feature windows without knowing a family; match gets the
families from the index header (:mod:`citywok.families` holds the registry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from citywok.analysis.peaks import Peaks
from citywok.analysis.sketch import ClipSketcher
from citywok.params import AnalysisParams, MatchParams
from citywok.store.segment import PostingsLayout
from citywok.vision.frames import Frames
from citywok.vision.params import FrameParams, SearchParams
from citywok.vision.search import FrameSearcher, PictureAnswer
from citywok.vision.store import EpisodeFrames


@dataclass(frozen=True)
class QueryLookups:
    """What a clip looks up: ``hashes[i]`` on behalf of tuple ``owner[i]`` of the clip."""

    hashes: npt.NDArray[np.uint32]
    owner: npt.NDArray[np.int64]
    #: Clip peak indices of each tuple, shape ``(n_tuples, k)``.
    tuples: npt.NDArray[np.int64]


@dataclass(frozen=True)
class Correspondences:
    """Hits that survived the exact-feature checks: each pairs ``k`` clip peaks with
    ``k`` reference peaks and implies one time scale and one pitch shift."""

    #: Reference peak indices (into the segment's peak arrays), shape ``(n, k)``.
    ref: npt.NDArray[np.int64]
    #: Clip peak indices, shape ``(n, k)``.
    clip: npt.NDArray[np.int64]
    #: Reference duration / clip duration implied by each hit.
    scale: npt.NDArray[np.float64]
    #: Clip pitch minus reference pitch (semitones) implied by each hit.
    shift: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.scale)


class PeakTable(Protocol):
    """Stored reference peaks, as a segment holds them."""

    @property
    def peak_frame(self) -> npt.NDArray[np.int32]: ...
    #: Stored pitch; times ``pitch_unit`` it is in semitones.
    @property
    def peak_pitch(self) -> npt.NDArray[np.uint16]: ...
    @property
    def pitch_unit(self) -> float: ...


class Nominator(PostingsLayout, Protocol):
    """A family whose postings nominate places (as module-level names). What the store
    needs of it (name, widths, reference postings, its parameter checks) is
    :class:`~citywok.store.segment.PostingsLayout`; matching needs the rest."""

    def unpack_value(self, v: npt.ArrayLike) -> tuple[
            npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """A posting value's fields: the anchor peak's index first."""
        ...

    def query_lookups(self, peaks: Peaks, params: AnalysisParams,
                      mp: MatchParams) -> QueryLookups:
        """The hashes a clip looks up (with neighbouring bins near edges)."""
        ...

    def resolve(self, lookups: QueryLookups, clip: Peaks, which: npt.NDArray[np.int64],
                values: npt.NDArray[np.uint32], table: PeakTable, params: AnalysisParams,
                mp: MatchParams) -> Correspondences:
        """Read postings back: ``values[i]`` answered lookup ``which[i]``."""
        ...


class Verifier(Protocol):
    """A family that scores places (as module-level names): ``agreement`` compares the
    clip's features, aligned to the reference at each offset, with the stored window."""

    NAME: str

    def agreement(self, clip: ClipSketcher, ref: npt.NDArray[np.uint16], *,
                  offsets_frames: npt.NDArray[np.float64], time_scale: float,
                  shift_semitones: float, first_code: int, n_codes: int,
                  bits_per_code: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(equal bits, bits compared) at each offset."""
        ...

    def score(self, equal_bits: int, total_bits: int) -> float:
        """Agreement beyond chance, in standard deviations."""
        ...


class EmbeddingSink(Protocol):
    """Takes a recording's samples in order and gives its reference embeddings."""

    def feed(self, chunk: npt.NDArray[np.float32]) -> None: ...

    def finish(self) -> npt.NDArray[np.float32]: ...


class Embedder(Protocol):
    """A family that embeds windows of sound (as module-level names): the reference
    keeps one embedding every ``REFERENCE_HOP_S``; a clip's embeddings, every finer hop,
    are searched as a sequence. Its header names the weights, so an index built with
    others is refused."""

    NAME: str
    REFERENCE_HOP_S: float
    DIM: int

    def header(self) -> dict[str, str | int | float]:
        """What an index header records of this front end (weights' hash included)."""
        ...

    def check_header(self, stored: dict[str, object], *, index_name: str) -> None:
        """Raise :class:`~citywok.errors.IndexFormatError` (one sentence: which index,
        what differs, "re-index with `citywok index`") when ``stored`` differs."""
        ...

    def check_params(self, params: AnalysisParams) -> list[str]:
        """Why this front end cannot embed audio analysed with ``params`` (empty: it can)."""
        ...

    def reference_sink(self) -> EmbeddingSink:
        """A sink for one recording's samples, at the analysis sample rate."""
        ...

    def embed_query(self, samples: npt.NDArray[np.float32]) -> tuple[
            npt.NDArray[np.float32], npt.NDArray[np.float64]]:
        """A clip's embeddings ``(m, DIM)`` and each window's start (s) in the clip."""
        ...


class PictureFamily(Protocol):
    """A family that sees an episode's pictures (as module-level names): each episode
    with a video stream keeps one picture file (the store holds it, checksummed); a
    clip's frames or a screenshot are looked up in a searcher over all of them."""

    NAME: str

    def header(self, params: FrameParams = ...) -> dict[str, object]:
        """What an index header records of this family (its parameters included)."""
        ...

    def check_header(self, stored: dict[str, object], *, index_name: str) -> FrameParams:
        """The stored parameters, or an :class:`~citywok.errors.IndexFormatError`."""
        ...

    def may_have_pictures(self, path: str | Path) -> bool:
        """Whether a file's suffix allows pictures (a sound file's never do)."""
        ...

    def analyse_file(self, path: str | Path, params: FrameParams = ...) -> bytes | None:
        """An episode file's picture file (None: it has no usable pictures)."""
        ...

    def decode(self, data: bytes, *, params: FrameParams, name: str = ...) -> EpisodeFrames:
        ...

    def searcher(self, items: Sequence[tuple[int, EpisodeFrames]],
                 params: FrameParams) -> FrameSearcher:
        ...

    def sample_clip(self, path: str | Path, sp: SearchParams = ...) -> Frames | None:
        """A clip's frames (None: no video stream)."""
        ...

    def read_still(self, source: Path | bytes, sp: SearchParams = ...) -> Frames:
        ...

    def look(self, found: FrameSearcher, frames: Frames, sp: SearchParams = ...
             ) -> PictureAnswer:
        ...
