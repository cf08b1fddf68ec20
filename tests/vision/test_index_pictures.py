"""`citywok index` keeps each video episode's pictures: one checksummed file per episode,
added only for what changed, kept consistent by remove and compact (issue 17)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from citywok.errors import IndexFormatError
from citywok.index import Index
from citywok.pipeline import drive, index_paths, remove_episode
from citywok.store.local import PICTURE_DIR
from tests.vision.conftest import AVLibrary


def _copy(av: AVLibrary, tmp_path: Path) -> Path:
    shutil.copytree(av.index_dir, tmp_path / "index")
    return tmp_path / "index"


def test_video_episodes_keep_pictures_and_sound_files_none(av_library: AVLibrary) -> None:
    with Index.open(av_library.index_dir) as idx:
        rows = idx.picture_rows()
        with_pictures = {idx.episode(r.episode_key).source_path for r in rows}
        assert with_pictures == {str(av_library.path(0)), str(av_library.path(1))}
        assert len(idx.episodes) == 3  # the MP3 is indexed by its sound alone
        assert {r.family for r in rows} == {"frames"}
        files = sorted(p.name for p in (av_library.index_dir / PICTURE_DIR).iterdir())
        assert files == sorted(r.file for r in rows)
        # at most the 4 frames a second sampled, 13 strips of 8 bytes and a time each
        assert all(r.bytes <= 40 * 4 * (13 * 8 + 4) + 1000 for r in rows)
        searcher = idx.picture_searcher()
        assert searcher is not None and len(searcher.index.episodes) == 2
        assert idx.stats().index_bytes > sum(r.bytes for r in rows)


def test_an_unchanged_library_adds_nothing_and_remove_takes_the_pictures(
        av_library: AVLibrary, tmp_path: Path) -> None:
    index_dir = _copy(av_library, tmp_path)
    with Index.open(index_dir, writable=True) as idx:
        before = {r.file for r in idx.picture_rows()}
        summary = drive(index_paths(idx, [av_library.folder]))
        assert summary.added == () and {r.file for r in idx.picture_rows()} == before
        gone = idx.episode(idx.picture_rows()[0].episode_key).episode_id
        remove_episode(idx, gone)
        left = idx.picture_rows()
        assert len(left) == 1
        idx.compact()
        assert idx.picture_rows() == left
        assert sorted(p.name for p in (index_dir / PICTURE_DIR).iterdir()) == [left[0].file]
        searcher = idx.picture_searcher()
        assert searcher is not None and searcher.index.episodes == (str(left[0].episode_key),)


def test_a_damaged_picture_file_leaves_its_episode_to_the_sound(
        av_library: AVLibrary, tmp_path: Path) -> None:
    index_dir = _copy(av_library, tmp_path)
    with Index.open(index_dir) as idx:
        row = idx.picture_rows()[0]
        path = index_dir / PICTURE_DIR / row.file
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(IndexFormatError, match="damaged"):
            idx.store.read_picture(row)
        searcher = idx.picture_searcher()
        assert searcher is not None and len(searcher.index.episodes) == 1
        assert idx.damaged_pictures and row.file in idx.damaged_pictures[0]
        assert [why.split(":")[0] for why in idx.check_pictures()] == [row.file]
    proc = subprocess.run([sys.executable, "-m", "citywok.cli.main", "check", "--index",
                           str(index_dir), "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and "1 picture file damaged" in proc.stderr
    assert [why.split(":")[0] for why in json.loads(proc.stdout)["damaged_pictures"]] == [
        row.file]


def test_a_picture_file_round_trips_and_refuses_other_bytes() -> None:
    import numpy as np

    from citywok.families import frames as fam
    from citywok.vision.params import FrameParams
    from citywok.vision.store import EpisodeFrames

    fp = FrameParams()
    rng = np.random.default_rng(5)
    made = EpisodeFrames(rng.integers(0, 256, (7, fp.n_strips, 8), dtype=np.uint8),
                         (np.arange(7) / 2).astype(np.float32))
    blob = fam.encode(made, fp)
    back = fam.decode(blob, params=fp)
    assert np.array_equal(back.codes, made.codes)
    assert np.array_equal(back.times_s, made.times_s)
    for bad in (blob[:-1], b"XX" + blob[2:], blob + b"\0"):
        with pytest.raises(IndexFormatError):
            fam.decode(bad, params=fp)
    with pytest.raises(IndexFormatError, match="other frame parameters"):
        fam.decode(blob, params=FrameParams(sample_rate_hz=3.0))
