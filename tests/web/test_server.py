"""A real ``citywok serve`` on loopback (two workers, Redis when installed)."""

from __future__ import annotations

import json
import resource
import selectors
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from citywok.web.keys import KeyStore
from tests.web.conftest import (
    Library,
    LiveServer,
    MediaServer,
    parse_sse,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.slow
URL = "/api/v1/identify"
#: Half-open connections the server must drop, and its deadline for request headers.
HALF_OPEN = 1500
HEADER_TIMEOUT_S = 2.0
FILES_NEEDED = HALF_OPEN + 512


@pytest.fixture(scope="module")
def server(library: Library, media_server: MediaServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live")
    env = {"CITYWOK_FETCH_ALLOW_LOOPBACK": "true", "CITYWOK_ALLOWED_HOSTS": "127.0.0.1",
           "CITYWOK_ALLOWED_PORTS": str(media_server.port), "CITYWOK_SSE_HEARTBEAT_S": "0.5",
           "CITYWOK_MAX_UPLOAD_BYTES": "2000000", "CITYWOK_KEY_RATE_LIMIT": "1000/hour",
           "CITYWOK_REQUEST_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)}
    # Room for the half-open connections test, on both ends (the server inherits it).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < FILES_NEEDED:
        room = FILES_NEEDED if hard == resource.RLIM_INFINITY else min(hard, FILES_NEEDED)
        resource.setrlimit(resource.RLIMIT_NOFILE, (room, hard))
    workers = 1
    if shutil.which("redis-server"):
        redis = tmp_path_factory.getbasetemp()  # the session's redis fixture is separate
        del redis
        workers = 2
    srv = start_server(library, tmp, workers=workers, env=env)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def redis_server(library: Library, media_server: MediaServer, redis_url: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live-redis")
    env = {"CITYWOK_RATE_LIMIT_STORAGE": redis_url, "CITYWOK_KEY_RATE_LIMIT": "5/hour"}
    srv = start_server(library, tmp, workers=2, env=env)
    yield srv
    stop_server(srv)


@pytest.mark.parametrize("ext", [".mp3", ".m4a", ".mkv", ".flac"])
def test_upload_over_a_socket(server: LiveServer, library: Library, ext: str) -> None:
    clip = library.clips[ext]
    r = httpx.post(server.url + URL, files={"file": (clip.path.name, clip.path.read_bytes())},
                   timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["match"]["episode_id"] == clip.episode_id
    assert abs(r.json()["match"]["offset_s"] - clip.offset_s) <= 1.0
    assert r.headers["x-content-type-options"] == "nosniff"


def test_sse_over_a_socket(server: LiveServer, library: Library) -> None:
    clip = library.clips[".webm"]
    seen: list[tuple[str, float]] = []
    started = time.monotonic()
    with httpx.stream("POST", server.url + URL, files={"file": ("c.webm",
                                                                 clip.path.read_bytes())},
                      headers={"Accept": "text/event-stream"}, timeout=60) as r:
        assert r.status_code == 200
        for name, data in parse_sse(r.iter_lines()):
            seen.append((name, time.monotonic() - started))
            if name == "result":
                assert data["match"]["episode_id"] == clip.episode_id
    names = [n for n, _ in seen if n != "heartbeat"]
    assert names == ["received", "decoding", "fingerprinting", "matching", "result"]


def test_link_over_a_socket(server: LiveServer, media_server: MediaServer,
                            library: Library) -> None:
    r = httpx.post(server.url + URL, json={"url": f"{media_server.url}/clip.mp3"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["match"]["episode_id"] == library.clips[".mp3"].episode_id


def test_health_answers_while_identifications_run(server: LiveServer,
                                                  library: Library) -> None:
    data = library.long_clip.read_bytes()

    def identify() -> int:
        r = httpx.post(server.url + URL, files={"file": ("l.mp3", data)}, timeout=120)
        return r.status_code

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(identify) for _ in range(4)]
        time.sleep(0.3)
        worst = 0.0
        while not all(f.done() for f in futures):
            t0 = time.monotonic()
            assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.05)
        assert [f.result() for f in futures] == [200] * 4
    assert worst < 1.0


def test_disconnect_cancels_the_work(server: LiveServer, media_server: MediaServer) -> None:
    path = "/slow/cancel-me.mp3"
    with httpx.stream("POST", server.url + URL, json={"url": media_server.url + path},
                      headers={"Accept": "text/event-stream"}, timeout=30) as r:
        for name, data in parse_sse(r.iter_lines()):
            if name == "downloading" and data["bytes"] > 0:
                break
    # The client has gone: the download child must be killed, the work folder removed.
    deadline = time.monotonic() + 10
    while path not in media_server.disconnects and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path in media_server.disconnects
    deadline = time.monotonic() + 5
    work = server.tmp / "work"
    while any(work.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(work.iterdir()) == []
    metrics = httpx.get(server.url + "/metrics").text
    assert 'citywok_identifications_total{status="cancelled"}' in metrics


def test_disconnect_cancels_plain_json_request(server: LiveServer,
                                               media_server: MediaServer) -> None:
    """A plain JSON request whose client goes away mid-download stops the download. Waits
    on what happens (the download starts, then breaks off), never on a guess at how long
    a loaded machine takes (issue 8, item 13)."""
    path = "/slow/cancel-json.mp3"
    host, port = server.url.removeprefix("http://").split(":")
    body = json.dumps({"url": media_server.url + path}).encode()
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (URL.encode(), len(body), body))
        assert media_server.wait_for(media_server.requests, path), "no download started"
    # The client has gone: the server must notice and kill the download.
    assert media_server.wait_for(media_server.disconnects, path), "the download went on"


def test_upload_limit_enforced_while_streaming(server: LiveServer) -> None:
    """A chunked upload past the limit is answered 413 long before it is all sent."""
    host, port = server.url.removeprefix("http://").split(":")
    boundary = "XyZ"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename=\"a.mp3\"\r\n\r\n").encode()
    total_planned = 50_000_000
    sent = 0
    response = b""
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall((f"POST {URL} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode())
        s.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        s.settimeout(0.01)
        chunk = b"\0" * 65536
        try:
            while sent < total_planned:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                try:
                    got = s.recv(65536)
                except TimeoutError:
                    continue
                response += got
                if not got or b"\r\n\r\n" in response:
                    break
        except OSError:
            pass
        s.settimeout(5)
        try:
            while b"\r\n\r\n" not in response:
                got = s.recv(65536)
                if not got:
                    break
                response += got
        except OSError:
            pass
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert sent < 10_000_000


def test_request_ids_in_json_logs(server: LiveServer) -> None:
    rid = httpx.get(server.url + "/healthz").headers["x-request-id"]
    time.sleep(0.3)
    lines = [json.loads(line) for line in server.log.read_text().splitlines()
             if line.startswith("{")]
    assert any(line.get("request_id") == rid and line.get("path") == "/healthz"
               for line in lines)


def test_metrics(server: LiveServer) -> None:
    httpx.get(server.url + "/healthz")
    text = httpx.get(server.url + "/metrics").text
    assert "citywok_http_requests_total" in text
    assert 'citywok_stage_duration_seconds_bucket{le="0.01",stage="matching"}' in text \
        or 'stage="matching"' in text
    assert 'citywok_identifications_total{status="match"}' in text


def test_limits_hold_exactly_across_workers(redis_server: LiveServer) -> None:
    token = KeyStore(redis_server.tmp / "keys.sqlite").create("burst").token
    results: list[int] = []
    lock = threading.Lock()

    def hit() -> None:
        # Not media: counted, then answered 415 after one ffprobe.
        r = httpx.post(redis_server.url + URL, files={"file": ("x.mp3", b"not media")},
                       headers={"X-API-Key": token}, timeout=60)
        with lock:
            results.append(r.status_code)

    threads = [threading.Thread(target=hit) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(415) == 5
    assert results.count(429) == 19


def test_server_files_are_cleaned(server: LiveServer) -> None:
    work: Path = server.tmp / "work"
    deadline = time.monotonic() + 5
    while work.exists() and any(work.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not work.exists() or list(work.iterdir()) == []


def test_half_open_connections_are_dropped(server: LiveServer) -> None:
    """1,500 connections that never finish their request headers are closed at the header
    deadline, and the server answers throughout (issue 8, item 19)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < FILES_NEEDED:
        pytest.skip(f"the open-file limit ({soft}) is below {FILES_NEEDED}")
    host, port = server.url.removeprefix("http://").split(":")
    selector = selectors.DefaultSelector()
    started = time.monotonic()
    try:
        for _ in range(HALF_OPEN):
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1")  # never finished
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ)
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
        deadline = started + HEADER_TIMEOUT_S + 30
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(4096)
                except ConnectionResetError:
                    data = b""
                if not data:  # closed by the server
                    selector.unregister(sock)
                    sock.close()
        still_open = len(selector.get_map())
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()
    assert still_open == 0, f"{still_open} of {HALF_OPEN} half-open connections still held"
    assert time.monotonic() - started >= HEADER_TIMEOUT_S
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200


def test_workers_leave_no_metrics_folder(library: Library, tmp_path: Path) -> None:
    """``serve --workers 2`` keeps its Prometheus folder while it runs, not after."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    srv = start_server(library, tmp_path, workers=2, env={"TMPDIR": str(tmp)})
    try:
        assert [p.name for p in tmp.iterdir() if p.name.startswith("citywok-metrics-")]
        assert httpx.get(srv.url + "/metrics", timeout=10).status_code == 200
    finally:
        stop_server(srv)
    assert srv.proc.returncode is not None
    assert [p.name for p in tmp.iterdir()] == []
