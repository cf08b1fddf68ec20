"""API keys: stored hashed in SQLite, compared in constant time.

A key reads ``cwk_<id>_<secret>``. The id finds the row; only the SHA-256 of the secret is
stored (the secret is 32 random bytes, so a slow hash adds nothing), and the digests are
compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from limits import parse

from citywok.errors import ConfigError

PREFIX = "cwk"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    rate_limit TEXT,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""


@dataclass(frozen=True)
class ApiKey:
    """What is known about a key (never its secret)."""

    key_id: str
    name: str
    admin: bool
    #: Its own limit ('limits' notation), or ``None`` for the keyed tier's default.
    rate_limit: str | None
    created_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    #: The full token; shown once, never stored.
    token: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    parts = token.strip().split("_")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class KeyStore:
    """The key database (one short-lived connection per call: safe across threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self, *, create: bool = False) -> sqlite3.Connection:
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_file():
            raise FileNotFoundError(self.path)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        if create:
            db.executescript(_SCHEMA)
        return db

    def create(self, name: str, *, admin: bool = False, rate_limit: str | None = None) -> NewKey:
        if rate_limit is not None:
            try:
                parse(rate_limit)
            except ValueError:
                raise ConfigError(f"not a rate limit: {rate_limit!r} (e.g. '500/hour')") from None
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32).replace("_", "-")
        now = time.time()
        db = self._connect(create=True)
        try:
            db.execute("INSERT INTO api_keys(key_id, name, secret_sha256, admin, rate_limit, "
                       "created_at) VALUES(?,?,?,?,?,?)",
                       (key_id, name, _digest(secret), int(admin), rate_limit, now))
        finally:
            db.close()
        key = ApiKey(key_id, name, admin, rate_limit, now, None)
        return NewKey(key=key, token=f"{PREFIX}_{key_id}_{secret}")

    def list(self) -> list[ApiKey]:
        try:
            db = self._connect()
        except FileNotFoundError:
            return []
        try:
            rows = db.execute("SELECT key_id, name, admin, rate_limit, created_at, revoked_at "
                              "FROM api_keys ORDER BY created_at").fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()
        return [ApiKey(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        try:
            db = self._connect()
        except FileNotFoundError:
            raise ConfigError(f"no key {key_id!r}") from None
        try:
            cur = db.execute("UPDATE api_keys SET revoked_at=? WHERE key_id=? AND "
                             "revoked_at IS NULL", (time.time(), key_id))
            if cur.rowcount == 0:
                raise ConfigError(f"no active key {key_id!r}")
        finally:
            db.close()
        return next(k for k in self.list() if k.key_id == key_id)

    def verify(self, token: str) -> ApiKey | None:
        """The active key ``token`` belongs to, or ``None``."""
        parts = split_token(token)
        wanted = _digest(parts[1] if parts else token)
        row = None
        if parts is not None:
            try:
                db = self._connect()
            except FileNotFoundError:
                db = None
            if db is not None:
                try:
                    row = db.execute(
                        "SELECT key_id, name, admin, rate_limit, created_at, revoked_at, "
                        "secret_sha256 FROM api_keys WHERE key_id=?", (parts[0],)).fetchone()
                except sqlite3.OperationalError:
                    row = None
                finally:
                    db.close()
        # Compare even when no row was found, so timing says nothing about key ids.
        stored = row[6] if row else "0" * 64
        same = hmac.compare_digest(stored.encode(), wanted.encode())
        if row is None or not same or row[5] is not None:
            return None
        return ApiKey(row[0], row[1], bool(row[2]), row[3], row[4], row[5])
