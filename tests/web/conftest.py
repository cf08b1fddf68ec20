"""Fixtures of the web tests: one small generated library and index per session, clips
of several containers with known ground truth, a loopback media server, Redis."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install -e '.[web]')")

import httpx
from fastapi.testclient import TestClient

from citywok.cli.demo import CONTAINERS, RATE_HZ, encode, make_library
from citywok.index import Index
from citywok.pipeline import drive, index_paths
from citywok.web.app import create_app
from citywok.web.core.config import Settings

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is missing")

CLIP_S = 5.0


@dataclass(frozen=True)
class Clip:
    path: Path
    episode_id: str
    offset_s: float


@dataclass(frozen=True)
class Library:
    folder: Path
    index: Path
    raw: list[Any]
    clips: dict[str, Clip]
    long_clip: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is missing (apt-get install espeak-ng)")
    root = tmp_path_factory.mktemp("weblib")
    folder = root / "library"
    make_library(folder, episodes=3, seconds=30)
    truth = json.loads((folder / "truth.json").read_text())
    raw = [np.load(folder / t["raw"]) for t in truth]
    index_dir = root / "index"
    with Index.open(index_dir, writable=True) as idx:
        drive(index_paths(idx, [folder]))
    clips: dict[str, Clip] = {}
    for n, (ext, args, video) in enumerate(CONTAINERS):
        ep = n % 3
        start = 10.0 + 2.0 * n
        samples = raw[ep][int(start * RATE_HZ): int((start + CLIP_S) * RATE_HZ)]
        path = encode(samples, root / f"clip{n}{ext}", audio_args=args, video=video)
        clips[ext] = Clip(path=path, episode_id=f"demo-show-s01e{ep + 1:02d}", offset_s=start)
    long_audio = np.concatenate(raw)
    long_clip = encode(long_audio, root / "long.mp3", audio_args=("-c:a", "libmp3lame"))
    return Library(folder=folder, index=index_dir, raw=raw, clips=clips, long_clip=long_clip)


def base_settings(library: Library, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "index": library.index,
        "keys_db": tmp / "keys.sqlite",
        "data_dir": tmp / "data",
        "temp_dir": tmp / "work",
        "anonymous_rate_limit": "1000/hour",
        "key_rate_limit": "1000/hour",
        "sse_heartbeat_s": 2.0,
        "index_check_interval_s": 0.2,
        # Wrong keys are slowed by design; tests that send them (fuzzing) must not wait.
        "auth_failure_delay_s": 0.0,
        "auth_failure_rate_limit": "100000/hour",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_client(library: Library, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Build an in-process client with settings overrides; closed after the test."""
    stack = contextlib.ExitStack()

    def make(**overrides: Any) -> TestClient:
        settings = base_settings(library, tmp_path, **overrides)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        return stack.enter_context(client)

    with stack:
        yield make


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON data) for each event of a stream, as it arrives."""
    name, data = "message", ""
    for line in lines:
        line = line.rstrip("\r")
        if not line:
            if data:
                yield name, json.loads(data)
            name, data = "message", ""
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()


# -- a loopback media server ------------------------------------------------------------


@dataclass
class MediaServer:
    url: str
    port: int
    files: dict[str, bytes]
    disconnects: list[str]
    requests: list[str]
    #: Notified whenever ``requests`` or ``disconnects`` grows.
    changed: threading.Condition = field(default_factory=threading.Condition)

    def note(self, seen: list[str], path: str) -> None:
        with self.changed:
            seen.append(path)
            self.changed.notify_all()

    def wait_for(self, seen: list[str], path: str, *, timeout_s: float = 120.0) -> bool:
        """Wait until ``path`` is in ``seen`` (an event, not a guess at how long it takes;
        the timeout only ends a test that would otherwise hang)."""
        with self.changed:
            return self.changed.wait_for(lambda: path in seen, timeout=timeout_s)


def _handler(server_state: MediaServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            server_state.note(server_state.requests, self.path)
            path = self.path.split("?", 1)[0]
            if path.startswith("/redirect-to/"):
                self.send_response(302)
                self.send_header("Location", unquote(path[len("/redirect-to/"):]).replace("~", "/"))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path.startswith("/slow/"):
                body = server_state.files["/clip.mp3"]
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.send_header("Content-Length", str(len(body) * 100))
                self.end_headers()
                try:
                    for _ in range(600):
                        self.wfile.write(body[:200])
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    server_state.note(server_state.disconnects, path)
                return
            if path == "/big.mp3":
                chunk = server_state.files["/clip.mp3"]
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.end_headers()
                try:
                    for _ in range(2000):
                        self.wfile.write(chunk)
                except OSError:
                    server_state.note(server_state.disconnects, path)
                return
            found = server_state.files.get(path)
            if found is None:
                self.send_error(404)
                return
            ctype = "audio/mpeg" if path.endswith(".mp3") else "text/html"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(found)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(found)

        do_HEAD = do_GET

    return Handler


@pytest.fixture(scope="session")
def media_server(library: Library) -> Iterator[MediaServer]:
    files = {"/clip.mp3": library.clips[".mp3"].path.read_bytes(),
             "/page.html": b"<html><body>no media here</body></html>"}
    state = MediaServer(url="", port=0, files=files, disconnects=[], requests=[])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = int(httpd.server_address[1])
    state.url = f"http://127.0.0.1:{state.port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def link_settings(media: MediaServer) -> dict[str, Any]:
    """The test-only settings that let links reach the loopback media server."""
    return {"fetch_allow_loopback": True, "allowed_hosts": ["127.0.0.1"],
            "allowed_ports": [media.port], "download_timeout_s": 30.0}


# -- redis --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (CI installs it: apt-get install "
                    "redis-server)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- a real server ------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    tmp: Path


def start_server(library: Library, tmp: Path, *, workers: int = 1,
                 env: Mapping[str, str | None] | None = None) -> LiveServer:
    """``citywok serve`` on a free loopback port; ``env`` adds variables (``None`` unsets
    one of the defaults here)."""
    port = free_port()
    log = tmp / "server.log"
    with_unset = {**os.environ,
                  "CITYWOK_INDEX": str(library.index),
                  "CITYWOK_KEYS_DB": str(tmp / "keys.sqlite"),
                  "CITYWOK_DATA_DIR": str(tmp / "data"),
                  "CITYWOK_TEMP_DIR": str(tmp / "work"),
                  "CITYWOK_ANONYMOUS_RATE_LIMIT": "1000/hour",
                  **(env or {})}
    full_env = {k: v for k, v in with_unset.items() if v is not None}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "citywok.cli.serve", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers)],
            env=full_env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the server did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.1)
    return LiveServer(url=url, proc=proc, log=log, tmp=tmp)


def stop_server(server: LiveServer) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, 15)
    try:
        server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.proc.pid, 9)
        server.proc.wait()
