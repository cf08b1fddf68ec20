"""An ambiguous answer lists every episode that fits (issue 8, item 11): twelve episodes
that open with the same theme give twelve candidates, not the first ten."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from citywok.cli.demo import RATE_HZ, THEME_S, encode, melody
from citywok.index import Index
from citywok.pipeline import drive, identify_samples, index_paths
from citywok.result import Status
from tests.conftest import to_8k

EPISODES = 12


@pytest.fixture(scope="module")
def shared_intro(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """Twelve short episodes: the same theme, then music of their own (no speech: fast)."""
    root = tmp_path_factory.mktemp("intro12")
    folder = root / "Twelve"
    folder.mkdir()
    theme = melody(np.random.default_rng(5), THEME_S, level=0.3)
    for n in range(EPISODES):
        body = melody(np.random.default_rng(100 + n), 5.0, level=0.25)
        encode(np.concatenate([theme, body]), folder / f"Twelve - S01E{n + 1:02d}.wav")
    with Index.open(root / "index", writable=True) as idx:
        drive(index_paths(idx, [folder]))
    return root / "index", theme


def test_every_episode_that_shares_the_intro_is_listed(shared_intro: tuple[Path, np.ndarray],
                                                      ) -> None:
    index_dir, theme = shared_intro
    clip = to_8k(theme[int(1.0 * RATE_HZ): int(7.0 * RATE_HZ)])
    with Index.open(index_dir) as idx:
        res = identify_samples(clip, idx)
    assert res.status is Status.AMBIGUOUS, res
    ids = {c.episode.episode_id for c in res.candidates}
    assert len(ids) == EPISODES, sorted(ids)
    assert all(abs(c.offset_s - 1.0) < 0.5 for c in res.candidates)
