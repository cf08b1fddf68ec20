"""Live following on generated audio: first answer, seek, change of episode, pause,
shared material, and audio that is in no library."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from citywok.cli.demo import RATE_HZ
from citywok.index import Index
from citywok.long.live import (
    Change,
    Found,
    Listening,
    LiveEvent,
    LiveTracker,
    Lost,
    LostReason,
    Position,
)
from citywok.result import Status
from tests.conftest import DemoLibrary, to_8k

SR = 8000
Audio = npt.NDArray[np.float32]


def run(index: Index, audio: Audio, *, chunk_s: float = 0.2) -> list[LiveEvent]:
    tracker = LiveTracker(index)
    step = int(chunk_s * SR)
    events: list[LiveEvent] = []
    for i in range(0, len(audio), step):
        events += tracker.feed(audio[i : i + step])
    return events


def piece(lib: DemoLibrary, episode: int, start_s: float, length_s: float) -> Audio:
    return to_8k(lib.clip(episode, start_s, length_s))


def first_after(events: list[LiveEvent], kind: type, at_s: float) -> LiveEvent:
    return next(e for e in events if isinstance(e, kind) and e.at_s >= at_s)


@pytest.fixture(scope="module")
def seek_and_change(demo_library: DemoLibrary) -> tuple[list[LiveEvent], float, float]:
    """Episode 2 from 10 s, a seek to 28 s, then episode 3 from 12 s."""
    a = piece(demo_library, 1, 10.0, 11.0)
    b = piece(demo_library, 1, 28.0, 10.0)
    c = piece(demo_library, 2, 12.0, 10.0)
    seek_s = len(a) / SR
    change_s = seek_s + len(b) / SR
    with Index.open(demo_library.index_dir) as index:
        return run(index, np.concatenate([a, b, c])), seek_s, change_s


def test_first_answer_is_the_episode_and_the_position_now(
        seek_and_change: tuple[list[LiveEvent], float, float],
        demo_library: DemoLibrary) -> None:
    events, _, _ = seek_and_change
    first = next(e for e in events if isinstance(e, Found))
    assert isinstance(events[0], Listening)
    assert first.change is Change.FIRST and first.status is Status.MATCH
    assert first.match.episode.episode_id == demo_library.episode_id(1)
    assert first.at_s <= 5.0
    assert abs(first.match.offset_s - (10.0 + first.at_s)) < 0.25


def test_positions_keep_up_while_it_plays(
        seek_and_change: tuple[list[LiveEvent], float, float]) -> None:
    events, seek_s, _ = seek_and_change
    positions = [e for e in events if isinstance(e, Position) and e.at_s < seek_s]
    assert len(positions) >= 4
    for p in positions:
        assert abs(p.match.offset_s - (10.0 + p.at_s)) < 0.25
        assert abs(p.match.speed - 1.0) < 0.01


def test_seek_is_lost_then_found_within_5_s(
        seek_and_change: tuple[list[LiveEvent], float, float],
        demo_library: DemoLibrary) -> None:
    events, seek_s, change_s = seek_and_change
    lost = first_after(events, Lost, seek_s)
    assert isinstance(lost, Lost) and lost.reason is LostReason.MISMATCH
    assert abs(lost.since_s - seek_s) < 0.6
    found = first_after(events, Found, seek_s)
    assert isinstance(found, Found)
    assert found.change is Change.SEEK
    assert found.at_s - seek_s <= 5.0
    assert found.match.episode.episode_id == demo_library.episode_id(1)
    assert abs(found.match.offset_s - (28.0 + found.at_s - seek_s)) < 0.25
    assert found.at_s < change_s


def test_no_position_claims_the_old_place_once_the_peaks_say_it_stopped(
        seek_and_change: tuple[list[LiveEvent], float, float]) -> None:
    # A peak is final about 1.3 s after it is heard, so for that long the old place is
    # all there is to say; past it, its evidence turns and it is not claimed again.
    events, seek_s, _ = seek_and_change
    found = first_after(events, Found, seek_s)
    late = [e for e in events if isinstance(e, Position) and seek_s + 1.5 < e.at_s < found.at_s]
    assert late == []


def test_a_change_just_before_the_episode_ends_is_placed_where_it_happened(
        seek_and_change: tuple[list[LiveEvent], float, float]) -> None:
    # The seek lands 2 s before the end of episode 2, which is left at change_s: the loss
    # is that change, not the episode's end that the place would have reached.
    events, _, change_s = seek_and_change
    lost = first_after(events, Lost, change_s)
    assert isinstance(lost, Lost) and lost.reason is LostReason.MISMATCH
    assert abs(lost.since_s - change_s) < 0.6


def test_an_episode_played_to_its_end(demo_library: DemoLibrary, demo_index: Index) -> None:
    length_s = len(demo_library.raw(1)) / RATE_HZ
    tail = piece(demo_library, 1, length_s - 14.0, 14.0)
    events = run(demo_index, np.concatenate([tail, piece(demo_library, 2, 12.0, 5.0)]))
    end_s = len(tail) / SR
    places = [e.match for e in events if isinstance(e, Found | Position)]
    assert places and all(p.offset_s <= length_s for p in places)
    assert max(p.offset_s for p in places) > length_s - 1.5
    lost = first_after(events, Lost, 0.0)
    assert isinstance(lost, Lost) and lost.reason is LostReason.END
    # Lost at the end itself, not at the episode's last peak before it.
    assert abs(lost.since_s - end_s) < 0.1
    assert lost.last.offset_s == pytest.approx(length_s, abs=0.1)
    assert lost.to_json()["reason"] == "end"


def test_change_of_episode_is_found_within_5_s(
        seek_and_change: tuple[list[LiveEvent], float, float],
        demo_library: DemoLibrary) -> None:
    events, _, change_s = seek_and_change
    found = first_after(events, Found, change_s)
    assert isinstance(found, Found)
    assert found.change is Change.EPISODE
    assert found.at_s - change_s <= 5.0
    assert found.match.episode.episode_id == demo_library.episode_id(2)
    assert abs(found.match.offset_s - (12.0 + found.at_s - change_s)) < 0.25


def test_pause_then_resume(demo_library: DemoLibrary, demo_index: Index) -> None:
    a = piece(demo_library, 3, 12.0, 9.0)
    rest = piece(demo_library, 3, 21.0, 8.0)
    quiet = (np.random.default_rng(3).standard_normal(4 * SR) * 1e-4).astype(np.float32)
    events = run(demo_index, np.concatenate([a, quiet, rest]))
    pause_s = len(a) / SR
    resume_s = pause_s + len(quiet) / SR
    lost = first_after(events, Lost, pause_s)
    assert isinstance(lost, Lost) and lost.reason is LostReason.PAUSE
    assert not [e for e in events if isinstance(e, Found) and pause_s < e.at_s < resume_s]
    found = first_after(events, Found, resume_s)
    assert isinstance(found, Found) and found.change is Change.RESUME
    assert found.at_s - resume_s <= 5.0
    # The position carries on from where it stopped, not from where it would have been.
    assert abs(found.match.offset_s - (21.0 + found.at_s - resume_s)) < 0.25


def test_shared_theme_is_ambiguous_until_the_episode_shows(
        demo_library: DemoLibrary, demo_index: Index) -> None:
    events = run(demo_index, piece(demo_library, 2, 1.0, 16.0))
    first = next(e for e in events if isinstance(e, Found))
    assert first.status is Status.AMBIGUOUS
    assert {c.episode.episode_id for c in first.candidates} == {
        demo_library.episode_id(n) for n in range(4)}
    resolved = next(e for e in events if isinstance(e, Found) and e.change is Change.RESOLVED)
    assert resolved.match.episode.episode_id == demo_library.episode_id(2)
    assert resolved.at_s > 7.0  # the theme (8 s) had to end before it could tell
    last = [e for e in events if isinstance(e, Position)][-1]
    assert last.status is Status.MATCH
    assert abs(last.match.offset_s - (1.0 + last.at_s)) < 0.25


def test_audio_in_no_library_is_never_found(outside_audio: Audio, demo_index: Index) -> None:
    events = run(demo_index, to_8k(outside_audio))
    assert events and all(isinstance(e, Listening) for e in events)
    assert [e.to_json()["event"] for e in events[:1]] == ["listening"]
