"""The index as the rest of CityWok sees it: episodes, their segments, shared material.

:class:`Index` is a thin view over a store (today :class:`~citywok.store.local.
LocalStore`, a directory on disk): it answers "which episodes, where are their peaks
and sketches, what do they share", and passes writes to the store. It knows nothing of
hashing or matching; the matcher reads segments through the small interfaces in
:mod:`citywok.hashes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from citywok.params import AnalysisParams
from citywok.result import Episode, IndexStats
from citywok.shared import SharedStretch
from citywok.store.catalog import Catalog, EpisodeRow, shared_is_current
from citywok.store.local import (
    CATALOG_NAME,
    SEGMENT_DIR,
    DamagedSegment,
    LocalStore,
    NewEpisode,
)
from citywok.store.segment import MAGIC, SEGMENT_VERSION, Segment, read_segment, write_segment

__all__ = ["CATALOG_NAME", "MAGIC", "SEGMENT_DIR", "DamagedSegment", "Index", "NewEpisode",
           "Segment", "read_segment", "write_segment"]


#: Catalogue note: every stored episode's length was checked against its file.
_LENGTHS_CHECKED = "lengths_checked"


class Index:
    """An index, open for queries (and for writing when opened ``writable``)."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self._where: dict[int, tuple[Segment, int]] = {}
        self._index_places()

    @classmethod
    def open(cls, path: str | Path, *, writable: bool = False,
             params: AnalysisParams | None = None, verify: bool = True) -> Index:
        """Open the index at ``path`` (see :meth:`LocalStore.open`)."""
        return cls(LocalStore.open(path, writable=writable, params=params, verify=verify))

    # -- what it holds -----------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.store.root

    @property
    def params(self) -> AnalysisParams:
        return self.store.params

    @property
    def catalog(self) -> Catalog:
        return self.store.catalog

    @property
    def segments(self) -> list[Segment]:
        return self.store.segments

    @property
    def episodes(self) -> dict[int, Episode]:
        return self.store.episodes

    @property
    def damaged(self) -> list[DamagedSegment]:
        return self.store.damaged

    def episode(self, key: int) -> Episode:
        return self.store.episodes[key]

    def locate(self, key: int) -> tuple[Segment, int] | None:
        """The segment holding a live episode, and the episode's place in it."""
        return self._where.get(key)

    def shared_holding(self, key: int, start_s: float, end_s: float, *, slack_s: float = 1.0
                       ) -> SharedStretch | None:
        """The shared stretch of episode ``key`` that holds ``[start_s, end_s]`` whole
        (give or take ``slack_s`` at each end), if any."""
        for row in self.store.shared:
            if (row.episode_key == key and row.start_s - slack_s <= start_s
                    and end_s <= row.end_s + slack_s):
                return row
        return None

    def shared_overlapping(self, key: int, start_s: float, end_s: float, *,
                           min_overlap_s: float = 1.0) -> SharedStretch | None:
        """The shared stretch of episode ``key`` that overlaps ``[start_s, end_s]`` most,
        if by at least ``min_overlap_s``."""
        best: tuple[float, SharedStretch] | None = None
        for row in self.store.shared:
            if row.episode_key != key:
                continue
            overlap = min(end_s, row.end_s) - max(start_s, row.start_s)
            if overlap >= min_overlap_s and (best is None or overlap > best[0]):
                best = (overlap, row)
        return best[1] if best else None

    def copies(self, stretch: SharedStretch) -> list[SharedStretch]:
        """Every live episode's copy of the group ``stretch`` belongs to."""
        return [r for r in self.store.shared if r.group == stretch.group]

    def _index_places(self) -> None:
        self._where = {}
        for seg in self.store.segments:
            for local, key in enumerate(seg.episode_keys):
                if int(key) in self.store.episodes:
                    self._where[int(key)] = (seg, local)

    def reload(self) -> None:
        self.store.reload()
        self._index_places()

    def stats(self) -> IndexStats:
        eps = list(self.episodes.values())
        catalog_bytes = sum(p.stat().st_size for p in self.path.glob(CATALOG_NAME + "*")
                            if p.is_file())
        return IndexStats(
            episodes=len(eps),
            shows=len({e.show for e in eps}),
            hours=sum(e.duration_s for e in eps) / 3600.0,
            peaks=sum(len(s.peak_frame) for s in self.segments),
            hashes=sum(len(s.values) for s in self.segments),
            segments=len(self.segments),
            index_bytes=sum(s.nbytes for s in self.segments) + catalog_bytes,
            format_version=SEGMENT_VERSION,
            path=str(self.path),
            damaged=tuple(f"{d.file}: {d.reason}" for d in self.damaged),
        )

    def check(self) -> list[DamagedSegment]:
        """Verify every segment from scratch (``citywok check``)."""
        return self.store.check()

    # -- writing (passed to the store) ----------------------------------------------------

    def unique_episode_id(self, wanted: str) -> str:
        return self.store.unique_episode_id(wanted)

    def add(self, items: Sequence[NewEpisode], *, replace_keys: Sequence[int] = ()) -> None:
        self.store.add(items, replace_keys=replace_keys)
        self._index_places()

    def update_source(self, row: EpisodeRow, *, source_path: str, file_size: int,
                      file_mtime_ns: int) -> None:
        self.store.update_source(row, source_path=source_path, file_size=file_size,
                                 file_mtime_ns=file_mtime_ns)
        self._index_places()

    @property
    def lengths_checked(self) -> bool:
        """Whether every stored episode's length has been checked against its file (by a
        CityWok that refuses decodes that end early, so nothing added since needs it)."""
        return self.store.catalog.get_meta(_LENGTHS_CHECKED) == "1"

    def mark_lengths_checked(self) -> None:
        self.store.set_note(_LENGTHS_CHECKED, "1")

    def remove(self, episode_id: str) -> Episode:
        ep = self.store.remove(episode_id)
        self._index_places()
        return ep

    def compact(self, *, max_segments: int = 1) -> None:
        self.store.compact(max_segments=max_segments)
        self._index_places()

    def replace_shared(self, episode_keys: Sequence[int], rows: Sequence[SharedStretch],
                       *, show: str | None = None) -> None:
        self.store.replace_shared(episode_keys, rows, show=show)
        self._index_places()

    def shared_is_stale(self, show: str) -> bool:
        """Whether ``show``'s shared material was found among other episodes than it has
        now (a run stopped between committing episodes and finding it)."""
        keys = [k for k, e in self.episodes.items() if e.show == show]
        return not shared_is_current(self.store.catalog.shared_among(show), keys)

    # -- life ------------------------------------------------------------------------------

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
