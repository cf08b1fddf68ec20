"""Timelines of constructed inputs: cuts, crossfades, jumps within an episode, a change of
speed, stretches of audio in no library, and shared material; boundaries to a fraction
of a second."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from citywok.cli.demo import RATE_HZ, encode
from citywok.errors import SilentMediaError
from citywok.index import Index
from citywok.long.timeline import (
    Stretch,
    StretchStatus,
    Timeline,
    TimelineEvent,
    run_to_end,
    timeline_file_steps,
    timeline_steps,
)
from citywok.result import Progress
from tests.conftest import DemoLibrary, to_8k

Audio = npt.NDArray[np.float32]
SR = 8000
#: Boundaries must land this close (seconds) to where the input changes.
BOUNDARY_TOL_S = 0.4


@dataclass(frozen=True)
class Part:
    """A stretch of a built input: ``episode`` None for outside audio."""

    episode: int | None
    ep_start_s: float
    start_s: float
    end_s: float
    speed: float = 1.0


def build(lib: DemoLibrary, plan: list[tuple[int | None, float, float, float]],
          outside: Audio, *, fade_s: float = 0.0) -> tuple[Audio, list[Part]]:
    """Join (episode or None, start in episode, seconds, speed) pieces at 16 kHz, with
    crossfades of ``fade_s``; the truth says where each piece's middle-of-fade starts."""
    out = np.zeros(0, np.float32)
    parts: list[Part] = []
    used_outside = 0
    for n, (ep, start, length, speed) in enumerate(plan):
        if ep is None:
            x = outside[used_outside : used_outside + int(length * RATE_HZ)]
            used_outside += len(x)
        else:
            x = lib.clip(ep, start, length * speed)
            if speed != 1.0:
                # Played fast the way a re-upload is: resampled, so pitch follows.
                src = np.arange(0, len(x) - 1, speed)
                x = np.interp(src, np.arange(len(x)), x).astype(np.float32)
        nf = int(fade_s * RATE_HZ) if n else 0
        at = len(out) - nf
        if nf:
            ramp = np.linspace(0, 1, nf, dtype=np.float32)
            out[at:] = out[at:] * (1 - ramp) + x[:nf] * ramp
            out = np.concatenate([out, x[nf:]])
        else:
            out = np.concatenate([out, x])
        begin = (at + nf / 2) / RATE_HZ
        if parts:
            parts[-1] = Part(**{**parts[-1].__dict__, "end_s": begin})
        parts.append(Part(ep, start + (nf / 2 / RATE_HZ) * speed, begin, 0.0, speed))
    parts[-1] = Part(**{**parts[-1].__dict__, "end_s": len(out) / RATE_HZ})
    return out, parts


def run(index: Index, audio16: Audio, *, chunk_s: float = 3.0) -> tuple[Timeline,
                                                                      list[TimelineEvent]]:
    x = to_8k(audio16)
    step = int(chunk_s * SR)
    events: list[TimelineEvent] = []
    steps = timeline_steps((x[i : i + step] for i in range(0, len(x), step)), index)
    while True:
        try:
            events.append(next(steps))
        except StopIteration as stop:
            return stop.value, events


def check(tl: Timeline, parts: list[Part], lib: DemoLibrary) -> None:
    """Each part is one segment with the right label, place, speed and boundaries."""
    segs = list(tl.stretches)
    assert len(segs) == len(parts), [(s.start_s, s.end_s, s.status.value) for s in segs]
    for seg, part in zip(segs, parts, strict=True):
        assert abs(seg.start_s - part.start_s) <= BOUNDARY_TOL_S, (seg, part)
        assert abs(seg.end_s - part.end_s) <= BOUNDARY_TOL_S, (seg, part)
        if part.episode is None:
            assert seg.status is StretchStatus.UNKNOWN and seg.match is None
            continue
        assert seg.status is StretchStatus.MATCH
        assert seg.match is not None
        c = seg.match.candidate
        assert c.episode.episode_id == lib.episode_id(part.episode)
        # Where the segment starts in the episode, wherever its boundary landed.
        expected = part.ep_start_s + (seg.start_s - part.start_s) * part.speed
        assert abs(c.offset_s - expected) <= 0.1
        assert abs(c.speed - part.speed) <= 0.01
        length = (seg.end_s - seg.start_s) * part.speed
        assert abs(seg.match.end_offset_s - (c.offset_s + length)) <= 0.1


@pytest.fixture(scope="module")
def index(demo_library: DemoLibrary) -> Index:
    return Index.open(demo_library.index_dir)


def test_hard_cuts_and_audio_in_no_library(index: Index, demo_library: DemoLibrary,
                                          outside_audio: Audio) -> None:
    audio, parts = build(demo_library, [(0, 10.0, 9.0, 1.0), (None, 0.0, 6.0, 1.0),
                                        (1, 12.0, 10.0, 1.0), (2, 15.0, 7.5, 1.0)],
                         outside_audio)
    tl, _ = run(index, audio)
    check(tl, parts, demo_library)
    assert tl.duration_s == pytest.approx(len(audio) / RATE_HZ, abs=0.01)


