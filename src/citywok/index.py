"""The index as the rest of CityWok sees it: episodes, their segments, shared material.

:class:`Index` is a thin view over a store (today :class:`~citywok.store.local.
LocalStore`, a directory on disk): it answers "which episodes, where are their peaks
and sketches, what do they share", and passes writes to the store. It joins the store to
the evidence families its header names (:attr:`nominator`, :attr:`verifier`), and is
the matcher's one read interface: lookups in, postings out (:meth:`postings`); a
sketch window (:meth:`sketch_window`) and the peaks (:meth:`episode_peaks`) of an
episode by key. The matcher never touches segment bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from citywok import families
from citywok.analysis.peaks import Peaks
from citywok.errors import IndexFormatError
from citywok.families.base import Embedder, Nominator, PictureFamily, Verifier
from citywok.learned.coarse import (
    Coarse,
    CoarseSpec,
    build_coarse,
    load_coarse,
    reference_digest,
    save_coarse,
)
from citywok.learned.search import Reference, build_reference
from citywok.params import AnalysisParams
from citywok.result import Episode, IndexStats, SharedStretch
from citywok.store.catalog import Catalog, EpisodeRow, PictureRow, shared_is_current
from citywok.store.local import (
    CATALOG_NAME,
    SEGMENT_DIR,
    DamagedSegment,
    LocalStore,
    NewEpisode,
)
from citywok.store.reads import Postings, damage_reason, read_postings
from citywok.store.segment import MAGIC, SEGMENT_VERSION, Segment, read_segment, write_segment
from citywok.vision.params import FrameParams
from citywok.vision.search import FrameSearcher

#: Where an index keeps what can be made again from it (the embeddings' inverted lists).
COARSE_DIR = "cache"
#: The header key naming the families an index holds, nominating family first.
FAMILIES_KEY = "families"
#: The header key (with the family's name after it) describing an embedding family's
#: front end: its weights' hash and the parameters of its windows.
FRONT_END_KEY = "front_end."
#: The header key describing the picture family (issue 17): its name, version and the
#: frame parameters its picture files were made with. An index without it has none.
PICTURES_KEY = "pictures"

__all__ = ["CATALOG_NAME", "MAGIC", "SEGMENT_DIR", "DamagedSegment", "Index", "NewEpisode",
           "Segment", "read_segment", "write_segment"]


#: Catalogue note: every stored episode's length was checked against its file.
_LENGTHS_CHECKED = "lengths_checked"


class Index:
    """An index, open for queries (and for writing when opened ``writable``)."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        names = self.family_names
        if len(names) not in (2, 3):
            raise IndexFormatError(f"the index at {store.root} names its evidence families "
                                   "in a way this CityWok does not read: re-index with "
                                   "`citywok index`")
        #: The family whose postings nominate places, and the one that verifies them.
        self.nominator: Nominator = families.nominator(names[0])
        self.verifier: Verifier = families.verifier(names[1])
        #: The embedding family (the room-proof front end), if the index has one.
        self.embedder: Embedder | None = None
        if len(names) == 3:
            self.embedder = families.embedder(names[2])
            raw = store.catalog.get_meta(FRONT_END_KEY + names[2])
            try:
                stored = json.loads(raw) if raw is not None else None
            except ValueError:
                stored = None
            if not isinstance(stored, dict):
                raise IndexFormatError(f"the index at {store.root} names the {names[2]} "
                                       "front end without describing it: re-index with "
                                       "`citywok index`")
            self.embedder.check_header(stored, index_name=f"at {store.root}")
        #: The picture family and its frame parameters, if the index keeps pictures.
        self.pictures: PictureFamily | None = None
        self.frame_params: FrameParams | None = None
        self._read_pictures_header()
        if self.pictures is None and store.writable:
            # An index from before pictures: its next writer keeps them from now on
            # (episodes it holds already have none until re-indexed).
            fam = families.pictures(families.DEFAULT_PICTURES)
            store.set_note(PICTURES_KEY, json.dumps(fam.header(), sort_keys=True))
            self._read_pictures_header()
        self._where: dict[int, tuple[Segment, int]] = {}
        self._reference: tuple[Reference, npt.NDArray[np.int64]] | None = None
        self._searcher: FrameSearcher | None = None
        #: Picture files found damaged (``file: why``); their episodes answer by sound.
        self.damaged_pictures: list[str] = []
        self._coarse: tuple[CoarseSpec, Coarse] | None = None
        self._index_places()

    def _read_pictures_header(self) -> None:
        raw = self.store.catalog.get_meta(PICTURES_KEY)
        if raw is None:
            return
        try:
            stored = json.loads(raw)
        except ValueError:
            stored = None
        if not isinstance(stored, dict) or not isinstance(stored.get("family"), str):
            raise IndexFormatError(f"the index at {self.store.root} describes its pictures "
                                   "in a way this CityWok does not read: re-index with "
                                   "`citywok index --rebuild`")
        fam = families.pictures(stored["family"])
        self.frame_params = fam.check_header(stored, index_name=f"at {self.store.root}")
        self.pictures = fam

    @classmethod
    def open(cls, path: str | Path, *, writable: bool = False,
             params: AnalysisParams | None = None, verify: bool = True,
             verified_memo: Path | None = None) -> Index:
        """Open the index at ``path`` (see :meth:`LocalStore.open`); a new one is built
        with the default families (:data:`citywok.families.DEFAULT`)."""
        new = families.nominator(families.DEFAULT[0])
        store = LocalStore.open(path, writable=writable, params=params, verify=verify,
                                layouts=families.NOMINATORS, new_layout=new,
                                header=new_header(params or AnalysisParams()),
                                verified_memo=verified_memo)
        try:
            return cls(store)
        except IndexFormatError:
            store.close()
            raise

    @property
    def embedder_name(self) -> str | None:
        """The embedding family's name, if the index has one (what ingest must feed)."""
        return None if self.embedder is None else self.embedder.NAME

    @property
    def family_names(self) -> tuple[str, ...]:
        """The evidence families the header names (an index from before families were
        named holds triplet postings and sketches)."""
        raw = self.store.catalog.get_meta(FAMILIES_KEY)
        if raw is None:
            return (self.store.catalog.get_meta("hash_family") or "", "sketch")
        return tuple(raw.split(","))

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

    # -- the read interface of matching -------------------------------------------------

    def postings(self, hashes: npt.NDArray[np.uint32], *, budget: int) -> list[Postings]:
        """What every segment holds for ``hashes``, rarest rows first within ``budget``
        postings (see :mod:`citywok.store.reads`)."""
        return read_postings(hashes, self.store.segments, budget=budget,
                             on_damage=self.set_aside)

    def sketch_window(self, key: int) -> npt.NDArray[np.uint16] | None:
        """The stored sketch codes of a live episode (None if it is not live)."""
        where = self._where.get(key)
        return None if where is None else where[0].episode_sketch(where[1])

    def peak_views(self, key: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint16],
                                            float] | None:
        """A live episode's stored peak frames and pitches as views into the index (no
        copy), and the pitch unit in semitones (None if it is not live)."""
        where = self._where.get(key)
        if where is None:
            return None
        seg, local = where
        lo, hi = int(seg.episode_peak_start[local]), int(seg.episode_peak_start[local + 1])
        return seg.peak_frame[lo:hi], seg.peak_pitch[lo:hi], float(seg.pitch_unit)

    def embedding_reference(self) -> tuple[Reference, npt.NDArray[np.int64]] | None:
        """Every live episode's embeddings as one searchable reference, and the episode
        key of each of its episodes (None when the index has no embedding family or no
        embeddings). Built on first use (a copy in memory: 0.46 MB an hour as int8, four
        times that as the float32 a query multiplies) and again after the episodes
        change."""
        if self.embedder is None:
            return None
        if self._reference is None:
            keys, rows = [], []
            for key, (seg, local) in sorted(self._where.items()):
                try:
                    emb = seg.episode_embedding(local)
                except (IndexError, ValueError) as exc:
                    self.set_aside_read(key, exc)
                    return self.embedding_reference()
                if len(emb):
                    keys.append(key)
                    rows.append(emb)
            if not rows:
                return None
            ref = build_reference(rows, hop_s=self.embedder.REFERENCE_HOP_S)
            self._reference = (ref, np.asarray(keys, dtype=np.int64))
        return self._reference

    @property
    def picture_family_name(self) -> str | None:
        """The picture family's name, if the index keeps pictures (what ingest must make)."""
        return None if self.pictures is None else self.pictures.NAME

    def picture_rows(self) -> list[PictureRow]:
        """The live episodes' picture files."""
        return self.store.pictures()

    def has_pictures(self) -> bool:
        """Whether any live episode has pictures (else a clip's are not even decoded)."""
        return self.pictures is not None and bool(self.store.pictures())

    def picture_searcher(self) -> FrameSearcher | None:
        """Every live episode's frames as one searcher, episodes named by key (as text);
        None when no episode has pictures. Built on first use, again after the episodes
        change. A picture file that fails its checksum is left out and named in
        :attr:`damaged_pictures`: its episode still answers by sound."""
        if self.pictures is None or self.frame_params is None:
            return None
        if self._searcher is None:
            items = []
            damaged = []
            for row in self.store.pictures():
                try:
                    data = self.store.read_picture(row)
                    items.append((row.episode_key, self.pictures.decode(
                        data, params=self.frame_params, name=f"picture file {row.file}")))
                except IndexFormatError as exc:
                    damaged.append(f"{row.file}: {exc.message}")
            self.damaged_pictures = damaged
            if not items:
                return None
            self._searcher = self.pictures.searcher(items, self.frame_params)
        return self._searcher
    def embedding_coarse(self, spec: CoarseSpec) -> Coarse | None:
        """The embedding reference's inverted lists made as ``spec`` says (None without
        a reference). Read from the index's ``cache/`` folder when they were saved for
        this very reference, else built (k-means on a sample; about a minute at 1,000 h)
        and saved there, best effort: it is a cache, not part of the index."""
        got = self.embedding_reference()
        if got is None:
            return None
        held = self._coarse
        if held is not None and held[0] == spec:  # reset with the reference
            return held[1]
        ref = got[0]
        digest = reference_digest(ref, spec)  # reads every code: once per reference
        folder = self.store.root / COARSE_DIR
        coarse = load_coarse(folder, spec, digest, rows=len(ref.codes))
        if coarse is None:
            coarse = build_coarse(ref, spec, digest=digest)
            save_coarse(coarse, folder)
        self._coarse = (spec, coarse)
        return coarse

    def episode_peaks(self, key: int) -> Peaks | None:
        """The stored peaks of a live episode (None if it is not live)."""
        where = self._where.get(key)
        return None if where is None else where[0].episode_peaks(where[1])

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
        # Built aside and swapped in whole: queries on other threads read it meanwhile.
        where: dict[int, tuple[Segment, int]] = {}
        for seg in self.store.segments:
            for local, key in enumerate(seg.episode_keys):
                if int(key) in self.store.episodes:
                    where[int(key)] = (seg, local)
        self._where = where
        self._reference = None
        self._searcher = None
        self._coarse = None

    def set_aside_read(self, where: Postings | int, exc: Exception) -> None:
        """A read of ``where`` (postings a segment answered, or an episode's windows)
        found the segment disagreeing with itself: only damage does that. It is set
        aside; the others go on answering."""
        if isinstance(where, Postings):
            seg: Segment | None = where.table
        else:
            seg = self._where[where][0] if where in self._where else None
        if seg is not None:
            self.set_aside(seg, damage_reason(seg, str(exc) or type(exc).__name__))

    def set_aside(self, segment: Segment, reason: str) -> None:
        """Stop answering from a segment found damaged while reading it (see
        :meth:`LocalStore.set_aside`); its episodes are listed as not searched."""
        self.store.set_aside(segment, reason)
        self._index_places()

    @property
    def unsearched_episodes(self) -> int:
        """Episodes of the catalogue that no query can reach: their segment is damaged."""
        return sum(len(d.episode_keys) for d in self.store.damaged)

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
            index_bytes=(sum(s.nbytes for s in self.segments) + catalog_bytes
                         + sum(r.bytes for r in self.picture_rows())),
            format_version=SEGMENT_VERSION,
            path=str(self.path),
            damaged=tuple(f"{d.file}: {d.reason}" for d in self.damaged),
        )

    def check(self) -> list[DamagedSegment]:
        """Verify every segment from scratch (``citywok check``)."""
        return self.store.check()

    def check_pictures(self) -> list[str]:
        """Verify every live episode's picture file from scratch (checksum and layout):
        ``file: why`` for each damaged one (its episode answers by sound only)."""
        if self.pictures is None or self.frame_params is None:
            return []
        out = []
        for row in self.store.pictures():
            try:
                self.pictures.decode(self.store.read_picture(row), params=self.frame_params,
                                     name=f"picture file {row.file}")
            except IndexFormatError as exc:
                out.append(f"{row.file}: {exc.message}")
        return out

    # -- writing (passed to the store) ----------------------------------------------------

    def unique_episode_id(self, wanted: str) -> str:
        return self.store.unique_episode_id(wanted)

    def add(self, items: Sequence[NewEpisode], *, replace_keys: Sequence[int] = ()) -> None:
        self.store.add(items, replace_keys=replace_keys,
                       picture_family=self.picture_family_name or "")
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


def new_header(params: AnalysisParams) -> dict[str, str]:
    """The header of a new index: the default families (an embedding family only where
    it can hear audio analysed with ``params``) and each front end's description."""
    names = list(families.DEFAULT[:2])
    header: dict[str, str] = {}
    for name in families.DEFAULT[2:]:
        emb = families.embedder(name)
        if not emb.check_params(params):
            names.append(name)
            header[FRONT_END_KEY + name] = json.dumps(emb.header(), sort_keys=True)
    header[FAMILIES_KEY] = ",".join(names)
    header[PICTURES_KEY] = json.dumps(
        families.pictures(families.DEFAULT_PICTURES).header(), sort_keys=True)
    return header
