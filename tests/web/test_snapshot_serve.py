"""``citywok serve`` pulling snapshots from a real S3-compatible server: a new snapshot is
swapped in under load with no failed request; a corrupt one is refused while the old
index keeps answering."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from citywok.index import Index
from citywok.store.snapshot import SnapshotStore
from tests.servers import S3Server
from tests.web.conftest import Library, start_server, stop_server

pytestmark = pytest.mark.slow


def _episodes(url: str) -> int:
    return int(httpx.get(url + "/api/v1/stats", timeout=10).json()["episodes"])


def test_a_new_snapshot_swaps_in_under_load_with_no_failed_request(
        library: Library, s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.bucket("serve-" + uuid.uuid4().hex[:10])
    url = f"s3://{bucket}/live"
    store = SnapshotStore(url, client=s3_server.client())
    built = tmp_path / "built"
    shutil.copytree(library.index, built, ignore=shutil.ignore_patterns("LOCK", "keys.sqlite"))
    store.push(built)

    env = {**s3_server.env, "CITYWOK_SNAPSHOT_URL": url, "CITYWOK_INDEX": str(tmp_path / "index"),
           "CITYWOK_SNAPSHOT_POLL_INTERVAL_S": "0.3", "CITYWOK_INDEX_CHECK_INTERVAL_S": "0.2"}
    server = start_server(library, tmp_path, env=env)
    try:
        assert (tmp_path / "index").is_symlink() and _episodes(server.url) == 3
        clip = library.clips[".mp3"]
        statuses: Counter[int] = Counter()
        answered_after_swap = 0
        swapped = threading.Event()
        stop = threading.Event()
        lock = threading.Lock()

        def load() -> None:
            nonlocal answered_after_swap
            with httpx.Client(base_url=server.url, timeout=30) as client:
                while not stop.is_set():
                    try:
                        r = client.post("/api/v1/identify", files={
                            "file": ("clip.mp3", clip.path.read_bytes(), "audio/mpeg")})
                        status = r.status_code
                        ok = status == 200 and r.json()["match"]["episode_id"] == clip.episode_id
                    except httpx.HTTPError:
                        status, ok = -1, False
                    with lock:
                        statuses[status if ok or status != 200 else -2] += 1
                        answered_after_swap += swapped.is_set()

        threads = [threading.Thread(target=load) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        with Index.open(built, writable=True) as idx:  # the next snapshot: one episode less
            other = next(e.episode_id for e in idx.episodes.values()
                         if e.episode_id != clip.episode_id)
            idx.remove(other)
        store.push(built)
        deadline = time.monotonic() + 30
        while _episodes(server.url) != 2:
            assert time.monotonic() < deadline, "the new snapshot was not swapped in"
            time.sleep(0.1)
        swapped.set()
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        print(f"\nsnapshot swap under load: {dict(statuses)} "
              f"({answered_after_swap} answered after the swap)")
        assert set(statuses) == {200} and statuses[200] >= 6
        assert answered_after_swap >= 1

        # A corrupt snapshot is refused: the server keeps answering from the current one.
        # Flip a byte of a segment already in the store (same size, so the next push
        # reuses it), then publish a snapshot that lists it.
        client = s3_server.client()
        current = json.loads(client.get_object(
            Bucket=bucket, Key=f"live/snapshots/{store.current()}.json")["Body"].read())
        segment = next(f for f in current["files"] if f["path"].startswith("segments/"))
        key = f"live/objects/{segment['sha256']}"
        body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        body[100] ^= 0xFF
        client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
        with Index.open(built, writable=True) as idx:
            idx.remove(next(e.episode_id for e in idx.episodes.values()
                            if e.episode_id != clip.episode_id))
        store.push(built)
        time.sleep(2.0)
        assert _episodes(server.url) == 2
        r = httpx.post(server.url + "/api/v1/identify", timeout=30,
                       files={"file": ("clip.mp3", clip.path.read_bytes(), "audio/mpeg")})
        assert r.status_code == 200 and r.json()["match"]["episode_id"] == clip.episode_id
        assert "snapshot pull failed" in server.log.read_text()
    finally:
        stop_server(server)
