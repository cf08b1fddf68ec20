"""A snapshot carries the picture files its catalogue names, verified on pull (issue 17)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from citywok.errors import SnapshotCorruptError
from citywok.index import Index
from citywok.store.local import PICTURE_DIR
from citywok.store.snapshot import SnapshotStore
from tests.servers import S3Server
from tests.vision.conftest import AVLibrary


def test_pictures_travel_with_the_snapshot(s3_server: S3Server, av_library: AVLibrary,
                                           tmp_path: Path) -> None:
    client = s3_server.client()
    bucket = s3_server.bucket("b-" + uuid.uuid4().hex[:12])
    store = SnapshotStore(f"s3://{bucket}/pics", client=client)
    source = tmp_path / "built"
    shutil.copytree(av_library.index_dir, source, ignore=shutil.ignore_patterns("LOCK"))
    pushed = store.push(source)
    serving = tmp_path / "serve" / "index"
    store.pull(serving)
    with Index.open(serving) as idx:
        rows = idx.picture_rows()
        assert len(rows) == 2 and idx.picture_searcher() is not None
        assert not idx.damaged_pictures
    for row in rows:
        assert (serving / PICTURE_DIR / row.file).read_bytes() == \
            (source / PICTURE_DIR / row.file).read_bytes()
    # a picture object damaged in the bucket: the pull refuses the snapshot
    key = next(k["Key"] for k in client.list_objects_v2(Bucket=bucket)["Contents"]
               if k["Key"].endswith("/" + _sha(source / PICTURE_DIR / rows[0].file)))
    client.put_object(Bucket=bucket, Key=key, Body=b"not a picture file")
    with pytest.raises(SnapshotCorruptError):
        store.pull(tmp_path / "serve2" / "index")
    assert pushed.files == 1 + len(list((source / "segments").iterdir())) + 2


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
