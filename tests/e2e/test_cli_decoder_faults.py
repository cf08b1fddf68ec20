"""A decoder killed, stopped or lying, and an indexer interrupted (issue 18, items 2 and 3).

``citywok index`` runs as a real process with a slowed ffmpeg first in ``PATH`` (the real
binary reading its input at 10x real time), so that a kill or a signal lands mid-file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import DemoLibrary
from tests.e2e.test_cli import EXE, run

#: How long the files under test are (the demo's episodes).
EPISODE_S = 40.0


def _wrapper(folder: Path, *input_options: str) -> dict[str, str]:
    """An environment whose ``ffmpeg`` is the real one with ``input_options`` before its
    input (``exec``: the process citywok starts is ffmpeg itself)."""
    real = shutil.which("ffmpeg")
    assert real is not None
    folder.mkdir(exist_ok=True)
    exe = folder / "ffmpeg"
    exe.write_text(f'#!/bin/sh\nexec {real} {" ".join(input_options)} "$@"\n')
    exe.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def _ffmpeg_children(pid: int) -> dict[int, str]:
    """ffmpeg processes started by ``pid``: pid → command line."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            parent = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid and "ffmpeg" in cmd.split(" ", 1)[0] and "ffprobe" not in cmd:
            found[int(d.name)] = cmd
    return found


