"""Index snapshots through a real S3-compatible server (moto's, started by the tests)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from citywok.errors import SnapshotCorruptError, SnapshotError
from citywok.index import CATALOG_NAME, SEGMENT_DIR, Index
from citywok.store.snapshot import SnapshotStore, current_version
from tests.conftest import DemoLibrary
from tests.servers import S3Server


def _store(s3: S3Server, prefix: str = "citywok") -> tuple[SnapshotStore, Any, str]:
    client = s3.client()
    bucket = s3.bucket("b-" + uuid.uuid4().hex[:12])
    return SnapshotStore(f"s3://{bucket}/{prefix}", client=client), client, bucket


def _copy_index(demo: DemoLibrary, dest: Path) -> Path:
    shutil.copytree(demo.index_dir, dest, ignore=shutil.ignore_patterns("LOCK"))
    return dest


def _episodes(path: Path) -> dict[str, tuple[str, float]]:
    with Index.open(path) as idx:
        return {e.episode_id: (e.show, e.duration_s) for e in idx.episodes.values()}


def test_round_trip_swaps_in_and_pushes_only_new_files(
        s3_server: S3Server, demo_library: DemoLibrary, tmp_path: Path) -> None:
    store, _, _ = _store(s3_server)
    source = _copy_index(demo_library, tmp_path / "built")
    first = store.push(source)
    assert first.bytes_uploaded == first.bytes_total > 0
    assert store.current() == first.snapshot_id

    serving = tmp_path / "serve" / "index"
    pulled = store.pull(serving)
    assert pulled.changed and current_version(serving) == first.snapshot_id
    assert _episodes(serving) == _episodes(source)
    for seg in (source / SEGMENT_DIR).iterdir():  # segments arrive byte for byte
        assert (serving / SEGMENT_DIR / seg.name).read_bytes() == seg.read_bytes()
    assert not store.pull(serving).changed  # already current: nothing downloaded

    # Remove an episode and push again: the segments are already there, so only the new
    # catalogue is sent; the pull swaps the symlink to the new version.
    with Index.open(source, writable=True) as idx:
        idx.remove(demo_library.episode_id(0))
    second = store.push(source)
    catalog_size = (serving / CATALOG_NAME).stat().st_size
    assert 0 < second.bytes_uploaded <= 2 * catalog_size < second.bytes_total
    again = store.pull(serving)
    assert again.changed and current_version(serving) == second.snapshot_id
    assert demo_library.episode_id(0) not in _episodes(serving)
    assert first.snapshot_id in {p.name for p in (serving.parent / "index.versions").iterdir()}


def test_push_writes_the_pointer_last(s3_server: S3Server, demo_library: DemoLibrary,
                                      tmp_path: Path) -> None:
    client = s3_server.client()
    bucket = s3_server.bucket("b-" + uuid.uuid4().hex[:12])
    order: list[str] = []

    class Recording:  # the real client, with the order of writes noted
        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def put_object(self, **kw: Any) -> Any:
            order.append(kw["Key"])
            return client.put_object(**kw)

        def upload_file(self, path: str, bucket: str, key: str) -> Any:
            order.append(key)
            return client.upload_file(path, bucket, key)

    store = SnapshotStore(f"s3://{bucket}/p", client=Recording())
    result = store.push(_copy_index(demo_library, tmp_path / "built"))
    assert order[-1] == "p/CURRENT"
    assert order[-2] == f"p/snapshots/{result.snapshot_id}.json"
    assert all(k.startswith("p/objects/") for k in order[:-2])


@pytest.mark.parametrize("damage", ["corrupt", "missing", "manifest"])
def test_a_damaged_snapshot_is_refused_and_the_old_index_stays(
        s3_server: S3Server, demo_library: DemoLibrary, tmp_path: Path, damage: str) -> None:
    store, client, bucket = _store(s3_server)
    source = _copy_index(demo_library, tmp_path / "built")
    good = store.push(source)
    serving = tmp_path / "index"
    store.pull(serving)
    before = _episodes(serving)

    with Index.open(source, writable=True) as idx:
        idx.remove(demo_library.episode_id(1))
    bad = store.push(source)
    manifest = json.loads(client.get_object(
        Bucket=bucket, Key=f"citywok/snapshots/{bad.snapshot_id}.json")["Body"].read())
    catalog = next(f for f in manifest["files"] if f["path"] == CATALOG_NAME)
    key = f"citywok/objects/{catalog['sha256']}"
    if damage == "corrupt":  # same size, one byte flipped
        body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        body[len(body) // 2] ^= 0xFF
        client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
        expected = "does not match its manifest"
    elif damage == "missing":
        client.delete_object(Bucket=bucket, Key=key)
        expected = "missing from the store"
    else:
        client.put_object(Bucket=bucket, Key=f"citywok/snapshots/{bad.snapshot_id}.json",
                          Body=b'{"format": 1, "snapshot": "x", "files": []}')
        expected = "manifest does not match its checksum"

    with pytest.raises(SnapshotCorruptError, match=expected):
        store.pull(serving)
    assert current_version(serving) == good.snapshot_id
    assert _episodes(serving) == before
    leftovers = [p.name for p in (tmp_path / "index.versions").iterdir()
                 if p.name.startswith(".pull-")]
    assert leftovers == []


def test_push_takes_a_consistent_copy_while_a_writer_holds_the_index(
        s3_server: S3Server, demo_library: DemoLibrary, tmp_path: Path) -> None:
    store, _, _ = _store(s3_server)
    source = _copy_index(demo_library, tmp_path / "built")
    with Index.open(source, writable=True) as writer:
        writer.remove(demo_library.episode_id(2))  # committed, still in the WAL
        store.push(source)
        serving = tmp_path / "index"
        store.pull(serving)
        assert _episodes(serving) == {e.episode_id: (e.show, e.duration_s)
                                      for e in writer.episodes.values()}


def test_a_plain_index_folder_is_kept_aside(s3_server: S3Server, demo_library: DemoLibrary,
                                            tmp_path: Path) -> None:
    store, _, _ = _store(s3_server)
    store.push(_copy_index(demo_library, tmp_path / "built"))
    serving = _copy_index(demo_library, tmp_path / "index")
    store.pull(serving)
    assert serving.is_symlink()
    aside = [p for p in (tmp_path / "index.versions").iterdir() if p.name.startswith("local-")]
    assert len(aside) == 1 and (aside[0] / CATALOG_NAME).is_file()


def test_errors_are_clear(s3_server: S3Server, tmp_path: Path) -> None:
    store, _, _ = _store(s3_server)
    with pytest.raises(SnapshotError, match="no snapshot at"):
        store.pull(tmp_path / "index")
    with pytest.raises(SnapshotError, match="no index at"):
        store.push(tmp_path / "nothing")
    with pytest.raises(SnapshotError, match="not an s3:// URL"):
        SnapshotStore("https://example.com/x", client=object())


def test_cli_push_and_pull(s3_server: S3Server, demo_library: DemoLibrary,
                           tmp_path: Path) -> None:
    bucket = s3_server.bucket("b-" + uuid.uuid4().hex[:12])
    env = {**os.environ, **s3_server.env}
    url = f"s3://{bucket}/cli"
    source = _copy_index(demo_library, tmp_path / "built")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "citywok.cli.main", "snapshot", *args],
                              env=env, capture_output=True, text=True, timeout=120)

    pushed = run("push", url, "--index", str(source), "--json")
    assert pushed.returncode == 0, pushed.stderr
    info = json.loads(pushed.stdout)
    pulled = run("pull", url, "--index", str(tmp_path / "index"))
    assert pulled.returncode == 0, pulled.stderr
    assert info["snapshot_id"] in pulled.stdout
    assert _episodes(tmp_path / "index") == _episodes(source)
    missing = run("pull", f"s3://{bucket}/nothing-here", "--index", str(tmp_path / "other"))
    assert missing.returncode == 69 and "no snapshot at" in missing.stderr
