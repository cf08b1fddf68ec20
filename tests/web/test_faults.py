"""Fault injection against a running service: a segment damaged on disk while it is
served, a flood of listening sessions at a low job cap, a burst of wrong keys.

What must hold: no 500 while the service says it is ready, the healthy part of the
library keeps answering, readiness names what is damaged, and the caps hold however many
clients come at once.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from citywok.index import Index
from citywok.pipeline import drive, index_paths
from tests.web.conftest import Library, LiveServer, start_server, stop_server

pytestmark = pytest.mark.slow


def _directory_span(path: Path) -> tuple[int, int]:
    """Byte range of a segment's directory array."""
    with path.open("rb") as fh:
        head = fh.read(16)
        hlen = int.from_bytes(head[12:16], "little")
        spec = json.loads(fh.read(hlen))["arrays"]["directory"]
    return spec["offset"], spec["offset"] + 4 * spec["count"]


@pytest.fixture(scope="module")
def two_segment_server(library: Library, tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[tuple[LiveServer, Path]]:
    """``citywok serve`` over the library in two segments: episode 1, then 2 and 3; and
    the path of the segment holding episode 1."""
    tmp = tmp_path_factory.mktemp("faults-live")
    files = sorted(p for p in library.folder.iterdir() if p.name.startswith("Demo Show"))
    with Index.open(tmp / "index", writable=True) as idx:
        drive(index_paths(idx, files[:1]))
        drive(index_paths(idx, files[1:]))
        assert len(idx.segments) == 2
        first = next(s.path for s in idx.segments if len(s.episode_keys) == 1)
    srv = start_server(library, tmp, env={"CITYWOK_INDEX": str(tmp / "index"),
                                          "CITYWOK_INDEX_CHECK_INTERVAL_S": "0.2"})
    yield srv, first
    stop_server(srv)


def _identify(url: str, clip: Path) -> httpx.Response:
    return httpx.post(url + "/api/v1/identify", timeout=120,
                      files={"file": (clip.name, clip.read_bytes())})


def test_a_segment_damaged_in_place_under_a_running_server(
        two_segment_server: tuple[LiveServer, Path], library: Library) -> None:
    srv, seg_path = two_segment_server
    by_episode = {c.episode_id: c for c in library.clips.values()}
    one, three = by_episode["demo-show-s01e01"], by_episode["demo-show-s01e03"]
    # Served whole first: the segment is mapped and its checksum was checked.
    first = _identify(srv.url, one.path)
    assert first.status_code == 200 and first.json()["match"]["episode_id"] == one.episode_id
    assert httpx.get(srv.url + "/readyz").json()["status"] == "ready"

    # 400 bytes of its directory overwritten with 0xFF, in place, while it is mapped.
    lo, hi = _directory_span(seg_path)
    start = lo + (hi - lo) // 3
    with seg_path.open("r+b") as fh:
        fh.seek(start)
        fh.write(b"\xff" * 400)

    # The healthy segment answers, at once and afterwards.
    for _ in range(2):
        r = _identify(srv.url, three.path)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "match" and body["match"]["episode_id"] == three.episode_id
        assert abs(body["match"]["offset_s"] - three.offset_s) < 0.5
    # A clip of the damaged segment: never a 500, never its episode, and the answer says
    # that part of the library could not be searched.
    r = _identify(srv.url, one.path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert all(c["episode_id"] != one.episode_id for c in body["candidates"])
    assert body["episodes_not_searched"] == 1
    ready = httpx.get(srv.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert [d.split(":")[0] for d in ready.json()["damaged"]] == [seg_path.name]
    assert "Traceback" not in srv.log.read_text()


def test_readiness_names_damage_before_any_query_meets_it(
        library: Library, tmp_path: Path) -> None:
    """Damage that no query has touched yet is found by the index check (the file's
    stat changed), not only by the next unlucky request."""
    files = sorted(p for p in library.folder.iterdir() if p.name.startswith("Demo Show"))
    with Index.open(tmp_path / "index", writable=True) as idx:
        drive(index_paths(idx, files[:1]))
        drive(index_paths(idx, files[1:]))
        seg_path = next(s.path for s in idx.segments if len(s.episode_keys) == 1)
    srv = start_server(library, tmp_path, env={"CITYWOK_INDEX": str(tmp_path / "index"),
                                               "CITYWOK_INDEX_CHECK_INTERVAL_S": "0.2"})
    try:
        assert httpx.get(srv.url + "/readyz").json()["status"] == "ready"
        size = seg_path.stat().st_size
        with seg_path.open("r+b") as fh:
            fh.seek(size // 2)
            byte = fh.read(1)
            fh.seek(size // 2)
            fh.write(bytes([byte[0] ^ 0x5A]))
        deadline = time.monotonic() + 10
        body = httpx.get(srv.url + "/readyz").json()
        while body["status"] != "degraded" and time.monotonic() < deadline:
            time.sleep(0.1)
            body = httpx.get(srv.url + "/readyz").json()
        assert body["status"] == "degraded", body
        assert [d.split(":")[0] for d in body["damaged"]] == [seg_path.name]
    finally:
        stop_server(srv)


async def _burst(base: str, n: int, method: str, path: str, **request: Any) -> list[int]:
    """``n`` requests sent at once, on ``n`` connections; their statuses."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        answers = await asyncio.gather(*(client.request(method, path, **request)
                                         for _ in range(n)))
    return [r.status_code for r in answers]


def test_a_concurrent_wrong_key_burst_holds_the_limit(library: Library, tmp_path: Path
                                                       ) -> None:
    srv = start_server(library, tmp_path, env={
        "CITYWOK_AUTH_FAILURE_RATE_LIMIT": "20/hour", "CITYWOK_AUTH_FAILURE_DELAY_S": "0",
        "CITYWOK_REFUSED_RATE_LIMIT": "60/hour"})
    try:
        statuses = asyncio.run(_burst(srv.url, 100, "GET", "/api/v1/me",
                                      headers={"X-API-Key": "cwk_wrong_wrongwrongwrong"}))
        print(f"\nwrong-key burst: {dict(Counter(statuses))}")
        assert statuses.count(401) <= 20 and statuses.count(401) + statuses.count(429) == 100, \
            sorted(statuses)
        # Links refused before any work: the limit of refusals holds the same way.
        statuses = asyncio.run(_burst(srv.url, 100, "POST", "/api/v1/identify",
                                      json={"url": "http://10.0.0.1/clip.mp4"}))
        print(f"refused-link burst: {dict(Counter(statuses))}")
        assert statuses.count(422) <= 60 and statuses.count(422) + statuses.count(429) == 100, \
            sorted(statuses)
    finally:
        stop_server(srv)


class _Peak:
    """How many callers are inside at once, and the most there ever were."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


def test_a_listen_flood_at_a_low_job_cap(library: Library, monkeypatch: pytest.MonkeyPatch,
                                         make_client: Callable[..., TestClient]) -> None:
    """20 sessions at once, with 2 jobs and 6 sessions allowed: never more than 2 matches
    and 6 decoders at a time, and the sessions past 6 are told the server is busy."""
    from citywok.pipeline import identify_samples
    from citywok.web.capture import LiveAudio
    from citywok.web.routes import listen

    matches, decoders = _Peak(), _Peak()
    real_start, real_close = LiveAudio.start, LiveAudio.aclose

    def identify(*args: Any, **kwargs: Any) -> Any:
        matches.enter()
        try:
            time.sleep(0.1)  # long enough for concurrent matches to overlap
            return identify_samples(*args, **kwargs)
        finally:
            matches.leave()

    async def start(self: LiveAudio) -> None:
        decoders.enter()
        await real_start(self)

    async def aclose(self: LiveAudio) -> None:
        try:
            await real_close(self)
        finally:
            decoders.leave()

    monkeypatch.setattr(listen, "identify_samples", identify)
    monkeypatch.setattr(LiveAudio, "start", start)
    monkeypatch.setattr(LiveAudio, "aclose", aclose)
    client = make_client(max_concurrent_jobs=2, listen_max_sessions=6, listen_max_s=6.0,
                         listen_check_interval_s=0.5)
    clip = library.clips[".mp3"]
    data = clip.path.read_bytes()
    go, opened = threading.Barrier(20), threading.Barrier(20)

    def session() -> dict[str, Any]:
        go.wait()
        with client.websocket_connect("/api/v1/listen") as ws:
            first = ws.receive_json()
            # Every session is open (or refused) before any sends sound: none can end and
            # free its slot for a latecomer.
            opened.wait(timeout=60)
            if first["type"] == "error":
                return dict(first)
            for n in range(0, len(data), 4000):
                ws.send_bytes(data[n: n + 4000])
            ws.send_json({"type": "stop"})
            while (msg := ws.receive_json())["type"] not in ("result", "error"):
                pass
            return dict(msg)

    with ThreadPoolExecutor(20) as pool:
        ends = list(pool.map(lambda _: session(), range(20)))
    answered = [m for m in ends if m["type"] == "result"]
    busy = [m for m in ends if m["type"] == "error"]
    print(f"\nlisten flood: {len(answered)} answered, {len(busy)} busy; at most "
          f"{matches.most} matches and {decoders.most} decoders at once")
    assert len(answered) + len(busy) == 20
    assert len(answered) == 6 and len(busy) == 14, ends
    assert all(m["status"] == 503 and m["error"]["code"] == "busy" and m["retry_after_s"] > 0
               for m in busy), busy
    assert all(m["answer"]["match"]["episode_id"] == clip.episode_id for m in answered)
    assert 1 <= matches.most <= 2, matches.most
    assert decoders.most <= 6 and decoders.now == 0, (decoders.most, decoders.now)
