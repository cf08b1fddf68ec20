"""What one app (one worker) holds: the open index, key store, rate limiter, job pool,
share store, preview cache and following slots."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from citywok.errors import IndexNotFoundError, IndexStoreError
from citywok.index import CATALOG_NAME, SEGMENT_DIR, Index
from citywok.links.fetch import LinkPolicy
from citywok.web.admission import Admission
from citywok.web.core.config import Settings
from citywok.web.datadir import adopt_old_files
from citywok.web.db import Database
from citywok.web.following import FollowSlots
from citywok.web.keys import KeyStore
from citywok.web.previews import PreviewCache
from citywok.web.ratelimit import RateLimiter
from citywok.web.security import Network, parse_networks
from citywok.web.shares import ShareStore, SqliteShareStore
from citywok.web.usage import UsageLog

log = logging.getLogger("citywok.web")


class IndexHolder:
    """The read-only index of this worker, swapped whole when it changes on disk.

    A request takes :meth:`get` once and keeps that object, so a reload never changes an
    index under a running identification; the old one is freed when nothing uses it.
    """

    def __init__(self, path: Path, *, check_interval_s: float) -> None:
        self.path = path
        self.check_interval_s = check_interval_s
        self._index: Index | None = None
        self._stamp: tuple[int, ...] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def _disk_stamp(self, index: Index | None) -> tuple[int, ...]:
        paths = [self.path / CATALOG_NAME, self.path / (CATALOG_NAME + "-wal")]
        if index is not None:
            # Segments are never rewritten, so one whose stat changed was damaged in
            # place: reopening checks its checksum again, and readiness names it.
            paths += [s.path for s in index.segments]
            paths += [self.path / SEGMENT_DIR / d.file for d in index.damaged]
        out: list[int] = []
        for path in paths:
            try:
                st = path.stat()
                # The inode too: a pulled snapshot swaps the folder behind the path.
                out += [st.st_mtime_ns, st.st_size, st.st_ino]
            except OSError:
                out += [0, 0, 0]
        return tuple(out)

    def reload(self) -> Index:
        with self._lock:
            before = self._disk_stamp(None)
            index = Index.open(self.path)
            # The catalogue as it was before opening (a change meanwhile is seen next
            # time), the segments as opened.
            self._stamp = before + self._disk_stamp(index)[len(before):]
            self._index = index
            self._checked = time.monotonic()
            return index

    def get(self) -> Index:
        now = time.monotonic()
        if self._index is None or now - self._checked >= self.check_interval_s:
            self._checked = now
            if self._index is None or self._disk_stamp(self._index) != self._stamp:
                try:
                    return self.reload()
                except IndexStoreError:
                    if self._index is None:
                        raise
        assert self._index is not None
        return self._index

    @property
    def loaded(self) -> bool:
        try:
            self.get()
        except IndexStoreError:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None


@dataclass
class Services:
    settings: Settings
    index: IndexHolder
    keys: KeyStore
    limiter: RateLimiter
    usage: UsageLog
    executor: ThreadPoolExecutor
    trusted_proxies: tuple[Network, ...]
    link_policy: LinkPolicy
    #: The following sessions held now, and how many may be.
    follow_slots: FollowSlots
    #: The listening sessions (each with its decoder) held now, and how many may be.
    listen_slots: FollowSlots
    #: The bounded queue in front of ``executor`` (identifications).
    admission: Admission
    #: Shared answers (``None`` when share links are off).
    shares: ShareStore | None = None
    previews: PreviewCache | None = None

    @classmethod
    def build(cls, settings: Settings) -> Services:
        for old, new in adopt_old_files(settings):
            log.info("service data moved out of the index folder (a snapshot pull would "
                     "replace it); the old file is left as it was",
                     extra={"old": str(old), "new": str(new)})
        db = Database(settings.database)
        return cls(
            settings=settings,
            index=IndexHolder(settings.index, check_interval_s=settings.index_check_interval_s),
            keys=KeyStore(db),
            limiter=RateLimiter(settings),
            usage=UsageLog(db),
            executor=ThreadPoolExecutor(max_workers=settings.max_concurrent_jobs,
                                        thread_name_prefix="citywok-job"),
            trusted_proxies=parse_networks(settings.trusted_proxies),
            link_policy=settings.link_policy(),
            shares=(SqliteShareStore(settings.shares_path,
                                     ttl_s=settings.share_ttl_days * 86400.0)
                    if settings.share_ttl_days > 0 else None),
            previews=PreviewCache(settings.preview_cache_path,
                                  max_bytes=settings.preview_cache_max_bytes),
            follow_slots=FollowSlots(settings.listen_follow_max_sessions),
            listen_slots=FollowSlots(settings.listen_max_sessions),
            admission=Admission(slots=settings.max_concurrent_jobs,
                                max_wait_s=settings.max_queue_wait_s,
                                initial_job_s=settings.job_time_guess_s),
        )

    def start(self) -> None:
        """(Re)start the job pool: an app can live through several lifespans."""
        if self.executor._shutdown:
            self.executor = ThreadPoolExecutor(max_workers=self.settings.max_concurrent_jobs,
                                               thread_name_prefix="citywok-job")

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.index.close()


__all__ = ["IndexHolder", "IndexNotFoundError", "Services"]
