"""Timelines as WebVTT, SRT and chapter lines."""

from __future__ import annotations

from citywok.long.captions import clock, to_chapters, to_srt, to_vtt
from citywok.long.timeline import Stretch, StretchMatch, StretchStatus, Timeline
from citywok.result import Candidate, Episode


def episode(n: int, title: str | None = "Garden Lantern") -> Episode:
    return Episode(episode_id=f"demo-s01e{n:02d}", show="Demo Show", season=1, episode=n,
                   title=title, duration_s=1500.0, source_path=f"/x/{n}.mkv",
                   content_hash=str(n))


def match(n: int, offset_s: float, length_s: float, speed: float = 1.0) -> StretchMatch:
    c = Candidate(episode=episode(n), offset_s=offset_s, score=20.0, confidence=0.99,
                  speed=speed, pitch_semitones=0.0)
    return StretchMatch(candidate=c, end_offset_s=offset_s + length_s * speed)


TIMELINE = Timeline(stretches=(
    Stretch(0.0, 12.5, StretchStatus.MATCH, (match(2, 615.25, 12.5),)),
    Stretch(12.5, 20.0, StretchStatus.UNKNOWN),
    Stretch(20.0, 3725.0, StretchStatus.MATCH, (match(3, 61.0, 3705.0, 1.25),)),
    Stretch(3725.0, 3730.0, StretchStatus.AMBIGUOUS,
            tuple(match(n, 1.0, 5.0) for n in (1, 2, 3, 4, 5))),
), duration_s=3730.0, elapsed_ms=10.0)


def test_clock() -> None:
    assert [clock(s) for s in (0, 59.4, 59.999, 599.99, 615.25, 3725)] == [
        "00:00", "00:59", "01:00", "10:00", "10:15", "1:02:05"]  # citywok.display.clock


def test_chapters_name_episode_and_place() -> None:
    assert to_chapters(TIMELINE).splitlines() == [
        "0:00:00 S01E02 Garden Lantern @ 10:15",
        "0:00:13 Unknown",
        "0:00:20 S01E03 Garden Lantern @ 01:01 (1.25x)",
        "1:02:05 S01E01 Garden Lantern / S01E02 Garden Lantern / S01E03 Garden Lantern"
        " / +2 more (shared) @ 00:01",
    ]
    short = Timeline(stretches=TIMELINE.stretches[:2], duration_s=20.0, elapsed_ms=1.0)
    assert to_chapters(short).splitlines()[0] == "00:00 S01E02 Garden Lantern @ 10:15"


def test_vtt_and_srt_cue_each_matched_segment() -> None:
    vtt = to_vtt(TIMELINE)
    assert vtt.startswith("WEBVTT\n\nsegment-1\n00:00:00.000 --> 00:00:12.500\n"
                          "S01E02 Garden Lantern @ 10:15\n")
    assert "00:00:20.000 --> 01:02:05.000" in vtt and "Unknown" not in vtt
    srt = to_srt(TIMELINE)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:12,500\nS01E02 Garden Lantern @ 10:15\n")
    assert srt.count(" --> ") == 3
