"""Fault injection against a running service: a segment damaged on disk while it is
served, a burst of wrong keys.

What must hold: no 500 while the service says it is ready, the healthy part of the
library keeps answering, readiness names what is damaged, and the caps hold however many
clients come at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

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

