"""Ingest on this machine: in the calling process, or in a pool of worker processes.

Workers are started with ``spawn`` (not ``fork``): a forked worker would inherit the
writer's lock on the index and keep it while it lives. Each worker also asks the kernel
to kill it when its parent dies (``PR_SET_PDEATHSIG``), so ``kill -9`` of ``citywok
index -w N`` leaves no worker running, and the next writer gets the lock at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from citywok.ingest import FingerprintJob, JobOutcome, run_job

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: be killed when the parent process goes (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died before prctl took effect: then we were re-parented.
    if os.getppid() != parent_pid:
        os._exit(1)
    # A Ctrl-C in the terminal (or a service manager's SIGTERM) reaches the whole process
    # group; the parent decides, keeps what is finished and stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while workers are started (the pool starts them in
    ``submit``): a worker is born with them blocked, so a Ctrl-C that reaches the whole
    process group while it is still importing (seconds, before its initializer runs)
    cannot make it print a traceback; this process gets any held signal afterwards."""
    held = {signal.SIGINT, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


class InlineFingerprinter:
    """Runs every job in the calling process, one after another."""

    def run(self, jobs: Sequence[FingerprintJob]) -> Iterator[tuple[int, JobOutcome]]:
        for n, job in enumerate(jobs):
            yield n, run_job(job)

    def close(self) -> None:
        pass


class ProcessFingerprinter:
    """Runs jobs in ``workers`` spawned processes, at most ``2 * workers`` queued ahead
    (so a huge library does not pile up finished fingerprints in memory)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_die_with_parent, initargs=(os.getpid(),))

    def run(self, jobs: Sequence[FingerprintJob]) -> Iterator[tuple[int, JobOutcome]]:
        running: dict[Future[JobOutcome], int] = {}
        todo = iter(enumerate(jobs))
        ahead = 2 * self.workers
        try:
            while True:
                while len(running) < ahead:
                    nxt = next(todo, None)
                    if nxt is None:
                        break
                    with _signals_held():
                        running[self._pool.submit(run_job, nxt[1])] = nxt[0]
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield running.pop(fut), fut.result()
        finally:
            for fut in running:
                fut.cancel()

    def close(self) -> None:
        # Stop at once: running jobs are abandoned (their results would not be committed).
        procs = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join(timeout=5)


def local_fingerprinter(workers: int) -> InlineFingerprinter | ProcessFingerprinter:
    """The in-process runner for one worker, a process pool for more."""
    return InlineFingerprinter() if workers <= 1 else ProcessFingerprinter(workers)
