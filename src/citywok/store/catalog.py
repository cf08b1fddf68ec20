"""Episode metadata, the list of live index segments, and shared material, in SQLite.

SQLite is the index's single commit point: a segment file only counts once a transaction
here names it, so a crash at any moment leaves the previous state whole.

A new catalogue is built under a temporary name and renamed into place once its schema
and parameters are written, so a reader never sees a half-made one. A reader opens it
read-only; where the folder cannot be written (a read-only mount, a shipped image, a full
disk) and SQLite cannot make its shared-memory file, it opens it as immutable.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from citywok.errors import EpisodeNotFoundError, IndexFormatError
from citywok.result import Episode, SharedKind, SharedStretch

#: 1: CityWok 0.1; 2: watch URLs, shared material, segment format 2.
SCHEMA_VERSION = 2
REBUILD_HINT = "run `citywok index --rebuild FOLDER` to rebuild it"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    seg_id INTEGER PRIMARY KEY,
    file TEXT NOT NULL UNIQUE,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS episodes (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    episode_id TEXT NOT NULL UNIQUE,
    show TEXT NOT NULL,
    season INTEGER,
    episode INTEGER,
    title TEXT,
    duration_s REAL NOT NULL,
    source_path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    file_mtime_ns INTEGER NOT NULL,
    seg_id INTEGER NOT NULL REFERENCES segments(seg_id),
    added_at REAL NOT NULL,
    watch_url TEXT
);
CREATE INDEX IF NOT EXISTS episodes_path ON episodes(source_path);
CREATE INDEX IF NOT EXISTS episodes_hash ON episodes(content_hash);
CREATE TABLE IF NOT EXISTS shared (
    episode_key INTEGER NOT NULL REFERENCES episodes(key) ON DELETE CASCADE,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    kind TEXT NOT NULL,
    episodes INTEGER NOT NULL,
    grp INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS shared_episode ON shared(episode_key);
"""
#: One picture file per episode that has pictures (issue 17), named and checksummed here
#: like segments; it goes with its episode. Added to older catalogues by their writer.
_PICTURES = """
CREATE TABLE IF NOT EXISTS pictures (
    episode_key INTEGER PRIMARY KEY REFERENCES episodes(key) ON DELETE CASCADE,
    family TEXT NOT NULL,
    file TEXT NOT NULL UNIQUE,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class EpisodeRow:
    key: int
    episode: Episode
    file_size: int
    file_mtime_ns: int
    seg_id: int


@dataclass(frozen=True)
class PictureRow:
    """An episode's picture file: which family made it, its name, size and SHA-256."""

    episode_key: int
    family: str
    file: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class SegmentRow:
    seg_id: int
    file: str
    bytes: int
    sha256: str


