"""Hash families: how peaks become hashes, and how hits are read back.

A family is a module with the same small interface (see :class:`HashFamily`); a second
family is a sibling module, and the index and matcher only ever talk to the interface.
Postings of every family have one format: a hash (``HASH_BITS`` wide, the family's
layout) and a 32-bit value naming the peaks it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from citywok.params import AnalysisParams, MatchParams
from citywok.peaks import Peaks


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


class HashFamily(Protocol):
    """The interface every family module provides (as module-level names)."""

    NAME: str
    HASH_BITS: int

    def reference_hashes(self, peaks: Peaks, params: AnalysisParams, *, first_peak: int = 0
                         ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
        """Hashes and values of one recording whose peaks start at ``first_peak``."""
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