def test_crossfade_and_jump_within_one_episode(index: Index, demo_library: DemoLibrary,
                                               outside_audio: Audio) -> None:
    audio, parts = build(demo_library, [(1, 10.0, 9.0, 1.0), (1, 24.0, 10.0, 1.0),
                                        (3, 12.0, 8.0, 1.0)], outside_audio, fade_s=2.0)
    tl, _ = run(index, audio)
    check(tl, parts, demo_library)


def test_change_of_speed_mid_stream(index: Index, demo_library: DemoLibrary,
                                    outside_audio: Audio) -> None:
    # The same scene carries on, but from 18 s of it on the input plays 1.25x fast.
    audio, parts = build(demo_library, [(2, 10.0, 8.0, 1.0), (2, 18.0, 9.0, 1.25)],
                         outside_audio)
    tl, _ = run(index, audio)
    check(tl, parts, demo_library)


def test_an_episode_played_to_its_end_then_the_next(index: Index, demo_library: DemoLibrary,
                                                   outside_audio: Audio) -> None:
    # Nothing of episode 1 can be checked past its end: it must end there.
    length = len(demo_library.raw(0)) / RATE_HZ - 30.0
    audio, parts = build(demo_library, [(0, 30.0, length, 1.0), (1, 12.0, 10.0, 1.0)],
                         outside_audio)
    tl, _ = run(index, audio)
    check(tl, parts, demo_library)


def test_shared_theme_alone_is_ambiguous(index: Index, demo_library: DemoLibrary,
                                         outside_audio: Audio) -> None:
    audio, _ = build(demo_library, [(None, 0.0, 5.0, 1.0), (1, 0.5, 7.0, 1.0),
                                    (None, 0.0, 5.0, 1.0)], outside_audio)
    tl, _ = run(index, audio)
    shared = [s for s in tl.stretches if s.status is not StretchStatus.UNKNOWN]
    assert len(shared) == 1
    seg = shared[0]
    assert seg.status is StretchStatus.AMBIGUOUS
    assert {m.candidate.episode.episode_id for m in seg.matches} == {
        demo_library.episode_id(n) for n in range(4)}
    assert abs(seg.start_s - 5.0) <= BOUNDARY_TOL_S and abs(seg.end_s - 12.0) <= 0.6
    assert all(abs(m.candidate.offset_s - (0.5 + seg.start_s - 5.0)) <= 0.1
               for m in seg.matches)


def test_shared_theme_running_into_the_episode_is_that_episode(
        index: Index, demo_library: DemoLibrary, outside_audio: Audio) -> None:
    # The theme (shared) plays on into episode 3's own audio: one segment, episode 3.
    audio, parts = build(demo_library, [(None, 0.0, 4.0, 1.0), (2, 2.0, 14.0, 1.0)],
                         outside_audio)
    tl, _ = run(index, audio)
    check(tl, parts, demo_library)


def test_segments_stream_out_in_order_as_they_are_found(
        index: Index, demo_library: DemoLibrary, outside_audio: Audio) -> None:
    audio, _ = build(demo_library, [(0, 10.0, 10.0, 1.0), (1, 10.0, 10.0, 1.0),
                                    (None, 0.0, 6.0, 1.0), (3, 9.0, 20.0, 1.0)], outside_audio)
    tl, events = run(index, audio, chunk_s=2.0)
    segs = [e for e in events if isinstance(e, Stretch)]
    assert tuple(segs) == tl.stretches
    # Contiguous from 0 to the end.
    assert segs[0].start_s == 0.0 and segs[-1].end_s == pytest.approx(tl.duration_s)
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(segs))
    # The first segment came out long before the input ended.
    first = events.index(segs[0])
    progress_before = [e for e in events[:first] if isinstance(e, Progress)]
    assert progress_before and progress_before[-1].done < 0.8 * tl.duration_s
    assert [e.stage for e in events if isinstance(e, Progress)][-1] == "done"


def test_a_file_is_read_as_a_stream(index: Index, demo_library: DemoLibrary,
                                    outside_audio: Audio, tmp_path: Path) -> None:
    audio, parts = build(demo_library, [(3, 11.0, 9.0, 1.0), (None, 0.0, 5.0, 1.0),
                                        (0, 14.0, 9.0, 1.0)], outside_audio)
    path = encode(audio, tmp_path / "compilation.m4a", audio_args=("-c:a", "aac", "-b:a", "96k"))
    steps = timeline_file_steps(path, index, total_s=len(audio) / RATE_HZ)
    tl = run_to_end(steps)
    check(tl, parts, demo_library)
    assert tl.to_json(file="c.m4a")["segments"][1] == {
        "start_s": round(tl.stretches[1].start_s, 3), "end_s": round(tl.stretches[1].end_s, 3),
        "status": "unknown", "match": None, "candidates": []}


def test_silence_is_an_error(index: Index) -> None:
    with pytest.raises(SilentMediaError):
        run(index, np.zeros(5 * RATE_HZ, np.float32))
