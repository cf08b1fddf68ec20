"""The ``citywok`` command, run as a user would run it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DemoLibrary, write_clip

EXE = [sys.executable, "-m", "citywok.cli.main"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def cli_index(demo_library: DemoLibrary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    index_dir = tmp_path_factory.mktemp("cli") / "index"
    proc = run("index", str(demo_library.folder), "--index", str(index_dir), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "added 4" in proc.stdout
    return index_dir


def test_help_for_every_command() -> None:
    for cmd in ("", "index", "identify", "stats", "list", "remove", "compact", "demo"):
        proc = run(*([cmd] if cmd else []), "--help")
        assert proc.returncode == 0 and "Usage" in proc.stdout, cmd


def test_version_is_the_package_version() -> None:
    import tomllib

    version = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())[
        "project"]["version"]
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout == f"citywok {version}\n", proc


def test_reindex_skips(cli_index: Path, demo_library: DemoLibrary) -> None:
    proc = run("index", str(demo_library.folder), "--index", str(cli_index), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["added"] == [] and len(summary["skipped"]) == 4


def test_identify_json_lines(cli_index: Path, demo_library: DemoLibrary,
                             tmp_path: Path) -> None:
    good = write_clip(demo_library.clip(1, 12.0, 5.0), tmp_path / "good.mp3",
                      audio_args=("-c:a", "libmp3lame", "-b:a", "32k"),
                      filters="asetrate=19200,aresample=16000")
    theme = write_clip(demo_library.clip(0, 2.0, 5.0), tmp_path / "theme.ogg",
                       audio_args=("-c:a", "libvorbis"))
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    proc = run("identify", str(good), str(broken), str(theme), "--index", str(cli_index),
               "--json")
    # One input could not be read: the exit code says so; the lines stay one per input.
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr == "error: 1 of 3 inputs could not be read\n"
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [ln["file"] for ln in lines] == [str(good), str(broken), str(theme)]
    first = lines[0]
    assert first["status"] == "match"
    assert set(first) >= {"file", "status", "match", "candidates", "elapsed_ms"}
    m = first["match"]
    assert m["episode_id"] == "demo-show-s01e02" and m["show"] == "Demo Show"
    assert (m["season"], m["episode"]) == (1, 2) and isinstance(m["title"], str)
    assert abs(m["offset_s"] - 12.0) < 1.0 and 0 < m["confidence"] <= 1
    assert abs(m["speed"] - 1.2) < 0.03
    assert m["decided_by"] == "sound"  # which evidence decided (issue 16)
    assert m["front_end"] == "peaks"  # a clean, sped-up clip: the peaks are exact (issue 15)
    assert lines[1]["status"] == "error" and "broken.mp4" in lines[1]["error"]
    assert lines[2]["status"] == "ambiguous" and len(lines[2]["candidates"]) == 4


def test_identify_human_output(cli_index: Path, demo_library: DemoLibrary,
                               tmp_path: Path) -> None:
    clip = write_clip(demo_library.clip(3, 20.0, 5.0), tmp_path / "c.wav")
    proc = run("identify", str(clip), env={"CITYWOK_INDEX": str(cli_index)})
    assert proc.returncode == 0, proc.stderr
    assert "Demo Show S01E04" in proc.stdout and "0:2" in proc.stdout


def test_stats_list_remove(cli_index: Path, tmp_path: Path) -> None:
    copy = tmp_path / "index"
    shutil.copytree(cli_index, copy)
    stats = json.loads(run("stats", "--index", str(copy), "--json").stdout)
    assert stats["episodes"] == 4 and stats["format_version"] == 3
    listed = [json.loads(x) for x in run("list", "--index", str(copy), "--json").stdout.split("\n")
              if x]
    assert listed[0]["episode_id"] == "demo-show-s01e01"
    proc = run("remove", "demo-show-s01e03", "--index", str(copy))
    assert proc.returncode == 0 and "removed demo-show-s01e03" in proc.stdout
    assert json.loads(run("stats", "--index", str(copy), "--json").stdout)["episodes"] == 3
    missing = run("remove", "demo-show-s01e03", "--index", str(copy))
    assert missing.returncode == 66 and "no episode" in missing.stderr


def test_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    proc = run("stats", "--index", str(tmp_path / "nowhere"))
    assert proc.returncode == 66
    assert "no index" in proc.stderr and "Traceback" not in proc.stderr


def test_misuse_exits_2() -> None:
    assert run("identify").returncode == 2
    assert run("frobnicate").returncode == 2


def test_demo_command(tmp_path: Path) -> None:
    proc = run("demo", "--workdir", str(tmp_path / "demo"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "match"
    assert result["match"]["episode_id"] == "demo-show-s01e03"
    assert abs(result["match"]["offset_s"] - 21.3) < 1.0


def test_identify_link_from_loopback(cli_index: Path, demo_library: DemoLibrary,
                                     tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    pytest.importorskip("yt_dlp", reason="links need the web extra")
    clip = write_clip(demo_library.clip(2, 9.0, 5.0), tmp_path / "linked.mp3",
                      audio_args=("-c:a", "libmp3lame", "-b:a", "64k"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        url = f"http://127.0.0.1:{port}/{clip.name}"
        # Test-only settings: loopback is refused unless explicitly allowed.
        env = {"CITYWOK_ALLOWED_HOSTS": "127.0.0.1", "CITYWOK_ALLOWED_PORTS": str(port),
               "CITYWOK_FETCH_ALLOW_LOOPBACK": "true"}
        proc = run("identify", url, "--index", str(cli_index), "--json", env=env)
        assert proc.returncode == 0, proc.stderr
        line = json.loads(proc.stdout)
        assert line["file"] == url and line["status"] == "match", line
        assert line["match"]["episode_id"] == "demo-show-s01e03"
        assert abs(line["match"]["offset_s"] - 9.0) < 1.0
        refused = run("identify", url, "--index", str(cli_index), "--json")
        assert json.loads(refused.stdout)["status"] == "error"
    finally:
        server.shutdown()
