"""The shells a new user meets first: one default index, settings errors in one line, the
extras (issue 8, items 3, 6 and 12)."""

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.conftest import DemoLibrary, write_clip
from tests.e2e.test_cli import run

ROOT = Path(__file__).resolve().parents[2]
#: What the `web` extra brings beyond `links`: blocked to play an install without it.
SERVER_STACK = ("fastapi", "starlette", "uvicorn", "sse_starlette", "prometheus_client",
                "redis", "multipart", "python_multipart", "sentry_sdk", "sqlalchemy", "alembic")
LINKS_EXTRA = ("yt_dlp", "pydantic_settings", "limits")


def run_without(modules: tuple[str, ...], *args: str, env: dict[str, str] | None = None,
                ) -> subprocess.CompletedProcess[str]:
    """``citywok ARGS`` in a Python where ``modules`` cannot be imported."""
    code = (f"import sys\nfor m in {modules!r}: sys.modules[m] = None\n"
            "from citywok.cli.main import main\nmain()\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_readme_own_library_commands_work_end_to_end(demo_library: DemoLibrary,
                                                     tmp_path: Path) -> None:
    """The README's three commands, run as written (the per-user data dir is a temp dir)."""
    pytest.importorskip("fastapi", reason="serve needs the web extra")
    readme = (ROOT / "README.md").read_text()
    block = readme.split("On your own library:", 1)[1].split("```", 2)[1]
    commands = [line.split("#", 1)[0].split() for line in block.splitlines() if line.strip()]
    assert [c[1] for c in commands] == ["index", "identify", "serve"], commands
    shows = tmp_path / "Shows"
    shutil.copytree(demo_library.folder, shows)
    clip = write_clip(demo_library.clip(2, 14.0, 5.0), tmp_path / "clip.mp4",
                      audio_args=("-c:a", "aac"))
    port = _free_port()
    subs = {"~/Videos/Shows": str(shows), "clip.mp4": str(clip), "8000": str(port)}
    exe = str(Path(sys.executable).parent / "citywok")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("CITYWOK_INDEX", None)
    argv = [[exe] + [subs.get(a, a) for a in c[1:] if a != "https://..."] for c in commands]

    indexed = subprocess.run(argv[0], capture_output=True, text=True, env=env, timeout=300)
    assert indexed.returncode == 0, indexed.stderr
    found = subprocess.run(argv[1], capture_output=True, text=True, env=env, timeout=120)
    assert found.returncode == 0 and "Demo Show S01E03" in found.stdout, found.stderr
    log = tmp_path / "serve.log"
    with log.open("wb") as fh:
        server = subprocess.Popen(argv[2], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert ready.status_code == 200, log.read_text()
        # On loopback nobody is counted: more than the public limit (10 an hour) answer.
        for _ in range(11):
            answer = httpx.post(f"http://127.0.0.1:{port}/api/v1/identify", timeout=60,
                                files={"file": ("clip.mp4", clip.read_bytes())})
            assert answer.json()["match"]["episode_id"] == "demo-show-s01e03", answer.text
    finally:
        server.terminate()
        server.wait(timeout=20)
    index_dir = tmp_path / "data" / "citywok" / "index"
    assert (index_dir / "catalog.sqlite").is_file()
    assert re.search(r'"message": "index loaded".*' + re.escape(str(index_dir)),
                     log.read_text()), log.read_text()
    assert ("listening on 127.0.0.1 (this machine only): no anonymous rate limit "
            "(CITYWOK_ANONYMOUS_RATE_LIMIT sets one)") in log.read_text()


def test_serve_and_keys_without_the_web_extra_say_what_to_install() -> None:
    for args in (("serve",), ("serve", "--port", "9"), ("keys", "list"), ("usage",)):
        proc = run_without(SERVER_STACK + LINKS_EXTRA, *args)
        assert proc.returncode == 78, (args, proc.stderr)
        assert "pip install '.[web]' in the CityWok clone" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_bad_setting_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {"CITYWOK_PORT": "abc"}
    for args in (("identify", "https://youtube.com/watch?v=x", "--index", str(tmp_path)),
                 ("serve",)):
        proc = run(*args, env=env)
        assert proc.returncode == 78, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert "port" in proc.stderr.lower(), proc.stderr


def test_serve_help_names_the_default_index() -> None:
    text = " ".join(run("serve", "--help").stdout.split())
    assert "$CITYWOK_INDEX, else the per-user data dir" in text, text


def test_links_extra_is_small_and_enough_for_the_cli(demo_library: DemoLibrary,
                                                     tmp_path: Path) -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    links = " ".join(extras["links"]).lower()
    assert "yt-dlp" in links and "fastapi" not in links and "uvicorn" not in links
    assert "citywok[links]" in extras["web"]
    pytest.importorskip("yt_dlp", reason="the links extra is not installed")
    import functools
    import http.server
    import threading

    clip = write_clip(demo_library.clip(1, 7.0, 5.0), tmp_path / "linked.mp3",
                      audio_args=("-c:a", "libmp3lame"))
    index_dir = tmp_path / "index"
    assert run("index", str(demo_library.folder), "--index", str(index_dir)).returncode == 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        env = {"CITYWOK_ALLOWED_HOSTS": "127.0.0.1", "CITYWOK_ALLOWED_PORTS": str(port),
               "CITYWOK_FETCH_ALLOW_LOOPBACK": "true"}
        url = f"http://127.0.0.1:{port}/{clip.name}"
        proc = run_without(SERVER_STACK, "identify", url,
                           "--index", str(index_dir), "--json", env=env)
        assert proc.returncode == 0 and '"demo-show-s01e02"' in proc.stdout, proc.stderr
        missing = run_without(SERVER_STACK + LINKS_EXTRA, "identify", url, "--index",
                              str(index_dir))
        assert "pip install '.[links]' in the CityWok clone" in missing.stderr, missing.stderr
    finally:
        server.shutdown()
