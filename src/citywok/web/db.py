"""The service's own database (API keys, usage figures), given by URL: a SQLite file by
default, PostgreSQL when several replicas must share it (``CITYWOK_DATABASE_URL``).

Tables are declared once here (SQLAlchemy Core) and created or upgraded by the Alembic
migrations in ``migrations/``, run when a process first touches the database; on
PostgreSQL an advisory lock lets replicas that start together migrate one at a time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from citywok.errors import DatabaseUnavailableError

metadata = MetaData()

api_keys = Table(
    "api_keys", metadata,
    Column("key_id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("admin", Boolean, nullable=False, default=False),
    Column("rate_limit", String(64)),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

#: One row per identification answered or refused: no IP address, no clip content.
usage_events = Table(
    "usage_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", String(10), nullable=False),  # YYYY-MM-DD, UTC
    Column("at", Float, nullable=False),
    Column("kind", String(16), nullable=False),  # 'identify' or 'refused'
    #: match / ambiguous / no_match / error / cancelled, or the refusal's error code.
    Column("status", String(64), nullable=False),
    Column("source", String(16), nullable=False),  # upload / link / microphone / unknown
    Column("platform", String(100)),  # the allowed host a link matched
    Column("latency_ms", Float),
    Column("episode_id", String(200)),
)
Index("usage_day", usage_events.c.day)

_MIGRATIONS = Path(__file__).parent / "migrations"
#: Alembic runs a migration through module-level proxies (``alembic.op``,
#: ``alembic.context``): two threads migrating at once, even different databases,
#: trample each other, so one process migrates one database at a time.
_MIGRATING = threading.Lock()
#: Any number: the advisory lock replicas take while migrating PostgreSQL.
_MIGRATION_LOCK = 0x63697479


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class Database:
    """An engine plus "migrated yet?" (one per app; cheap to make)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._ready = False
        with database_errors("service"):  # a URL it cannot make sense of
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                self.engine: Engine = create_engine(url, connect_args={"timeout": 15})
                event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.engine = create_engine(url, pool_pre_ping=True, pool_size=5,
                                            max_overflow=5)

    def ready(self) -> Engine:
        """The engine, with the schema at the newest migration."""
        if not self._ready:
            with _MIGRATING:
                if not self._ready:
                    migrate(self.engine)
                    self._ready = True
        return self.engine

    def dispose(self) -> None:
        self.engine.dispose()


@contextlib.contextmanager
def database_errors(what: str) -> Iterator[None]:
    """Any database failure in the block as :class:`DatabaseUnavailableError` ("the
    ``what`` database is unavailable"), for the shells' one error table."""
    try:
        yield
    except SQLAlchemyError as exc:
        # The URL may hold a password: name the kind of failure only.
        raise DatabaseUnavailableError(
            f"the {what} database is unavailable ({type(exc).__name__})") from None


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


def migrate(engine: Engine) -> None:
    """Run the Alembic migrations up to the newest."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
