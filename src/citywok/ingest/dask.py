"""Ingest on a Dask cluster: the same jobs as :mod:`citywok.ingest.local`, run on the
cluster's workers; the client (``citywok index``) commits, so the index is the same as a
local run's, byte for byte.

* ``tcp://scheduler:8786``: an existing cluster. Every worker needs CityWok and ffmpeg
  installed and the library mounted at the same path as on the client (a job names a
  file; it does not carry it).
* ``local:N``: a cluster of ``N`` worker processes on this machine, started and stopped
  with the run.

A worker that dies mid-way loses nothing: the scheduler runs its jobs again on another
worker (up to ``distributed.scheduler.allowed-failures`` times), and nothing reaches the
index before the client has the fingerprint in hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from citywok.defaults import install_hint
from citywok.errors import ConfigError
from citywok.ingest import FingerprintJob, JobOutcome, run_job


def _distributed() -> Any:
    """The ``distributed`` package, untyped (it ships no annotations mypy can use)."""
    import importlib

    return importlib.import_module("distributed")


class DaskFingerprinter:
    """Runs jobs on a Dask cluster, at most ``2 * workers`` queued ahead."""

    def __init__(self, address: str, *, connect_timeout_s: float = 30.0) -> None:
        try:
            dist = _distributed()
        except ImportError:
            raise ConfigError(f"--dask needs Dask: {install_hint('dask')}") from None
        self._cluster: Any = None
        if address.startswith("local:"):
            try:
                workers = int(address.removeprefix("local:"))
            except ValueError:
                workers = 0
            if workers < 1:
                raise ConfigError(f"not a local cluster: {address!r} (e.g. local:4)")
            # One single-threaded process per worker: fingerprinting holds the GIL.
            self._cluster = dist.LocalCluster(n_workers=workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None,
                                         silence_logs=40)
            self.client: Any = dist.Client(self._cluster)
        elif address.startswith(("tcp://", "tls://", "ucx://", "ws://", "wss://")):
            try:
                self.client = dist.Client(address, timeout=f"{connect_timeout_s}s")
            except OSError as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}"
                                  ) from None
        else:
            raise ConfigError(f"not a Dask address: {address!r} (tcp://host:8786 or local:N)")

    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})))

    def run(self, jobs: Sequence[FingerprintJob]) -> Iterator[tuple[int, JobOutcome]]:
        run_id = uuid.uuid4().hex[:8]
        todo = iter(enumerate(jobs))
        positions: dict[str, int] = {}
        ahead = 2 * self.workers()

        def submit(n: int, job: FingerprintJob) -> Any:
            # pure=False: the same file twice is two jobs (it may have changed between).
            fut = self.client.submit(run_job, job, key=f"citywok-fingerprint-{run_id}-{n}",
                                     pure=False)
            positions[fut.key] = n
            return fut

        first: list[Any] = []
        for _ in range(ahead):
            nxt = next(todo, None)
            if nxt is None:
                break
            first.append(submit(*nxt))
        if not first:
            return
        running = _distributed().as_completed(first)
        pending = set(first)
        try:
            for fut in running:
                pending.discard(fut)
                outcome: JobOutcome = fut.result()
                yield positions.pop(fut.key), outcome
                fut.release()
                nxt = next(todo, None)
                if nxt is not None:
                    new = submit(*nxt)
                    pending.add(new)
                    running.add(new)
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
