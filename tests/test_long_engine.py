"""The engine adapter: a place checked against the index's stored peaks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import numpy as np

from citywok.analysis.peaks import find_peaks
from citywok.index import Index
from citywok.long.engine import PeakFeed, Place, Verifier
from citywok.long.follow import search
from citywok.params import AnalysisParams, FollowParams, MatchParams, PeakParams
from tests.conftest import DemoLibrary, to_8k


def test_check_finds_a_known_place_and_not_another(demo_library: DemoLibrary) -> None:
    with Index.open(demo_library.index_dir) as index:
        x = to_8k(demo_library.clip(1, 14.0, 8.0))
        feed = PeakFeed(index, block_s=8.0)
        feed.feed(x)
        feed.finish()
        sighting = search(x[: 5 * 8000], index, MatchParams(), first_frame=0.0,
                          params=FollowParams())
        assert sighting is not None
        place = sighting.places[0]
        fs = index.params.frame_s
        assert abs(place.ref_frame(0.0) * fs - 14.0) < 0.1
        verifier = Verifier(index, FollowParams())
        right = verifier.check(place, feed.peaks, 0.0, 8.0 / fs)
        assert right.found.mean() > 0.7 and right.evidence > 10
        # The same line 3 s off, and another episode at the same place: chance only.
        for wrong in (Place(place.episode_key, place.offset_frames + 3.0 / fs, 1.0, 0.0),
                      Place(place.episode_key % 4 + 1, place.offset_frames, 1.0, 0.0)):
            c = verifier.check(wrong, feed.peaks, 0.0, 8.0 / fs)
            assert c.found.mean() < 0.2 and c.evidence < 3


def test_the_input_is_peaked_as_the_index_was() -> None:
    """Following picks the input's peaks with the index's own ``index_peaks``: an index
    built with other parameters is followed with its peaks, not today's defaults."""
    rng = np.random.default_rng(4)
    t = np.arange(8 * 8000) / 8000
    x = np.asarray(sum(np.sin(2 * np.pi * f * t) * (np.sin(2 * np.pi * g * t) > 0.2)
                       for f, g in zip(rng.uniform(200, 3000, 30), rng.uniform(0.3, 3, 30),
                                       strict=True)), dtype=np.float32)
    counts = []
    for peaks in (AnalysisParams().index_peaks,
                  PeakParams(half_frames=6, half_bins=4, floor_db=60.0, prominence_db=3.0)):
        params = AnalysisParams(index_peaks=peaks)
        feed = PeakFeed(cast(Index, SimpleNamespace(params=params)), block_s=1.0)
        feed.feed(x)
        feed.finish()
        whole = find_peaks(x, params=params, peak_params=peaks)
        assert np.allclose(feed.peaks.frame, whole.frame)
        counts.append(len(whole))
    assert counts[0] != counts[1]
