"""Shared answers: ``/r/<id>`` pages and the previews of an answer read them from here.

Only the answer is kept (show, episode, times, confidence: what the API returned, less
the clip's file name), never the clip, and each expires after ``share_ttl_days``. Ids are
short (8 URL-safe characters, 48 random bits) so a link fits a chat message.

:class:`ShareStore` is the interface the web layer uses; :class:`SqliteShareStore` keeps
shares in a SQLite file (one short-lived connection per call: safe across threads and
worker processes). A store in the service's main database can take its place later by
offering the same three methods.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

#: What a share id looks like (``secrets.token_urlsafe(6)``).
SHARE_ID = re.compile(r"^[A-Za-z0-9_-]{8}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shares (
    share_id TEXT PRIMARY KEY,
    answer TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS shares_expiry ON shares(expires_at);
"""


@dataclass(frozen=True)
class Share:
    share_id: str
    #: The answer as the API gave it, without the clip's name and the links made from it.
    answer: Mapping[str, Any]
    created_at: float
    expires_at: float


class ShareStore(Protocol):
    def put(self, answer: Mapping[str, Any]) -> Share:
        """Keep ``answer`` under a new id until it expires."""

    def get(self, share_id: str) -> Share | None:
        """The share, or ``None`` when it is unknown or expired."""

    def purge(self) -> int:
        """Drop expired shares; how many went."""


class SqliteShareStore:
    def __init__(self, path: Path, *, ttl_s: float) -> None:
        self.path = path
        self.ttl_s = ttl_s
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        if not self._ready:
            db.executescript(_SCHEMA)
            self._ready = True
        return db

    def put(self, answer: Mapping[str, Any]) -> Share:
        now = time.time()
        text = json.dumps(answer, separators=(",", ":"))
        db = self._connect()
        try:
            if secrets.randbelow(100) == 0:  # now and then, not on every write
                db.execute("DELETE FROM shares WHERE expires_at < ?", (now,))
            for _ in range(5):
                share_id = secrets.token_urlsafe(6)
                try:
                    db.execute("INSERT INTO shares(share_id, answer, created_at, expires_at) "
                               "VALUES(?,?,?,?)", (share_id, text, now, now + self.ttl_s))
                except sqlite3.IntegrityError:
                    continue  # the same 48 random bits twice: draw again
                return Share(share_id, json.loads(text), now, now + self.ttl_s)
        finally:
            db.close()
        raise RuntimeError("could not draw a free share id")

    def get(self, share_id: str) -> Share | None:
        if not SHARE_ID.match(share_id) or not self.path.is_file():
            return None
        db = self._connect()
        try:
            row = db.execute("SELECT answer, created_at, expires_at FROM shares "
                             "WHERE share_id=? AND expires_at >= ?",
                             (share_id, time.time())).fetchone()
        finally:
            db.close()
        if row is None:
            return None
        return Share(share_id, json.loads(row[0]), float(row[1]), float(row[2]))

    def purge(self) -> int:
        db = self._connect()
        try:
            return db.execute("DELETE FROM shares WHERE expires_at < ?",
                              (time.time(),)).rowcount
        finally:
            db.close()
