"""API keys: stored hashed in the service database, compared in constant time.

A key reads ``cwk_<id>_<secret>``. The id finds the row; only the SHA-256 of the secret is
stored (the secret is 32 random bytes, so a slow hash adds nothing), and the digests are
compared with :func:`hmac.compare_digest`. The database is a SQLite file or, for
replicas that must agree, PostgreSQL (:mod:`citywok.web.db`); every check reads it, so a
key created or revoked through one replica holds on all at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limits import parse
from sqlalchemy import select, update

from citywok.errors import ConfigError, KeyNotFoundError
from citywok.web.db import Database, api_keys, database_errors, sqlite_url

PREFIX = "cwk"


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
    """The key table of the service database (thread-safe: a pooled engine)."""

    def __init__(self, db: Database | Path | str) -> None:
        if isinstance(db, Path):
            db = Database(sqlite_url(db))
        elif isinstance(db, str):
            db = Database(db)
        self.db = db

    def create(self, name: str, *, admin: bool = False, rate_limit: str | None = None) -> NewKey:
        if rate_limit is not None:
            try:
                parse(rate_limit)
            except ValueError:
                raise ConfigError(f"not a rate limit: {rate_limit!r} (e.g. '500/hour')") from None
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32).replace("_", "-")
        now = time.time()
        with database_errors("key"), self.db.ready().begin() as conn:
            conn.execute(api_keys.insert().values(
                key_id=key_id, name=name, secret_sha256=_digest(secret), admin=admin,
                rate_limit=rate_limit, created_at=now))
        key = ApiKey(key_id, name, admin, rate_limit, now, None)
        return NewKey(key=key, token=f"{PREFIX}_{key_id}_{secret}")

    def list(self) -> list[ApiKey]:
        with database_errors("key"), self.db.ready().connect() as conn:
            rows = conn.execute(select(*_COLUMNS).order_by(api_keys.c.created_at)).all()
        return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        with database_errors("key"), self.db.ready().begin() as conn:
            done = conn.execute(update(api_keys).where(
                api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)).values(
                revoked_at=time.time()))
            if done.rowcount == 0:
                raise KeyNotFoundError(f"no active key {key_id!r}")
            row = conn.execute(select(*_COLUMNS).where(api_keys.c.key_id == key_id)).one()
        return _key(row)

    def verify(self, token: str) -> ApiKey | None:
        """The active key ``token`` belongs to, or ``None``."""
        parts = split_token(token)
        wanted = _digest(parts[1] if parts else token)
        row = None
        if parts is not None:
            with database_errors("key"), self.db.ready().connect() as conn:
                row = conn.execute(select(*_COLUMNS, api_keys.c.secret_sha256).where(
                    api_keys.c.key_id == parts[0])).first()
        # Compare even when no row was found, so timing says nothing about key ids.
        stored = row.secret_sha256 if row is not None else "0" * 64
        same = hmac.compare_digest(stored.encode(), wanted.encode())
        if row is None or not same or row.revoked_at is not None:
            return None
        return _key(row)


_COLUMNS = (api_keys.c.key_id, api_keys.c.name, api_keys.c.admin, api_keys.c.rate_limit,
            api_keys.c.created_at, api_keys.c.revoked_at)


def _key(row: Any) -> ApiKey:
    return ApiKey(row.key_id, row.name, bool(row.admin), row.rate_limit, row.created_at,
                  row.revoked_at)
