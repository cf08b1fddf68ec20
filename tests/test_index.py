import os
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from citywok.analysis.peaks import Peaks
from citywok.errors import (
    EpisodeNotFoundError,
    IndexFormatError,
    IndexLockedError,
    IndexNotFoundError,
    IndexParamsMismatchError,
)
from citywok.families import triplet
from citywok.index import MAGIC, SEGMENT_DIR, Index, NewEpisode, read_segment, write_segment
from citywok.learned.model import weights_sha256
from citywok.params import AnalysisParams
from citywok.pipeline import drive, identify_samples, index_paths
from citywok.result import Episode, Status
from citywok.store.segment import EpisodeData
from tests.conftest import DemoLibrary, to_8k

P = AnalysisParams()


def _peaks(seed: int, n: int = 3000) -> Peaks:
    rng = np.random.default_rng(seed)
    frames = np.sort(rng.integers(0, 20000, n)).astype(np.int32)
    return Peaks(frames, rng.uniform(10, 40, n).astype(np.float32))


def _sketch(seed: int, n: int = 12000) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1 << 16, n).astype(np.uint16)


def _data(seed: int) -> EpisodeData:
    return EpisodeData(_peaks(seed), _sketch(seed))


def _episode(n: int) -> NewEpisode:
    ep = Episode(f"show-s01e{n:02d}", "Show", 1, n, f"T{n}", 600.0, f"/x/{n}.mp4", f"h{n}")
    return NewEpisode(ep, _peaks(n), 1000, 1, sketch=_sketch(n))


def test_segment_round_trip(tmp_path: Path) -> None:
    data = [_data(1), _data(2)]
    path = tmp_path / "s.cws"
    digest = write_segment(path, params=P, layout=triplet, episode_keys=[5, 9], episodes=data)
    assert len(digest) == 64
    seg = read_segment(path, params=P, layout=triplet, sha256=digest)
    assert list(seg.episode_keys) == [5, 9]
    back = seg.episode_peaks(1)
    np.testing.assert_array_equal(back.frame, data[1].peaks.frame)
    np.testing.assert_allclose(back.pitch, data[1].peaks.pitch, atol=1 / 128 + 1e-6)
    np.testing.assert_array_equal(seg.episode_sketch(1), data[1].sketch)
    assert int(seg.directory[-1]) == len(seg.values) == len(seg.check) > 0


def test_segment_damage_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "s.cws"
    digest = write_segment(path, params=P, layout=triplet, episode_keys=[1], episodes=[_data(1)])
    data = path.read_bytes()
    (tmp_path / "trunc.cws").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexFormatError, match="truncated"):
        read_segment(tmp_path / "trunc.cws", params=P, layout=triplet)
    (tmp_path / "magic.cws").write_bytes(b"NOTMAGIC" + data[8:])
    with pytest.raises(IndexFormatError, match="not a CityWok segment"):
        read_segment(tmp_path / "magic.cws", params=P, layout=triplet)
    (tmp_path / "ver.cws").write_bytes(MAGIC + (99).to_bytes(4, "little") + data[12:])
    with pytest.raises(IndexFormatError, match="format 99"):
        read_segment(tmp_path / "ver.cws", params=P, layout=triplet)
    with pytest.raises(IndexParamsMismatchError, match="n_fft"):
        read_segment(path, params=replace(P, n_fft=1024), layout=triplet)
    flipped = bytearray(data)
    flipped[-100] ^= 0xFF
    (tmp_path / "flip.cws").write_bytes(bytes(flipped))
    with pytest.raises(IndexFormatError, match="checksum"):
        read_segment(tmp_path / "flip.cws", params=P, layout=triplet, sha256=digest)


def test_open_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError):
        Index.open(tmp_path / "none")


def test_the_header_names_the_families_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    with Index.open(tmp_path, writable=True) as idx:
        assert idx.family_names == ("triplet", "sketch", "learned")
        assert (idx.nominator.NAME, idx.verifier.NAME) == ("triplet", "sketch")
        assert idx.embedder is not None and idx.embedder.NAME == "learned"
        with idx.catalog.transaction() as db:
            idx.catalog.set_meta("families", "triplet,learned", db)
    with pytest.raises(IndexFormatError, match=r"verifying family 'learned'.*re-index with "
                                               r"`citywok index`"):
        Index.open(tmp_path)