def create_catalog(path: Path, meta: dict[str, str]) -> None:
    """Make a catalogue at ``path`` with its schema and ``meta``, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.executescript(_SCHEMA + _PICTURES)
            rows = {"schema_version": str(SCHEMA_VERSION), **meta}
            db.executemany("INSERT INTO meta(key, value) VALUES(?, ?)", rows.items())
        finally:
            db.close()
        os.replace(tmp, path)
    except (OSError, sqlite3.Error):
        tmp.unlink(missing_ok=True)
        raise


class Catalog:
    """Thin typed access to the catalogue database."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        try:
            self._db = self._connect(path, readonly)
            version = self.get_meta("schema_version")
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(f"the catalogue database is unreadable ({exc})") from None
        if version is None or int(version) != SCHEMA_VERSION:
            raise IndexFormatError(
                f"the index was built by another CityWok (catalogue schema {version}, this "
                f"one reads {SCHEMA_VERSION}): {REBUILD_HINT}")
        if not readonly:
            try:
                self._db.executescript(_PICTURES)
            except sqlite3.DatabaseError as exc:
                raise IndexFormatError(f"the catalogue cannot be written ({exc})") from None

    @staticmethod
    def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
        if not readonly:
            db = sqlite3.connect(f"file:{path}", uri=True, isolation_level=None,
                                 check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            return db
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                             check_same_thread=False, timeout=30)
        try:
            db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
            return db
        except sqlite3.OperationalError:
            db.close()
            if os.access(path.parent, os.W_OK) and not _wal_pending(path):
                raise
        # A WAL database whose folder cannot be written: SQLite cannot make its -shm
        # file, so read it as the immutable file it is there (nobody can write it).
        return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True,
                               isolation_level=None, check_same_thread=False)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed whole, or rolled back whole (also when the
        commit itself fails, as on a full disk)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str, db: sqlite3.Connection | None = None) -> None:
        (db or self._db).execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    def get_json(self, key: str) -> object:
        raw = self.get_meta(key)
        return None if raw is None else json.loads(raw)

    def segments(self) -> list[SegmentRow]:
        rows = self._db.execute("SELECT seg_id, file, bytes, sha256 FROM segments ORDER BY seg_id")
        return [SegmentRow(*r) for r in rows]

    def add_segment(self, db: sqlite3.Connection, *, file: str, size: int, sha256: str) -> int:
        cur = db.execute(
            "INSERT INTO segments(file, bytes, sha256, created_at) VALUES(?, ?, ?, ?)",
            (file, size, sha256, time.time()))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def next_episode_key(self, db: sqlite3.Connection) -> int:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name='episodes'").fetchone()
        return (int(row[0]) if row else 0) + 1

    def add_episode(self, db: sqlite3.Connection, *, key: int, ep: Episode, file_size: int,
                    file_mtime_ns: int, seg_id: int) -> None:
        db.execute(
            "INSERT INTO episodes(key, episode_id, show, season, episode, title, duration_s, "
            "source_path, content_hash, file_size, file_mtime_ns, seg_id, added_at, watch_url) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, ep.episode_id, ep.show, ep.season, ep.episode, ep.title, ep.duration_s,
             ep.source_path, ep.content_hash, file_size, file_mtime_ns, seg_id, time.time(),
             ep.watch_url))

    def _rows(self, where: str = "", args: tuple[object, ...] = ()) -> list[EpisodeRow]:
        rows = self._db.execute(
            "SELECT key, episode_id, show, season, episode, title, duration_s, source_path, "
            f"content_hash, file_size, file_mtime_ns, seg_id, watch_url FROM episodes {where} "
            "ORDER BY show, season, episode, episode_id", args)
        return [
            EpisodeRow(key=r[0], episode=Episode(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
                                                   watch_url=r[12]), file_size=r[9],
                       file_mtime_ns=r[10], seg_id=r[11])
            for r in rows
        ]

    def episodes(self) -> list[EpisodeRow]:
        return self._rows()

    def by_path(self, source_path: str) -> EpisodeRow | None:
        rows = self._rows("WHERE source_path=?", (source_path,))
        return rows[0] if rows else None

    def by_hash(self, content_hash: str) -> EpisodeRow | None:
        rows = self._rows("WHERE content_hash=?", (content_hash,))
        return rows[0] if rows else None

    def by_id(self, episode_id: str) -> EpisodeRow:
        rows = self._rows("WHERE episode_id=?", (episode_id,))
        if not rows:
            raise EpisodeNotFoundError(f"no episode {episode_id!r} in the index")
        return rows[0]

    def shared(self) -> list[SharedStretch]:
        rows = self._db.execute(
            "SELECT episode_key, start_s, end_s, kind, episodes, grp FROM shared "
            "ORDER BY episode_key, start_s")
        return [SharedStretch(r[0], r[1], r[2], SharedKind(r[3]), r[4], r[5]) for r in rows]

    def replace_shared(self, db: sqlite3.Connection, episode_keys: Sequence[int],
                       rows: Sequence[SharedStretch], *, show: str | None = None) -> None:
        """Replace the shared material of these episodes (one show's, found anew), and
        note which episodes it was found among (``shared_among``)."""
        db.executemany("DELETE FROM shared WHERE episode_key=?", [(k,) for k in episode_keys])
        if show is not None:
            self.set_meta(_SHARED_AMONG + show, _key_list(episode_keys), db)
        # Group numbers are per show; offset them past those already stored.
        row = db.execute("SELECT COALESCE(MAX(grp), -1) + 1 FROM shared").fetchone()
        base = int(row[0])
        db.executemany("INSERT INTO shared(episode_key, start_s, end_s, kind, episodes, grp) "
                       "VALUES(?,?,?,?,?,?)",
                       [(r.episode_key, r.start_s, r.end_s, r.kind.value, r.episodes,
                         base + r.group) for r in rows])

    def shared_among(self, show: str) -> str | None:
        """The episodes (keys, as stored) a show's shared material was last found among;
        ``None`` when it never was."""
        return self.get_meta(_SHARED_AMONG + show)

    def pictures(self) -> list[PictureRow]:
        """Every live episode's picture file (none in a catalogue from before pictures)."""
        try:
            rows = self._db.execute(
                "SELECT episode_key, family, file, bytes, sha256 FROM pictures "
                "ORDER BY episode_key").fetchall()
        except sqlite3.OperationalError:
            return []
        return [PictureRow(*r) for r in rows]

    def add_picture(self, db: sqlite3.Connection, row: PictureRow) -> None:
        db.execute("INSERT INTO pictures(episode_key, family, file, bytes, sha256) "
                   "VALUES(?,?,?,?,?)",
                   (row.episode_key, row.family, row.file, row.bytes, row.sha256))

    def episode_id_taken(self, episode_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM episodes WHERE episode_id=?", (episode_id,))
        return row.fetchone() is not None


_SHARED_AMONG = "shared_among:"


def _key_list(keys: Iterable[int]) -> str:
    return ",".join(str(k) for k in sorted(keys))


def shared_is_current(stored: str | None, keys: Iterable[int]) -> bool:
    """Whether shared material noted as found among ``stored`` is that of ``keys``."""
    return stored == _key_list(keys)


def _wal_pending(path: Path) -> bool:
    """Whether the database has a write-ahead log beside it (it is in WAL mode)."""
    return path.with_name(path.name + "-wal").exists() or _header_says_wal(path)


def _header_says_wal(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(20)
    except OSError:
        return False
    # File format bytes 18 and 19 are 2 in WAL mode.
    return len(head) == 20 and head[18] == 2 and head[19] == 2
