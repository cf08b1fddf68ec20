"""The local store's reader: what a fresh process hashes when it opens an index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from citywok.index import Index
from citywok.store import local
from citywok.store.segment import file_sha256
from tests.conftest import DemoLibrary


def test_a_memo_spares_a_new_reader_the_hashing_until_a_segment_changes(
        demo_library: DemoLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(demo_library.index_dir, index_dir, ignore=shutil.ignore_patterns("LOCK"))
    memo = tmp_path / "cache" / "verified.json"
    hashed: list[str] = []

    def counting(path: Path) -> str:
        hashed.append(path.name)
        return file_sha256(path)

    monkeypatch.setattr(local, "file_sha256", counting)

    def open_fresh() -> Index:
        local._verified.clear()  # as a new process: nothing verified in memory
        return Index.open(index_dir, verified_memo=memo)

    with open_fresh() as idx:
        segments = [s.path for s in idx.segments]
        assert idx.damaged == []
    assert sorted(hashed) == sorted(p.name for p in segments)
    assert len(json.loads(memo.read_text())) == len(segments)

    hashed.clear()
    with open_fresh() as idx:
        assert idx.damaged == []
    assert hashed == []  # remembered: nothing hashed

    # A damaged segment (rewritten in place, same size) is hashed again and refused.
    victim = segments[0]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    with open_fresh() as idx:
        assert [d.file for d in idx.damaged] == [victim.name]
    assert hashed == [victim.name]

    # Without a memo, every open of a new process hashes every segment, as before.
    hashed.clear()
    local._verified.clear()
    with Index.open(index_dir) as idx:
        assert len(idx.damaged) == 1
    assert sorted(hashed) == sorted(p.name for p in segments)
