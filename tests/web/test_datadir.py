"""The service's own state (keys, usage, shares) lives in CITYWOK_DATA_DIR, apart from
the index that snapshot pulls replace; files at the old places are adopted once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from citywok.errors import ConfigError
from citywok.index import Index
from citywok.store.snapshot import SnapshotStore
from citywok.web.core.config import Settings, load_settings
from citywok.web.datadir import adopt_old_files
from citywok.web.keys import KeyStore
from citywok.web.shares import SqliteShareStore
from tests.servers import S3Server
from tests.web.conftest import Library, start_server, stop_server


def test_old_keys_and_shares_are_adopted_once(library: Library, tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(library.index, index, ignore=shutil.ignore_patterns("LOCK"))
    key = KeyStore(index / "keys.sqlite").create("before")
    share = SqliteShareStore(index / "shares.sqlite", ttl_s=3600).put({"status": "no_match"})
    settings = Settings(index=index, data_dir=tmp_path / "data")

    moved = adopt_old_files(settings)
    assert sorted(new.name for _, new in moved) == ["keys.sqlite", "shares.sqlite"]
    assert KeyStore(settings.keys_path).verify(key.token) == key.key
    assert SqliteShareStore(settings.shares_path, ttl_s=3600).get(share.share_id) is not None
    # Once: what is made in the new place afterwards is never overwritten by the old.
    later = KeyStore(settings.keys_path).create("after")
    assert adopt_old_files(settings) == []
    assert KeyStore(settings.keys_path).verify(later.token) == later.key
    assert (index / "keys.sqlite").is_file()  # the old file is left as it was


def test_keys_beside_a_snapshot_index_are_adopted(library: Library, tmp_path: Path) -> None:
    key = KeyStore(tmp_path / "index.keys.sqlite").create("beside")
    settings = Settings(index=tmp_path / "index", data_dir=tmp_path / "data",
                        snapshot_url="s3://bucket/x")
    adopt_old_files(settings)
    assert KeyStore(settings.keys_path).verify(key.token) == key.key


def test_a_data_dir_inside_the_index_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data_dir must not be inside the index"):
        load_settings(index=tmp_path / "index", data_dir=tmp_path / "index" / "data")


def _wait_episodes(url: str, want: int) -> None:
    deadline = time.monotonic() + 30
    while httpx.get(url + "/api/v1/stats", timeout=10).json()["episodes"] != want:
        assert time.monotonic() < deadline, "the new snapshot was not swapped in"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_key_and_a_share_made_before_a_pull_work_after_it(
        library: Library, s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.bucket("data-" + uuid.uuid4().hex[:10])
    url = f"s3://{bucket}/live"
    store = SnapshotStore(url, client=s3_server.client())
    built = tmp_path / "built"
    shutil.copytree(library.index, built, ignore=shutil.ignore_patterns("LOCK", "*.sqlite-*"))
    store.push(built)
    # Nothing given a path of its own: every file where the service puts it by default.
    env: dict[str, str | None] = {
        **s3_server.env, "CITYWOK_SNAPSHOT_URL": url, "CITYWOK_INDEX": str(tmp_path / "index"),
        "CITYWOK_SNAPSHOT_POLL_INTERVAL_S": "0.3", "CITYWOK_INDEX_CHECK_INTERVAL_S": "0.2",
        "CITYWOK_KEYS_DB": None, "CITYWOK_SHARES_DB": None,
        "CITYWOK_DATA_DIR": str(tmp_path / "data")}
    server = start_server(library, tmp_path, env=env)
    try:
        made = subprocess.run(
            [sys.executable, "-m", "citywok.cli", "keys", "create", "--name", "kept"],
            env={k: v for k, v in {**os.environ, **env}.items() if v is not None},
            capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        token = next(w for w in made.stdout.split() if w.startswith("cwk_"))
        headers = {"X-API-Key": token}
        assert httpx.get(server.url + "/api/v1/me", headers=headers).json()["tier"] == "key"
        clip = library.clips[".mp3"]
        answer = httpx.post(server.url + "/api/v1/identify", headers=headers, timeout=60,
                            files={"file": (clip.path.name, clip.path.read_bytes())}).json()
        share_id = answer["share_url"].rsplit("/", 1)[1]

        with Index.open(built, writable=True) as idx:  # the next snapshot: one episode less
            idx.remove(next(e.episode_id for e in idx.episodes.values()
                            if e.episode_id != clip.episode_id))
        store.push(built)
        _wait_episodes(server.url, 2)

        me = httpx.get(server.url + "/api/v1/me", headers=headers)
        assert me.status_code == 200 and me.json()["key_name"] == "kept"
        shared = httpx.get(server.url + f"/api/v1/shares/{share_id}")
        assert shared.status_code == 200, shared.text
        assert shared.json()["match"]["episode_id"] == clip.episode_id
        page = httpx.get(server.url + f"/r/{share_id}")
        assert page.status_code == 200
        # The pulled index holds the catalogue and segments only.
        assert {p.name for p in (tmp_path / "index").glob("*.sqlite")} == {"catalog.sqlite"}
    finally:
        stop_server(server)
