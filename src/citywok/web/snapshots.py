"""``citywok serve`` with snapshots: pull the current one at start, then poll for newer.

This runs in the ``serve`` process only (before uvicorn starts, then on a thread), never
in the workers: the workers see the index path's symlink move and reopen the index like
after any other change (:class:`~citywok.web.state.IndexHolder`), while requests already
running finish on the version they opened, which stays on disk.
"""

from __future__ import annotations

import logging
import threading

from citywok.errors import CityWokError
from citywok.store.snapshot import PullResult, S3Config, SnapshotStore, poll
from citywok.web.core.config import Settings

log = logging.getLogger("citywok.snapshot")


def snapshot_store(settings: Settings) -> SnapshotStore | None:
    if not settings.snapshot_url:
        return None
    secret = settings.s3_secret_access_key
    return SnapshotStore(settings.snapshot_url, S3Config(
        endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret is not None else None))


def start(settings: Settings, store: SnapshotStore) -> PullResult | None:
    """Pull now (a failure is raised only when there is no index to serve), then poll on
    a daemon thread. Returns the first pull, ``None`` when it failed."""
    first: PullResult | None = None
    try:
        first = store.pull(settings.index)
    except CityWokError as exc:
        if not (settings.index / "catalog.sqlite").is_file():
            raise
        log.warning("snapshot pull failed, serving the index already here: %s", exc.message)
    if settings.snapshot_poll_interval_s > 0:
        stopped = threading.Event()
        thread = threading.Thread(
            target=poll, name="citywok-snapshot-poll", daemon=True,
            args=(store, settings.index),
            kwargs={"interval_s": settings.snapshot_poll_interval_s, "stop": stopped.wait,
                    "on_pull": lambda r: log.info("pulled snapshot %s", r.snapshot_id),
                    "on_error": lambda e: log.warning("snapshot pull failed: %s", e.message)})
        thread.start()
    return first
