"""An index directory on a local disk: segment files, the catalogue, the writer's lock.

Layout::

    catalog.sqlite        episodes, live segments (with their SHA-256), shared material,
                          format versions, analysis parameters
    segments/seg-*.cws    one file per batch of episodes (immutable once written)
    pictures/pic-*.cwf    one file per episode with pictures (issue 17): the frames
                          family's codes, named with its SHA-256 by the catalogue, which
                          drops the row with the episode (a file no row names is a stray)
    LOCK                  held by the one writer at a time

Adding episodes writes new segments and then commits their names and the episodes in
one SQLite transaction; a crash before that commit leaves stray files that the next
writer deletes. Removing an episode deletes its catalogue row (its postings are skipped
at query time and dropped at the next compaction, which rebuilds postings from the
stored peaks without decoding anything again).

Readers verify each segment's SHA-256 against the catalogue when they first map it
(once per file per process): a damaged segment is set aside with the reason, and the
others keep answering. A segment damaged on disk after that shows through its memory
map; a reader that meets it (a count out of bounds) sets it aside the same way
(:meth:`LocalStore.set_aside`).
others keep answering. A short-lived reader (one ``citywok identify``) may be handed a
memo file where the segments already verified are remembered by file identity (device,
inode, size, modification and change times: a write changes the change time, and no one
can set it back), so it hashes only what changed since, not the whole index every run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from citywok.analysis.peaks import Peaks
from citywok.errors import (
    IndexFormatError,
    IndexLockedError,
    IndexNotFoundError,
    IndexStoreError,
    IndexWriteError,
)
from citywok.params import AnalysisParams
from citywok.result import Episode, SharedStretch
from citywok.store.catalog import Catalog, EpisodeRow, PictureRow, create_catalog
from citywok.store.segment import (
    SEGMENT_VERSION,
    EpisodeData,
    PostingsLayout,
    Segment,
    file_sha256,
    is_read_only_error,
    new_segment_name,
    read_segment,
    write_error,
    write_segment,
)

CATALOG_NAME = "catalog.sqlite"
SEGMENT_DIR = "segments"
PICTURE_DIR = "pictures"
LOCK_NAME = "LOCK"
#: Segments beyond this many are merged (smallest first) after a write.
MAX_SEGMENTS = 8


@dataclass(frozen=True)
class NewEpisode:
    """An episode fingerprinted and ready to be committed."""

    episode: Episode
    peaks: Peaks
    file_size: int
    file_mtime_ns: int
    sketch: npt.NDArray[np.uint16] = field(
        default_factory=lambda: np.empty(0, dtype=np.uint16))
    #: ``(windows, dim)`` embeddings of the index's embedding family; ``(0, 0)``: none.
    embedding: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    #: The picture file of the index's picture family (empty: the episode has none).
    pictures: bytes = b""


@dataclass(frozen=True)
class DamagedSegment:
    """A segment a reader refused, and why (its episodes cannot be answered)."""

    file: str
    reason: str
    episode_keys: tuple[int, ...]


_verified: dict[str, bool] = {}
_verified_lock = threading.Lock()


def _verify_once(path: Path, sha256: str, *, known: frozenset[str] = frozenset()) -> str:
    """Check a segment's checksum, once per (file identity, expected sum) per process,
    unless ``known`` (a memo's) holds that identity; return the identity."""
    try:
        st = path.stat()
    except OSError as exc:
        raise IndexFormatError(f"segment {path.name} cannot be opened ({exc.strerror})") from None
    key = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{sha256}"
    with _verified_lock:
        if _verified.get(key) or key in known:
            return key
    try:
        got = file_sha256(path)
    except OSError as exc:
        raise IndexFormatError(f"segment {path.name} cannot be read ({exc.strerror})") from None
    if got != sha256:
        raise IndexFormatError(f"segment {path.name} is damaged (its checksum does not "
                               "match the catalogue)")
    with _verified_lock:
        _verified[key] = True
    return key


def _read_memo(memo: Path | None) -> frozenset[str]:
    try:
        raw = json.loads(memo.read_text()) if memo is not None else []
    except (OSError, ValueError):
        return frozenset()
    return frozenset(k for k in raw if isinstance(k, str)) if isinstance(raw, list) else frozenset()


def _write_memo(memo: Path, keys: set[str]) -> None:
    """Best effort: a memo that cannot be written only means hashing again next time."""
    tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(sorted(keys)))
        os.replace(tmp, memo)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _forget_verified(path: Path) -> None:
    """Check ``path``'s checksum again the next time it is opened (it was found damaged
    since, perhaps without its size or time changing)."""
    try:
        st = path.stat()
    except OSError:
        return
    with _verified_lock:
        for key in [k for k in _verified if k.startswith(f"{st.st_dev}:{st.st_ino}:")]:
            del _verified[key]


