"""The engine adapter: a place checked against the index's stored peaks."""

from __future__ import annotations

from citywok.index import Index
from citywok.long.engine import PeakFeed, Place, Verifier
from citywok.long.follow import search
from citywok.params import FollowParams, MatchParams
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
