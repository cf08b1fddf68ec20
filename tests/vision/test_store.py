from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from citywok.errors import IndexNotFoundError
from citywok.vision.errors import FrameIndexFormatError, FrameParamsMismatchError
from citywok.vision.params import FrameParams
from citywok.vision.store import EpisodeFrames, build_index, load_index, save_index


def small_index(params: FrameParams) -> tuple[list[tuple[str, EpisodeFrames]], Path | None]:
    rng = np.random.default_rng(0)
    items = [(f"ep{i}", EpisodeFrames(rng.integers(0, 256, (5 + i, params.n_strips, 8),
                                                    dtype=np.uint8),
                                      np.arange(5 + i, dtype=np.float32)))
             for i in range(3)]
    return items, None


def test_round_trip(tmp_path: Path) -> None:
    params = FrameParams()
    items, _ = small_index(params)
    index = build_index(items, params=params)
    save_index(index, tmp_path)
    back = load_index(tmp_path, params=params)
    assert back.episodes == ("ep0", "ep1", "ep2")
    assert np.array_equal(back.codes, index.codes)
    assert np.array_equal(back.times_s, index.times_s)
    assert back.episode.tolist() == [0] * 5 + [1] * 6 + [2] * 7


def test_other_params_are_refused(tmp_path: Path) -> None:
    params = FrameParams()
    save_index(build_index(small_index(params)[0], params=params), tmp_path)
    with pytest.raises(FrameParamsMismatchError, match="rebuild"):
        load_index(tmp_path, params=FrameParams(sample_rate_hz=2.0))


def test_missing_wrong_magic_version_and_shape(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError):
        load_index(tmp_path / "nothing")
    params = FrameParams()
    save_index(build_index(small_index(params)[0], params=params), tmp_path)
    head = tmp_path / "header.json"
    good = json.loads(head.read_text())
    head.write_text(json.dumps({**good, "magic": "other"}))
    with pytest.raises(FrameIndexFormatError, match="not a CityWok"):
        load_index(tmp_path)
    head.write_text(json.dumps({**good, "version": 99}))
    with pytest.raises(FrameIndexFormatError, match="rebuild"):
        load_index(tmp_path)
    head.write_text(json.dumps({**good, "frames": 4}))
    with pytest.raises(FrameIndexFormatError, match="do not match"):
        load_index(tmp_path)


def test_arrays_are_never_unpickled(tmp_path: Path) -> None:
    params = FrameParams()
    save_index(build_index(small_index(params)[0], params=params), tmp_path)
    np.save(tmp_path / "codes.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FrameIndexFormatError):
        load_index(tmp_path)
