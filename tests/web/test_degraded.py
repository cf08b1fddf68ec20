"""A damaged segment: the service keeps answering from the others, and says so."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from citywok.index import SEGMENT_DIR
from tests.web.conftest import Library


def test_readyz_and_stats_report_damage(library: Library, tmp_path: Path,
                                        make_client: Callable[..., TestClient]) -> None:
    index = tmp_path / "index"
    shutil.copytree(library.index, index, ignore=shutil.ignore_patterns("LOCK"))
    seg = next((index / SEGMENT_DIR).glob("seg-*.cws"))
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x5A
    seg.write_bytes(bytes(data))
    client = make_client(index=index)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "degraded" and len(body["damaged"]) == 1
    assert "checksum" in body["damaged"][0] and str(tmp_path) not in body["damaged"][0]
    stats = client.get("/api/v1/stats").json()
    assert len(stats["damaged"]) == 1
    clip = next(iter(library.clips.values()))
    r = client.post("/api/v1/identify", files={"file": (clip.path.name, clip.path.read_bytes())})
    assert r.status_code == 200 and r.json()["status"] == "no_match"
    # The answer says why it may be wrong: part of the library was not searched.
    assert r.json()["episodes_not_searched"] == 3
