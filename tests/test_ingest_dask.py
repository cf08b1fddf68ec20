"""Ingest on a real Dask cluster (a scheduler and two worker processes started here):
the same index as a local run, the same incremental skip, nothing lost when a worker
is killed mid-way."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from citywok.index import SEGMENT_DIR, Index
from citywok.ingest import FingerprintJob, JobOutcome
from citywok.pipeline import drive, index_paths
from tests.conftest import DemoLibrary

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed "
                                  "(pip install -e '.[dask]')")
from citywok.ingest.dask import DaskFingerprinter  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    try:
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=40)
    except Exception as exc:  # no sockets, no processes: say why
        pytest.skip(f"a local Dask cluster could not start: {exc}")
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


def _fingerprint(index: Index) -> tuple[list[tuple[Any, ...]], list[bytes]]:
    """What must match between two runs: the episodes and the segments' bytes."""
    episodes = sorted((e.episode_id, e.show, e.season, e.episode, e.duration_s)
                      for e in index.episodes.values())
    segments = sorted((index.path / SEGMENT_DIR / s.path.name).read_bytes()
                      for s in index.segments)
    return episodes, segments


def _build(folder: Path, dest: Path, runner: Any = None) -> Any:
    with Index.open(dest, writable=True) as idx:
        summary = drive(index_paths(idx, [folder], fingerprinter=runner))
        return summary, _fingerprint(idx)


def test_dask_builds_the_same_index_and_skips_the_same_files(
        scheduler: str, demo_library: DemoLibrary, tmp_path: Path) -> None:
    _, local = _build(demo_library.folder, tmp_path / "local")
    summary, on_dask = _build(demo_library.folder, tmp_path / "dask",
                              DaskFingerprinter(scheduler))
    assert len(summary.added) == 4 and not summary.failed
    assert on_dask == local
    again, _ = _build(demo_library.folder, tmp_path / "dask", DaskFingerprinter(scheduler))
    assert not again.added and len(again.skipped) == 4


class _KillsAWorker(DaskFingerprinter):
    """The real adapter; after the first result one worker process is killed -9."""

    killed: list[int]

    def run(self, jobs: Sequence[FingerprintJob]) -> Iterator[tuple[int, JobOutcome]]:
        self.killed = []
        for n, outcome in super().run(jobs):
            if not self.killed:
                pids = self.client.run(os.getpid)
                victim = sorted(pids.values())[0]
                os.kill(victim, signal.SIGKILL)
                self.killed.append(victim)
            yield n, outcome


def test_a_worker_killed_mid_way_loses_nothing(scheduler: str, demo_library: DemoLibrary,
                                               tmp_path: Path) -> None:
    folder = tmp_path / "library"
    shutil.copytree(demo_library.folder, folder)
    for n, episode in enumerate(sorted(folder.glob("*.m4a"))):  # more jobs than workers
        shutil.copy(episode, folder / f"Demo Show - S02E0{n + 1} - Again.m4a")
    _, local = _build(folder, tmp_path / "local")
    runner = _KillsAWorker(scheduler)
    summary, on_dask = _build(folder, tmp_path / "dask", runner)
    assert runner.killed, "no worker was killed"
    assert not summary.failed
    assert on_dask == local
