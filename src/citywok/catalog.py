"""Episode metadata and the list of live index segments, in SQLite.

SQLite is the index's single commit point: a segment file only counts once a transaction
here names it, so a crash at any moment leaves the previous state whole.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from citywok.errors import EpisodeNotFoundError, IndexFormatError
from citywok.result import Episode

SCHEMA_VERSION = 1

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
"""


@dataclass(frozen=True)
class EpisodeRow:
    key: int
    episode: Episode
    file_size: int
    file_mtime_ns: int
    seg_id: int


@dataclass(frozen=True)
class SegmentRow:
    seg_id: int
    file: str
    bytes: int
    sha256: str


class Catalog:
    """Thin typed access to the catalogue database."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
        try:
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None,
                                       check_same_thread=False, timeout=30)
            if not readonly:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.executescript(_SCHEMA)
            self._db.execute("PRAGMA foreign_keys=ON")
            version = self.get_meta("schema_version")
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(f"the catalogue database is unreadable ({exc})") from None
        if version is None and not readonly:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif version is not None and int(version) != SCHEMA_VERSION:
            raise IndexFormatError(
                f"catalogue schema {version} is not supported (this CityWok reads "
                f"{SCHEMA_VERSION})"
            )

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

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

    def episode_id_taken(self, episode_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM episodes WHERE episode_id=?", (episode_id,))
        return row.fetchone() is not None
