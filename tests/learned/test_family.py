"""The learned front end as an evidence family: what ingest stores, what an index reads
back, and what it answers that the peaks cannot (a reverberant room under noise)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from citywok.analysis.peaks import Peaks
from citywok.errors import IndexFormatError
from citywok.families import triplet
from citywok.index import Index, NewEpisode
from citywok.learned import model as M
from citywok.params import AnalysisParams, MatchParams
from citywok.pipeline import identify_samples
from citywok.result import Episode, Status
from citywok.store.segment import EpisodeData, read_segment, write_segment
from tests.conftest import DemoLibrary, to_8k

P = AnalysisParams()


def _embedding(n: int, rows: int) -> npt.NDArray[np.float32]:
    e = np.random.default_rng(n).normal(size=(rows, M.EMBEDDING_DIM)).astype(np.float32)
    return np.asarray(e / np.linalg.norm(e, axis=1, keepdims=True), dtype=np.float32)


def _data(n: int, rows: int) -> EpisodeData:
    peaks = Peaks(frame=np.arange(0, 400, 4, dtype=np.int32),
                  pitch=np.full(100, 40.0 + n, dtype=np.float32))
    return EpisodeData(peaks, np.arange(50, dtype=np.uint16), _embedding(n, rows))


def test_a_stream_of_chunks_gives_the_whole_signals_embeddings() -> None:
    x = np.random.default_rng(0).normal(size=8000 * 13 + 1234).astype(np.float32)
    whole, _ = M.embed_signal(x, hop_frames=M.REFERENCE_HOP_FRAMES)
    stream = M.EmbeddingStream()
    for lo in range(0, len(x), 8000 * 3 + 17):  # chunks that split windows anywhere
        stream.feed(x[lo : lo + 8000 * 3 + 17])
    np.testing.assert_array_equal(stream.finish(), whole)
    assert M.EmbeddingStream().finish().shape == (0, M.EMBEDDING_DIM)


def test_segments_keep_embeddings_as_int8_and_episodes_without_them_own_none(
        tmp_path: Path) -> None:
    data = [_data(1, 30), replace(_data(2, 0), embedding=np.zeros((0, 0), np.float32)),
            _data(3, 7)]
    path = tmp_path / "s.cws"
    digest = write_segment(path, params=P, layout=triplet, episode_keys=[4, 5, 6],
                           episodes=data)
    seg = read_segment(path, params=P, layout=triplet, sha256=digest)
    assert seg.embedding.dtype == np.int8 and seg.embedding.shape == (37, M.EMBEDDING_DIM)
    np.testing.assert_allclose(seg.episode_embedding(0), data[0].embedding, atol=0.5 / 127)
    assert seg.episode_embedding(1).shape[0] == 0
    np.testing.assert_allclose(seg.episode_embedding(2), data[2].embedding, atol=0.5 / 127)


def test_a_segment_whose_embedding_table_disagrees_with_itself_is_refused(
        tmp_path: Path) -> None:
    path = tmp_path / "s.cws"
    write_segment(path, params=P, layout=triplet, episode_keys=[1], episodes=[_data(1, 9)])
    raw = bytearray(path.read_bytes())
    at = raw.find(b'"embedding_dim": 64')
    raw[at : at + 19] = b'"embedding_dim": 63'  # 9 x 64 codes no longer fill rows of 63
    path.write_bytes(bytes(raw))
    with pytest.raises(IndexFormatError, match="inconsistent"):
        read_segment(path, params=P, layout=triplet)


def test_the_index_searches_every_live_episodes_embeddings_and_compaction_keeps_them(
        tmp_path: Path) -> None:
    def episode(n: int, rows: int) -> NewEpisode:
        ep = Episode(f"show-s01e{n:02d}", "Show", 1, n, f"T{n}", 600.0, f"/x/{n}.mp4", f"h{n}")
        d = _data(n, rows)
        return NewEpisode(ep, d.peaks, 1000, 1, sketch=d.sketch, embedding=d.embedding)

    with Index.open(tmp_path, writable=True) as idx:
        idx.add([episode(1, 12), episode(2, 8)])
        idx.add([episode(3, 5)])
        got = idx.embedding_reference()
        assert got is not None
        ref, keys = got
        assert ref.codes.shape[0] == 25 and len(keys) == 3
        before = {int(k): ref.vectors[ref.episode_start[i]:ref.episode_start[i + 1]].copy()
                  for i, k in enumerate(keys)}
        idx.remove("show-s01e02")
        got = idx.embedding_reference()
        assert got is not None and len(got[1]) == 2 and got[0].codes.shape[0] == 17
        idx.compact()
        got = idx.embedding_reference()
        assert got is not None
        ref, keys = got
        for i, k in enumerate(keys):
            np.testing.assert_allclose(ref.vectors[ref.episode_start[i]:ref.episode_start[i + 1]],
                                       before[int(k)], atol=1.5 / 127)


def _room(x: npt.NDArray[np.float32], *, rt60_s: float, snr_db: float,
          seed: int) -> npt.NDArray[np.float32]:
    """``x`` played in a reverberant room (an exponentially decaying noise tail after the
    direct sound) and recorded under white noise ``snr_db`` below it."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rt60_s * 8000)) / 8000
    ir = rng.normal(size=len(t)) * np.exp(-6.9 * t / rt60_s)
    ir[0] = 4.0
    wet = np.convolve(x, ir)[: len(x)]
    noise = rng.normal(size=len(x))
    noise *= np.sqrt(np.mean(wet**2) / np.mean(noise**2)) * 10 ** (-snr_db / 20)
    y = wet + noise
    return np.asarray(y / np.abs(y).max() * 0.5, dtype=np.float32)


