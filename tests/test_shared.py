"""Shared material found from the index, and the answers it shapes: the demo library's
episodes all open with the same 8 s theme."""

from pathlib import Path

import numpy as np
import pytest

import citywok.pipeline as pipeline
from citywok.cli.demo import RATE_HZ, THEME_S
from citywok.families import triplet
from citywok.index import Index
from citywok.match.shared import _kind
from citywok.pipeline import identify_samples, remove_episode
from citywok.result import SharedKind, SharedStretch, Status
from tests.conftest import DemoLibrary, to_8k


def test_the_theme_is_found_in_every_episode(demo_index: Index) -> None:
    rows = demo_index.store.shared
    groups = {r.group for r in rows}
    assert len(groups) == 1
    assert {r.episode_key for r in rows} == set(demo_index.episodes)
    for r in rows:
        assert r.kind is SharedKind.INTRO and r.episodes == len(demo_index.episodes)
        assert r.start_s < 1.0 and abs(r.end_s - THEME_S) < 1.5


def test_a_theme_clip_is_ambiguous_and_says_why(demo_library: DemoLibrary,
                                                demo_index: Index) -> None:
    clip = to_8k(demo_library.clip(2, 1.5, 4.0))
    res = identify_samples(clip, demo_index)
    assert res.status is Status.AMBIGUOUS
    assert len(res.candidates) == len(demo_index.episodes)
    assert res.shared is not None and res.shared.kind is SharedKind.INTRO
    assert res.shared.episodes == len(demo_index.episodes)
    assert res.to_json()["shared"] == {"kind": "intro", "episodes": 4}


def test_theme_running_into_the_episode_names_it(demo_library: DemoLibrary,
                                                 demo_index: Index) -> None:
    clip = to_8k(demo_library.clip(1, THEME_S - 1.0, 6.0))
    res = identify_samples(clip, demo_index)
    assert res.status is Status.MATCH, res
    assert res.match is not None and res.match.episode.episode_id == demo_library.episode_id(1)
    assert res.shared is None


def test_removing_an_episode_updates_the_count(demo_library: DemoLibrary,
                                              tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "index"
    shutil.copytree(demo_library.index_dir, copy, ignore=shutil.ignore_patterns("LOCK"))
    with Index.open(copy, writable=True) as idx:
        remove_episode(idx, demo_library.episode_id(3))
        counts = {r.episodes for r in idx.store.shared}
        assert counts == {3} and len(idx.store.shared) == 3


@pytest.mark.parametrize(("start", "end", "kind"), [
    (0.0, 25.0, SharedKind.INTRO), (100.0, 125.0, SharedKind.INTRO),
    (1100.0, 1190.0, SharedKind.OUTRO), (600.0, 608.0, SharedKind.CUE)])
def test_kinds_follow_the_place_in_the_episode(start: float, end: float,
                                               kind: SharedKind) -> None:
    assert _kind(start, end, 1200.0) is kind


def test_no_shared_material_between_unrelated_episodes(tmp_path: Path) -> None:
    from citywok.analysis.peaks import find_peaks
    from citywok.match.shared import find_shared
    from citywok.params import AnalysisParams, SharedParams

    rng = np.random.default_rng(3)
    p = AnalysisParams()
    peaks = {}
    for k in (1, 2, 3):
        t = np.arange(30 * RATE_HZ) / RATE_HZ
        f = rng.uniform(200, 2000, 40)
        x = sum(np.sin(2 * np.pi * fi * t) * (np.sin(2 * np.pi * rng.uniform(0.2, 2) * t) > 0.3)
                for fi in f)
        peaks[k] = find_peaks(np.asarray(x[::2], np.float32), params=p,
                              peak_params=p.index_peaks)
    found: list[SharedStretch] = find_shared(peaks, dict.fromkeys(peaks, 30.0), params=p,
                                            family=triplet, shared=SharedParams())
    assert found == []


def test_a_run_stopped_before_finding_shared_material_is_caught_up(
        demo_library: DemoLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill between the last commit and the self-join leaves every episode in the
    index; the next run adds nothing, and must still find what they share."""
    def killed(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    library = demo_library.folder
    with Index.open(tmp_path / "index", writable=True) as idx:
        monkeypatch.setattr(pipeline, "update_shared", killed)
        with pytest.raises(KeyboardInterrupt):
            pipeline.drive(pipeline.index_paths(idx, [library]))
        monkeypatch.undo()
        assert len(idx.episodes) == 4 and idx.store.shared == []
        assert idx.shared_is_stale("Demo Show")
        summary = pipeline.drive(pipeline.index_paths(idx, [library]))
        assert summary.added == () and len(summary.skipped) == 4
        assert {r.episode_key for r in idx.store.shared} == set(idx.episodes)
        assert not idx.shared_is_stale("Demo Show")
        # Nothing stale, nothing new: a third run does not search again.
        monkeypatch.setattr(pipeline, "update_shared", killed)
        pipeline.drive(pipeline.index_paths(idx, [library]))