def _wait_for(pred: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _library(demo_library: DemoLibrary, folder: Path, episodes: int) -> Path:
    folder.mkdir()
    for row in demo_library.truth[:episodes]:
        shutil.copy(demo_library.folder / row["file"], folder)
    return folder


def _listed(index: Path) -> dict[str, float]:
    proc = run("list", "--index", str(index), "--json")
    assert proc.returncode == 0, proc.stderr
    return {e["episode_id"]: e["duration_s"]
            for e in (json.loads(line) for line in proc.stdout.splitlines() if line)}


def test_a_decoder_killed_mid_file_fails_that_file_and_stores_nothing_short(
        demo_library: DemoLibrary, tmp_path: Path) -> None:
    """Once, a killed ffmpeg gave 'added 2, failed 0' and an episode stored cut short."""
    folder = _library(demo_library, tmp_path / "shows", 2)
    env = _wrapper(tmp_path / "bin", "-readrate", "10")
    index = tmp_path / "index"
    proc = subprocess.Popen([*EXE, "index", str(folder), "--index", str(index), "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = demo_library.truth[1]["file"]
    # The second file's decoder, a second into its 4 s of decoding.
    _wait_for(lambda: any(victim in c for c in _ffmpeg_children(proc.pid).values()))
    time.sleep(1.0)
    (pid,) = [p for p, c in _ffmpeg_children(proc.pid).items() if victim in c]
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, (out, err)  # some inputs could not be indexed
    summary = json.loads(out)
    assert summary["added"] == [demo_library.episode_id(0)]
    ((failed),) = summary["failed"]
    assert failed["file"] == victim
    # Named once, with where it stopped and why.
    assert failed["error"].startswith("the decoder stopped at 00:") and "SIGKILL" in failed[
        "error"], failed
    assert _listed(index) == {demo_library.episode_id(0): pytest.approx(EPISODE_S, abs=0.1)}


def test_a_decoder_that_ends_early_without_failing_is_refused(
        demo_library: DemoLibrary, tmp_path: Path) -> None:
    """An ffmpeg that stops a file early and exits 0 (here told to stop at 15 s) is caught
    by the duration the file's container states."""
    folder = _library(demo_library, tmp_path / "shows", 1)
    env = _wrapper(tmp_path / "bin", "-t", "15")
    proc = subprocess.run([*EXE, "index", str(folder), "--index", str(tmp_path / "index")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 65, proc.stdout + proc.stderr  # none could be indexed
    name = demo_library.truth[0]["file"]
    assert re.search(re.escape(f"failed {name}: the audio ends early (only 00:15.0 of its ")
                     + r"00:40\.\d decoded\)", proc.stdout), proc.stdout
    # Nothing was indexed: no index is left to answer "no match" for everything.
    assert not (tmp_path / "index").exists()
    assert "(not kept: it holds nothing)" in proc.stdout


def test_an_episode_stored_cut_short_is_reported_by_check_and_redone_by_index(
        demo_library: DemoLibrary, tmp_path: Path) -> None:
    """An index an older CityWok left with an episode cut short (as a killed decoder did):
    ``check`` names it, ``index`` does it again although the file is unchanged."""
    folder = _library(demo_library, tmp_path / "shows", 2)
    index = tmp_path / "index"
    assert run("index", str(folder), "--index", str(index)).returncode == 0
    short_id = demo_library.episode_id(1)
    with sqlite3.connect(index / "catalog.sqlite") as db:
        db.execute("UPDATE episodes SET duration_s = 16.5 WHERE episode_id = ?", (short_id,))
        # Made by an older CityWok: no note that its lengths were ever checked.
        db.execute("DELETE FROM meta WHERE key = 'lengths_checked'")
    check = run("check", "--index", str(index))
    assert check.returncode == 74, check.stdout + check.stderr
    assert re.search(re.escape(f"cut short: {short_id} (only 00:16.5 of its ")
                     + r"00:40\.\d decoded in ", check.stderr), check.stderr
    as_json = json.loads(run("check", "--index", str(index), "--json").stdout)
    assert [c["episode_id"] for c in as_json["cut_short"]] == [short_id]

    again = run("index", str(folder), "--index", str(index), "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["updated"] == [short_id]
    assert summary["skipped"] == [demo_library.episode_id(0)]
    assert _listed(index)[short_id] == pytest.approx(EPISODE_S, abs=0.1)
    assert run("check", "--index", str(index)).returncode == 0
    # Whole now: the next run leaves it alone.
    assert json.loads(run("index", str(folder), "--index", str(index), "--json").stdout
                      )["updated"] == []


@pytest.mark.parametrize(("sig", "to_group", "code"), [(signal.SIGINT, True, 130),
                                                       (signal.SIGTERM, False, 143)])
def test_an_interrupted_index_keeps_what_finished_and_says_so(
        demo_library: DemoLibrary, tmp_path: Path, sig: signal.Signals, to_group: bool,
        code: int) -> None:
    """Ctrl-C (SIGINT to the whole process group, ffmpeg included) or SIGTERM to the
    indexer after its first file: that file is kept (commits come every 60 s otherwise),
    one line says so, and the exit code names the signal."""
    folder = _library(demo_library, tmp_path / "shows", 4)
    env = _wrapper(tmp_path / "bin", "-readrate", "10")
    index = tmp_path / "index"
    # As from a terminal: SIGINT at its default even when these tests run as a background
    # job (a shell's `cmd &` ignores it there, and an ignored SIGINT stays ignored).
    proc = subprocess.Popen([*EXE, "index", str(folder), "--index", str(index)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    second = demo_library.truth[1]["file"]
    # The second file's decoder has started: the first file is done.
    _wait_for(lambda: any(second in c for c in _ffmpeg_children(proc.pid).values()))
    time.sleep(0.5)
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    m = re.fullmatch(r"interrupted: kept (\d) of 4; run again to finish", lines[0])
    assert len(lines) == 1 and m is not None, err
    kept = int(m.group(1))
    assert 1 <= kept < 4
    listed = _listed(index)
    assert len(listed) == kept and demo_library.episode_id(0) in listed
    # Nothing half-done was kept: what is listed is whole.
    assert all(d == pytest.approx(EPISODE_S, abs=0.1) for d in listed.values())
    rest = run("index", str(folder), "--index", str(index), "--json")
    assert rest.returncode == 0, rest.stderr
    summary = json.loads(rest.stdout)
    assert len(summary["skipped"]) == kept and len(summary["added"]) == 4 - kept