class LocalStore:
    """An index directory, open for reading (and for writing when it holds the lock)."""

    def __init__(self, root: Path, *, params: AnalysisParams, catalog: Catalog,
                 lock: IO[bytes] | None, layout: PostingsLayout | None,
                 verify: bool = True, verified_memo: Path | None = None) -> None:
        self.root = root
        self.params = params
        #: The postings layout of the family that built the index (None: opened for a
        #: structural check only, which reads but never writes).
        self.layout = layout
        self.catalog = catalog
        self.verify = verify
        self.verified_memo = verified_memo
        self._lock = lock
        self.segments: list[Segment] = []
        self.damaged: list[DamagedSegment] = []
        self.episodes: dict[int, Episode] = {}
        self.shared: list[SharedStretch] = []
        self._aside_lock = threading.Lock()
        self.reload()

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, writable: bool = False,
             params: AnalysisParams | None = None, verify: bool = True,
             layouts: Mapping[str, PostingsLayout] | None = None,
             new_layout: PostingsLayout | None = None,
             header: Mapping[str, str] | None = None,
             verified_memo: Path | None = None) -> LocalStore:
        """Open an index; ``writable`` creates it if missing and takes the writer lock.

        ``params`` must match the stored ones when given; a new index takes them (or the
        defaults). ``verify`` checks every segment's SHA-256 the first time this process
        maps it. ``layouts`` are the postings layouts this CityWok knows, by family name
        (None: read without one, for a structural check); a new index is built with
        ``new_layout`` and records ``header`` beside its parameters. ``verified_memo``
        (a file, for a read-only open) remembers the segments verified, across processes.
        """
        root = Path(path).expanduser()
        db_path = root / CATALOG_NAME
        if not writable:
            if not db_path.is_file():
                raise IndexNotFoundError(
                    f"no index at {root} (build one with 'citywok index FOLDER')")
            catalog = Catalog(db_path, readonly=True)
            return cls(root, params=cls._stored_params(catalog, params), catalog=catalog,
                       lock=None, layout=cls._stored_layout(catalog, layouts), verify=verify,
                       verified_memo=verified_memo)
        try:
            (root / SEGMENT_DIR).mkdir(parents=True, exist_ok=True)
            lock = open(root / LOCK_NAME, "ab")  # noqa: SIM115 - held until close()
        except OSError as exc:
            raise write_error(exc, root) from None
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise IndexLockedError(f"another process is writing the index at {root}") from None
        try:
            if not db_path.is_file():
                if new_layout is None:
                    raise IndexFormatError("a new index needs a postings layout")
                chosen = params or AnalysisParams()
                chosen.validate(layout_problems=new_layout.check_params(chosen))
                create_catalog(db_path, {
                    "params": json.dumps(chosen.to_dict(), sort_keys=True),
                    "segment_format": str(SEGMENT_VERSION),
                    "hash_family": new_layout.NAME,
                    **(header or {}),
                })
            catalog = Catalog(db_path)
        except (OSError, sqlite3.Error) as exc:
            lock.close()
            if isinstance(exc, OSError):
                raise write_error(exc, root) from None
            raise IndexFormatError(f"the catalogue cannot be opened ({exc})") from None
        except IndexStoreError:
            lock.close()
            raise
        try:
            layout = cls._stored_layout(catalog, layouts)
        except IndexStoreError:
            catalog.close()
            lock.close()
            raise
        store = cls(root, params=cls._stored_params(catalog, params), catalog=catalog,
                    lock=lock, layout=layout, verify=verify)
        store._remove_strays()
        return store

    @staticmethod
    def _stored_params(catalog: Catalog, wanted: AnalysisParams | None) -> AnalysisParams:
        raw = catalog.get_json("params")
        if not isinstance(raw, dict):
            raise IndexFormatError("the index does not record its analysis parameters")
        stored = AnalysisParams.from_dict(raw)
        if wanted is not None:
            stored.require_same(wanted)
        return stored

    @staticmethod
    def _stored_layout(catalog: Catalog, layouts: Mapping[str, PostingsLayout] | None
                       ) -> PostingsLayout | None:
        if layouts is None:
            return None
        name = catalog.get_meta("hash_family") or ""
        if name not in layouts:
            raise IndexFormatError(
                f"the index at {catalog.path.parent} holds {name or 'unnamed'} postings, "
                f"which this CityWok does not read (it knows {', '.join(sorted(layouts))}): "
                "re-index with `citywok index`")
        return layouts[name]

    @property
    def writable(self) -> bool:
        return self._lock is not None

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.catalog.close()
        for seg in self.segments:
            seg.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def reload(self) -> None:
        """Re-read the catalogue and map the live segments (after another writer).

        A segment that fails its checks is set aside in :attr:`damaged`; the episodes it
        holds are left out of :attr:`episodes`, so no answer can come from damaged data.
        """
        rows = {row.key: row for row in self.catalog.episodes()}
        segments: list[Segment] = []
        damaged: list[DamagedSegment] = []
        seg_rows = self.catalog.segments()
        known = _read_memo(self.verified_memo) if self.verify else frozenset()
        verified: set[str] = set()
        for srow in seg_rows:
            path = self.root / SEGMENT_DIR / srow.file
            try:
                if self.verify:
                    verified.add(_verify_once(path, srow.sha256, known=known))
                segments.append(read_segment(path, params=self.params, layout=self.layout))
            except IndexFormatError as exc:
                keys = tuple(r.key for r in rows.values() if r.seg_id == srow.seg_id)
                damaged.append(DamagedSegment(srow.file, exc.message, keys))
        if self.verified_memo is not None and self.verify and verified != known:
            _write_memo(self.verified_memo, verified)  # the live segments' only
        lost = {k for d in damaged for k in d.episode_keys}
        self.segments = segments
        self.damaged = damaged
        self.episodes = {k: r.episode for k, r in rows.items() if k not in lost}
        self.shared = [s for s in self.catalog.shared() if s.episode_key in self.episodes]

    def set_aside(self, segment: Segment, reason: str) -> None:
        """Stop answering from ``segment`` (found damaged while reading it) and list it in
        :attr:`damaged`. The lists are replaced, not changed, so a query iterating the old
        ones finishes on them."""
        with self._aside_lock:
            if not any(s is segment for s in self.segments):
                return
            keys = tuple(int(k) for k in segment.episode_keys if int(k) in self.episodes)
            self.segments = [s for s in self.segments if s is not segment]
            self.damaged = [*self.damaged, DamagedSegment(segment.path.name, reason, keys)]
            self.episodes = {k: e for k, e in self.episodes.items() if k not in keys}
            self.shared = [s for s in self.shared if s.episode_key in self.episodes]
        _forget_verified(segment.path)

    def check(self) -> list[DamagedSegment]:
        """Verify every live segment from scratch (checksum and structure)."""
        out: list[DamagedSegment] = []
        rows = self.catalog.episodes()
        for srow in self.catalog.segments():
            path = self.root / SEGMENT_DIR / srow.file
            try:
                read_segment(path, params=self.params, layout=self.layout,
                             sha256=srow.sha256)
            except IndexFormatError as exc:
                keys = tuple(r.key for r in rows if r.seg_id == srow.seg_id)
                out.append(DamagedSegment(srow.file, exc.message, keys))
        return out

    def _remove_strays(self) -> None:
        live = {row.file for row in self.catalog.segments()}
        for f in (self.root / SEGMENT_DIR).iterdir():
            if f.name not in live:
                f.unlink(missing_ok=True)
        if (self.root / PICTURE_DIR).is_dir():
            named = {row.file for row in self.catalog.pictures()}
            for f in (self.root / PICTURE_DIR).iterdir():
                if f.name not in named:
                    f.unlink(missing_ok=True)

    def _require_writer(self) -> None:
        if self._lock is None:
            raise IndexStoreError("the index is open read-only")

    # -- writing -------------------------------------------------------------------------

    def _require_layout(self) -> PostingsLayout:
        if self.layout is None:
            raise IndexStoreError("this index was opened for a structural check only")
        return self.layout

    def unique_episode_id(self, wanted: str) -> str:
        candidate, n = wanted, 2
        while self.catalog.episode_id_taken(candidate):
            candidate, n = f"{wanted}-{n}", n + 1
        return candidate

    def _write_batches(self, keys: Sequence[int], data: Sequence[EpisodeData]
                       ) -> Iterator[tuple[str, int, str, list[int]]]:
        """Write segments of at most ``MAX_PEAK_INDEX`` peaks; yields (name, size, sha,
        keys) of each."""
        layout = self._require_layout()
        batch_keys: list[int] = []
        batch: list[EpisodeData] = []
        peaks = 0

        def flush() -> tuple[str, int, str, list[int]]:
            name = new_segment_name()
            path = self.root / SEGMENT_DIR / name
            digest = write_segment(path, params=self.params, layout=layout,
                                   episode_keys=batch_keys, episodes=batch)
            return name, path.stat().st_size, digest, list(batch_keys)

        for key, item in zip(keys, data, strict=True):
            if batch and peaks + len(item.peaks) > layout.MAX_PEAK_INDEX:
                yield flush()
                batch_keys, batch, peaks = [], [], 0
            batch_keys.append(key)
            batch.append(item)
            peaks += len(item.peaks)
        if batch:
            yield flush()

    def add(self, items: Sequence[NewEpisode], *, replace_keys: Sequence[int] = (),
            picture_family: str = "") -> None:
        """Commit new episodes (and drop ``replace_keys``) in one atomic step; their
        picture files are recorded as made by ``picture_family``."""
        self._require_writer()
        if not items and not replace_keys:
            return
        if picture_family == "" and any(it.pictures for it in items):
            raise IndexStoreError("picture files need the family that made them")
        written: list[str] = []
        pictures_written: list[str] = []
        try:
            with self.catalog.transaction() as db:
                for key in replace_keys:
                    db.execute("DELETE FROM episodes WHERE key=?", (key,))
                first_key = self.catalog.next_episode_key(db)
                keys = list(range(first_key, first_key + len(items)))
                data = [EpisodeData(it.peaks, it.sketch, it.embedding) for it in items]
                by_key = dict(zip(keys, items, strict=True))
                for name, size, digest, seg_keys in self._write_batches(keys, data):
                    written.append(name)
                    seg_id = self.catalog.add_segment(db, file=name, size=size, sha256=digest)
                    for k in seg_keys:
                        it = by_key[k]
                        self.catalog.add_episode(db, key=k, ep=it.episode,
                                                 file_size=it.file_size,
                                                 file_mtime_ns=it.file_mtime_ns, seg_id=seg_id)
                for k, it in by_key.items():
                    if it.pictures:
                        row = self._write_picture(k, it.pictures, family=picture_family)
                        pictures_written.append(row.file)
                        self.catalog.add_picture(db, row)
                self._drop_empty_segments(db)
        except (OSError, sqlite3.OperationalError) as exc:
            self._forget(written)
            self._forget_pictures(pictures_written)
            if isinstance(exc, OSError):
                raise write_error(exc, self.root) from None
            raise IndexWriteError(f"cannot write the index at {self.root}: {exc}; the index "
                                  "is unchanged") from None
        except BaseException:
            self._forget(written)
            self._forget_pictures(pictures_written)
            raise
        self.reload()
        self._remove_strays()

    def _forget(self, names: list[str]) -> None:
        for name in names:
            (self.root / SEGMENT_DIR / name).unlink(missing_ok=True)

    def _forget_pictures(self, names: list[str]) -> None:
        for name in names:
            (self.root / PICTURE_DIR / name).unlink(missing_ok=True)

    def _write_picture(self, key: int, data: bytes, *, family: str) -> PictureRow:
        """Write one episode's picture file (to a temporary name, then renamed)."""
        folder = self.root / PICTURE_DIR
        folder.mkdir(exist_ok=True)
        name = f"pic-{uuid.uuid4().hex}.cwf"
        tmp = folder / f".{name}.tmp"
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / name)
        return PictureRow(key, family, name, len(data), hashlib.sha256(data).hexdigest())

    # -- pictures (read side) ------------------------------------------------------------

    def pictures(self) -> list[PictureRow]:
        """The picture files of the live episodes (those a damaged segment holds left out)."""
        return [r for r in self.catalog.pictures() if r.episode_key in self.episodes]

    def read_picture(self, row: PictureRow) -> bytes:
        """A picture file's bytes, checked against its SHA-256; a damaged or missing one
        is an :class:`IndexFormatError` naming it."""
        try:
            data = (self.root / PICTURE_DIR / row.file).read_bytes()
        except OSError as exc:
            raise IndexFormatError(f"picture file {row.file} cannot be read "
                                   f"({exc.strerror})") from None
        if len(data) != row.bytes or hashlib.sha256(data).hexdigest() != row.sha256:
            raise IndexFormatError(f"picture file {row.file} is damaged (its checksum does "
                                   "not match the catalogue)")
        return data

    def update_source(self, row: EpisodeRow, *, source_path: str, file_size: int,
                      file_mtime_ns: int) -> None:
        """Record that an indexed file moved or was touched without changing."""
        self._require_writer()
        try:
            with self.catalog.transaction() as db:
                db.execute("UPDATE episodes SET source_path=?, file_size=?, file_mtime_ns=? "
                           "WHERE key=?", (source_path, file_size, file_mtime_ns, row.key))
        except (OSError, sqlite3.OperationalError) as exc:
            raise IndexWriteError(f"cannot write the index at {self.root}: {exc}") from None
        self.reload()

    def set_note(self, key: str, value: str) -> None:
        """Record a fact about the whole index in the catalogue (its ``meta`` table)."""
        self._require_writer()
        try:
            with self.catalog.transaction() as db:
                self.catalog.set_meta(key, value, db)
        except (OSError, sqlite3.OperationalError) as exc:
            raise IndexWriteError(f"cannot write the index at {self.root}: {exc}") from None

    def remove(self, episode_id: str) -> Episode:
        self._require_writer()
        row = self.catalog.by_id(episode_id)
        with self.catalog.transaction() as db:
            db.execute("DELETE FROM episodes WHERE key=?", (row.key,))
            self._drop_empty_segments(db)
        self.reload()
        self._remove_strays()
        return row.episode

    def replace_shared(self, episode_keys: Sequence[int], rows: Sequence[SharedStretch],
                       *, show: str | None = None) -> None:
        """Record the shared material found anew among ``episode_keys`` (all of
        ``show``'s episodes, when given: noted, so a run stopped before it is caught up)."""
        self._require_writer()
        try:
            with self.catalog.transaction() as db:
                self.catalog.replace_shared(db, episode_keys, rows, show=show)
        except (OSError, sqlite3.OperationalError) as exc:
            raise IndexWriteError(f"cannot write the index at {self.root}: {exc}") from None
        self.reload()

    def _drop_empty_segments(self, db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM segments WHERE seg_id NOT IN (SELECT seg_id FROM episodes)")

    def compact(self, *, max_segments: int = 1) -> None:
        """Merge segments, smallest first, until at most ``max_segments`` are left (or
        what remains cannot merge under the peak limit of one segment); segments holding
        removed episodes are always rewritten. Postings are rebuilt from stored peaks."""
        self._require_writer()
        layout = self._require_layout()
        live = set(self.episodes)
        dirty = {s.path.name for s in self.segments
                 if any(int(k) not in live for k in s.episode_keys)}
        merge: list[Segment] = []
        peaks = 0
        for seg in sorted(self.segments, key=lambda s: len(s.peak_frame)):
            after = len(self.segments) - len(merge) + (1 if merge else 0)
            if after <= max_segments and seg.path.name not in dirty:
                continue
            if peaks + len(seg.peak_frame) > layout.MAX_PEAK_INDEX:
                continue
            merge.append(seg)
            peaks += len(seg.peak_frame)
        if not merge or (len(merge) == 1 and merge[0].path.name not in dirty):
            return
        keys: list[int] = []
        data: list[EpisodeData] = []
        for seg in merge:
            for local, key in enumerate(seg.episode_keys):
                if int(key) in live:
                    keys.append(int(key))
                    data.append(seg.episode_data(local))
        written: list[str] = []
        try:
            with self.catalog.transaction() as db:
                for name, size, digest, seg_keys in self._write_batches(keys, data):
                    written.append(name)
                    seg_id = self.catalog.add_segment(db, file=name, size=size, sha256=digest)
                    db.executemany("UPDATE episodes SET seg_id=? WHERE key=?",
                                   [(seg_id, k) for k in seg_keys])
                self._drop_empty_segments(db)
        except OSError as exc:
            self._forget(written)
            raise write_error(exc, self.root) from None
        except BaseException:
            self._forget(written)
            raise
        self.reload()
        self._remove_strays()


def is_read_only(path: Path) -> bool:
    """Whether files cannot be created in ``path`` (a read-only mount, no permission)."""
    try:
        probe = path / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        return is_read_only_error(exc)
    return False


def discard_index(path: str | Path) -> None:
    """Delete the index at ``path`` (its catalogue and segments; nothing else in the
    folder), for a rebuild. A missing index is fine; a locked one is not touched."""
    root = Path(path).expanduser()
    if not (root / CATALOG_NAME).exists() and not (root / SEGMENT_DIR).exists():
        return
    try:
        lock = open(root / LOCK_NAME, "ab")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise write_error(exc, root) from None
    with lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexLockedError(f"another process is writing the index at {root}") from None
        try:
            for f in root.glob(CATALOG_NAME + "*"):
                f.unlink()
            for folder in (root / SEGMENT_DIR, root / PICTURE_DIR):
                if folder.is_dir():
                    for f in folder.iterdir():
                        f.unlink()
        except OSError as exc:
            raise write_error(exc, root) from None
