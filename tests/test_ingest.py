"""Ingest adapters: same outcomes in any order, errors as outcomes, workers that die with
their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from citywok.analysis.fingerprint import Fingerprint
from citywok.errors import CityWokError
from citywok.ingest import FingerprintJob
from citywok.ingest.local import InlineFingerprinter, ProcessFingerprinter
from citywok.params import AnalysisParams
from tests.conftest import DemoLibrary


def test_pool_gives_the_same_outcomes_as_inline(demo_library: DemoLibrary,
                                                tmp_path: Path) -> None:
    bad = tmp_path / "not-media.mp4"
    bad.write_bytes(b"this is not a video")
    media = sorted(f for f in demo_library.folder.iterdir() if f.suffix != ".json"
                   and not f.name.endswith(".npy"))
    paths = [*media[:2], bad]
    jobs = [FingerprintJob(p, AnalysisParams()) for p in paths]
    inline = dict(InlineFingerprinter().run(jobs))
    pool = ProcessFingerprinter(2)
    try:
        pooled = dict(pool.run(jobs))
    finally:
        pool.close()
    assert sorted(pooled) == [0, 1, 2]
    for n in (0, 1):
        a, b = inline[n], pooled[n]
        assert isinstance(a, Fingerprint) and isinstance(b, Fingerprint)
        assert (a.peaks.frame == b.peaks.frame).all()
        assert (a.peaks.pitch == b.peaks.pitch).all()
    assert isinstance(pooled[2], CityWokError)
    assert pooled[2].code == "not_media"


_CHILD = """
import sys, time
from pathlib import Path
from citywok.ingest import FingerprintJob
from citywok.ingest.local import ProcessFingerprinter
from citywok.params import AnalysisParams
pool = ProcessFingerprinter(2)
# Start the workers and report their pids, then hang as if busy.
list(pool.run([FingerprintJob(Path(sys.argv[1]), AnalysisParams())]))
print(" ".join(str(p) for p in pool._pool._processes), flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_workers_die_with_their_parent(demo_library: DemoLibrary) -> None:
    episode = next(demo_library.folder.glob("*.m4a"))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(episode)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert pids, "the pool started no worker"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        time.sleep(0.05)
    assert not alive, f"workers {alive} outlived their parent"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
