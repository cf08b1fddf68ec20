"""The service's own state, kept out of the index: API keys and usage (``keys.sqlite``)
and shared answers (``shares.sqlite``) live in ``CITYWOK_DATA_DIR``.

Older versions kept them inside the index folder (or beside it, with snapshots), where a
snapshot pull replaced them. :func:`adopt_old_files` copies such a file to its new place
once, when nothing is there yet; the old file is left where it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from citywok.errors import ConfigError
from citywok.web.core.config import Settings


def _old_places(settings: Settings) -> list[tuple[Path, Path]]:
    """(old file, new file) for each file that moved and was not given a path of its own."""
    index = settings.index.expanduser()
    moves: list[tuple[Path, Path]] = []
    if settings.keys_db is None and settings.database_url is None:
        beside, inside = index.parent / f"{index.name}.keys.sqlite", index / "keys.sqlite"
        # With snapshots the file in use was the one beside the index.
        for old in ((beside, inside) if settings.snapshot_url else (inside, beside)):
            moves.append((old, settings.keys_path))
    if settings.shares_db is None:
        moves.append((index / "shares.sqlite", settings.shares_path))
    return moves


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    # Workers of one service start together: one copies, the others then find the copy.
    with (folder / ".migrate.lock").open("wb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield


def _copy(old: Path, new: Path) -> None:
    """A consistent copy (SQLite's online backup: the WAL's committed pages too), put in
    place with one rename."""
    tmp = new.with_name(f".{new.name}.{secrets.token_hex(4)}")
    try:
        source = sqlite3.connect(f"file:{old}?mode=ro", uri=True, timeout=30)
        try:
            target = sqlite3.connect(tmp)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
        os.replace(tmp, new)
    finally:
        tmp.unlink(missing_ok=True)


def adopt_old_files(settings: Settings) -> list[tuple[Path, Path]]:
    """Copy keys and shares from their old places into the data directory, once (only
    where the new file does not exist yet); the (old, new) pairs copied."""
    moves = [(old, new) for old, new in _old_places(settings) if old.is_file()]
    if not moves:
        return []
    done: list[tuple[Path, Path]] = []
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with _locked(settings.data_dir):
            for old, new in moves:
                if new.exists() or any(n == new for _, n in done):
                    continue
                new.parent.mkdir(parents=True, exist_ok=True)
                _copy(old, new)
                done.append((old, new))
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot move the service's data into {settings.data_dir}: "
                          f"{exc}") from None
    return done