def test_a_clip_recorded_in_a_reverberant_noisy_room_is_answered_by_the_embeddings(
        demo_library: DemoLibrary, outside_audio: npt.NDArray[np.float32]) -> None:
    peaks_only = MatchParams(use_embeddings=False)
    with Index.open(demo_library.index_dir) as idx:
        assert idx.family_names == ("triplet", "sketch", "learned")
        for n in range(4):
            clip = _room(to_8k(demo_library.clip(n, 8.0, 5.0)), rt60_s=1.0, snr_db=0.0, seed=n)
            res = identify_samples(clip, idx)
            assert res.status is Status.MATCH and res.match is not None
            assert res.match.episode.episode_id == demo_library.episode_id(n)
            assert abs(res.match.offset_s - 8.0) <= 0.5
            assert res.match.front_end == "learned"
            assert res.to_json()["match"]["front_end"] == "learned"
            # The peaks alone hear nothing there: the embeddings made the answer.
            assert identify_samples(clip, idx, match_params=peaks_only).status is (
                Status.NO_MATCH)
        # The same room around audio that is in no episode: nothing.
        other = _room(to_8k(outside_audio)[: 5 * 8000], rt60_s=1.0, snr_db=0.0, seed=9)
        assert identify_samples(other, idx).status is Status.NO_MATCH
        # A clean clip is still the peaks' answer (the embeddings are not asked).
        clean = identify_samples(to_8k(demo_library.clip(1, 8.0, 5.0)), idx)
        assert clean.match is not None and clean.match.front_end == "peaks"


def test_a_large_reference_is_searched_through_its_lists_with_the_same_answers(
        demo_library: DemoLibrary, tmp_path: Path) -> None:
    import shutil

    # The demo's reference is small; a threshold of 0 sends it through the lists, as a
    # library past 28 h is. The lists are saved in the index's cache folder and read
    # back by the next process (here: the next open).
    listed = MatchParams(embedding_exact_max_windows=0)
    copy = tmp_path / "index"
    shutil.copytree(demo_library.index_dir, copy)
    for _ in range(2):
        with Index.open(copy) as idx:
            for n in range(4):
                clip = _room(to_8k(demo_library.clip(n, 8.0, 5.0)), rt60_s=1.0, snr_db=0.0,
                             seed=n)
                exact, through = (identify_samples(clip, idx, match_params=mp)
                                  for mp in (MatchParams(), listed))
                assert through.status is exact.status is Status.MATCH
                assert through.match is not None and exact.match is not None
                assert through.match.episode == exact.match.episode
                assert through.match.offset_s == pytest.approx(exact.match.offset_s, abs=0.05)
        assert len(list((copy / "cache").glob("coarse-*.faiss"))) == 1
