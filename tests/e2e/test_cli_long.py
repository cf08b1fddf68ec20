"""``identify`` on long files: capped by default as the server is, and never holding more
than the clip it analyses (issue 8, item 8)."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import DemoLibrary
from tests.e2e.test_cli import EXE
from tests.test_decode import write_wav

#: Runs a command and reports its peak RSS. A go-between, because a child's peak counts
#: the memory of the process it was forked from (here pytest, with its fixtures).
_MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
print(f"peak_rss_kb={usage.ru_maxrss}", file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(*args: str) -> tuple[int, str, str, float]:
    """Exit code, stdout, stderr and the peak RSS (MB) of the largest process of the run
    (the CLI or its ffmpeg), as the kernel counted it."""
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *EXE, *args], capture_output=True,
                          text=True, timeout=300)
    err, _, peak = proc.stderr.rpartition("peak_rss_kb=")
    return proc.returncode, proc.stdout, err, int(peak) / 1024


def test_long_files_are_capped_and_read_only_as_far_as_used(demo_library: DemoLibrary,
                                                            tmp_path: Path) -> None:
    # Ten hours, and at 1 Hz: 72 kB on disk, 1.15 GB once resampled to 8 kHz.
    one_hz = write_wav(tmp_path / "ten-hours-at-1-hz.wav", 10 * 3600, rate_hz=1)
    index = str(demo_library.index_dir)
    code, out, err, _ = run_measured("identify", str(one_hz), "--index", index)
    # Its only input refused: the exit code of that error (docs/cli.md).
    assert code == 65 and "longer than the 600 s" in err and "--max-duration" in err, err
    code, out, err, peak_mb = run_measured("identify", str(one_hz), "--index", index,
                                           "--max-duration", "0", "--json")
    assert code == 0 and '"status": "no_match"' in out, err
    assert '"clip_duration_s": 30.0' in out
    # Before the fix: 436 MB for one hour at 1 Hz (7.8 GB and a MemoryError for ten), and
    # 3.6 GB for a ten-hour FLAC; now about 100 MB, whatever the length.
    assert peak_mb < 200, f"peak RSS {peak_mb:.0f} MB"