def test_an_index_built_with_other_weights_is_refused_in_one_sentence(tmp_path: Path) -> None:
    import json

    with Index.open(tmp_path, writable=True) as idx:
        stored = json.loads(idx.catalog.get_meta("front_end.learned") or "{}")
        assert stored["weights_sha256"] == weights_sha256()
        stored["weights_sha256"] = "0" * 64
        with idx.catalog.transaction() as db:
            idx.catalog.set_meta("front_end.learned", json.dumps(stored), db)
    with pytest.raises(IndexFormatError) as err:
        Index.open(tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and "weights_sha256 '0000" in msg
    assert weights_sha256()[:12] in msg and msg.endswith("re-index with `citywok index`")
    assert msg.count(". ") == 0  # one sentence


def test_an_index_at_another_sample_rate_has_no_embedding_family(tmp_path: Path) -> None:
    with Index.open(tmp_path, writable=True, params=replace(P, sample_rate_hz=16000, n_fft=1024,
                                                            hop_length=256)) as idx:
        assert idx.family_names == ("triplet", "sketch") and idx.embedder is None
        assert idx.embedding_reference() is None


def test_params_are_stored_and_enforced(tmp_path: Path) -> None:
    custom = replace(P, index_fanout=3)
    Index.open(tmp_path, writable=True, params=custom).close()
    with Index.open(tmp_path) as idx:
        assert idx.params == custom
    with pytest.raises(IndexParamsMismatchError, match="index_fanout"):
        Index.open(tmp_path, params=P)


def test_add_remove_compact(tmp_path: Path) -> None:
    with Index.open(tmp_path, writable=True) as idx:
        idx.add([_episode(1), _episode(2)])
        idx.add([_episode(3)])
        assert len(idx.segments) == 2 and len(idx.episodes) == 3
        idx.remove("show-s01e02")
        assert {e.episode_id for e in idx.episodes.values()} == {"show-s01e01", "show-s01e03"}
        with pytest.raises(EpisodeNotFoundError):
            idx.remove("show-s01e02")
        before = idx.stats().hashes
        idx.compact()
        assert len(idx.segments) == 1 and idx.stats().hashes < before
        assert len(list((tmp_path / SEGMENT_DIR).iterdir())) == 1
    with Index.open(tmp_path) as ro:
        assert ro.stats().episodes == 2


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    with Index.open(tmp_path, writable=True), pytest.raises(IndexLockedError):
        Index.open(tmp_path, writable=True)


def test_failed_commit_leaves_previous_index(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with Index.open(tmp_path, writable=True) as idx:
        idx.add([_episode(1)])

        def boom(*a: object, **k: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(idx.catalog, "add_episode", boom)
        with pytest.raises(KeyboardInterrupt):
            idx.add([_episode(2)])
    with Index.open(tmp_path) as ro:
        assert [e.episode_id for e in ro.episodes.values()] == ["show-s01e01"]
    # The failed batch's segment file is removed at once (a killed writer's strays are
    # removed by the next writer: see the kill -9 test).
    assert len(list((tmp_path / SEGMENT_DIR).iterdir())) == 1


def test_kill_9_mid_commit_leaves_previous_index(tmp_path: Path) -> None:
    """A writer killed with SIGKILL while its transaction is open loses only that batch."""
    with Index.open(tmp_path, writable=True) as idx:
        idx.add([_episode(1)])
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from tests.test_index import _episode
        from citywok.index import Index
        idx = Index.open({str(tmp_path)!r}, writable=True)
        real = idx.catalog.add_episode
        def add_then_die(*a, **k):
            real(*a, **k)
            os.kill(os.getpid(), signal.SIGKILL)
        idx.catalog.add_episode = add_then_die
        idx.add([_episode(2), _episode(3)])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    with Index.open(tmp_path) as ro:
        assert [e.episode_id for e in ro.episodes.values()] == ["show-s01e01"]
        assert ro.stats().segments == 1
    with Index.open(tmp_path, writable=True) as rw:
        rw.add([_episode(2)])
        assert rw.stats().episodes == 2


def test_reindex_skips_unchanged_and_follows_moves(demo_library: DemoLibrary,
                                                   tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(demo_library.folder, lib)
    index_dir = tmp_path / "index"
    with Index.open(index_dir, writable=True) as idx:
        first = drive(index_paths(idx, [lib]))
        assert len(first.added) == 4 and not first.failed
        again = drive(index_paths(idx, [lib]))
        assert again.added == () and len(again.skipped) == 4
        # A moved file is recognised by its content: nothing is decoded again.
        files = sorted(p for p in lib.iterdir() if p.name.startswith("Demo Show"))
        moved = lib / "moved" / files[0].name
        moved.parent.mkdir()
        files[0].rename(moved)
        third = drive(index_paths(idx, [lib]))
        assert third.added == () and len(third.skipped) == 4
        row = idx.catalog.by_id("demo-show-s01e01")
        assert row.episode.source_path == str(moved.resolve())
        # A changed file replaces its episode and keeps its id.
        target = files[1]
        data = bytearray(target.read_bytes())
        target.write_bytes(bytes(data[: len(data) * 3 // 4]))
        fourth = drive(index_paths(idx, [lib]))
        assert fourth.updated == ("demo-show-s01e02",)
        assert idx.stats().episodes == 4


def test_index_reports_broken_files_and_continues(tmp_path: Path,
                                                  demo_library: DemoLibrary) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    good = next(p for p in demo_library.folder.iterdir() if p.suffix == ".mp3")
    shutil.copy(good, lib / good.name)
    (lib / "Broken - S01E09 - Bad.mp4").write_text("not a video")
    with Index.open(tmp_path / "index", writable=True) as idx:
        summary = drive(index_paths(idx, [lib]))
    assert len(summary.added) == 1
    assert [f for f, _ in summary.failed] == ["Broken - S01E09 - Bad.mp4"]


def test_removed_episode_is_not_matched(demo_library: DemoLibrary, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(demo_library.index_dir, index_dir)
    (index_dir / "LOCK").unlink(missing_ok=True)
    clip = to_8k(demo_library.clip(1, 20.0, 5.0))
    with Index.open(index_dir, writable=True) as idx:
        assert identify_samples(clip, idx).match is not None
        idx.remove(demo_library.episode_id(1))
        res = identify_samples(clip, idx)
        assert res.status is Status.NO_MATCH or all(
            c.episode.episode_id != demo_library.episode_id(1) for c in res.candidates)
    assert os.path.exists(index_dir / "catalog.sqlite")
