"""The bench's scoring: the confidence mapping (monotone, weighted, blind to tiny bins), and
wrong answers counted apart from misses."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bench.scoring import OFFSET_TOL_S, Record, confidence_mapping, hits_table


def _bin(lo: float, hi: float | None, right: int, answered: int) -> dict[str, Any]:
    return {"lo": lo, "hi": hi, "right": right, "answered": answered}


def test_mapping_reads_bin_middles_and_keeps_order() -> None:
    bins = [_bin(0, 4, 1, 100), _bin(4, 6, 10, 100), _bin(6, 8, 90, 100), _bin(20, None, 50, 50)]
    assert confidence_mapping(bins) == [(2.0, round(2 / 102, 4)), (5.0, round(11 / 102, 4)),
                                        (7.0, round(91 / 102, 4)), (20.0, round(51 / 52, 4))]


def test_violations_are_pooled_by_weight() -> None:
    # 9-10 is right more often than 10-11: both read the pooled share, weighted by clips.
    bins = [_bin(9, 10, 96, 100), _bin(10, 11, 28, 30), _bin(11, 12, 50, 50)]
    out = confidence_mapping(bins)
    a, b = 97 / 102, 29 / 32
    pooled = round((a * 100 + b * 30) / 130, 4)
    assert out == [(9.5, pooled), (10.5, pooled), (11.5, round(51 / 52, 4))]
    assert [y for _, y in out] == sorted(y for _, y in out)


def test_tiny_bins_say_nothing() -> None:
    bins = [_bin(0, 4, 0, 50), _bin(4, 6, 0, 2), _bin(6, 8, 40, 40)]
    assert confidence_mapping(bins) == [(2.0, round(1 / 52, 4)), (7.0, round(41 / 42, 4))]


def _clip(status: str, named: str | None, at_s: float | None, **kw: Any) -> Record:
    right = named == "ep1.webm" and at_s is not None and abs(at_s - 100.0) <= OFFSET_TOL_S
    return Record(kind="library", distortion=kw.get("distortion", "room_far"), group="room",
                  length_s=kw.get("length_s", 3.0), source="ep1.webm", start_s=100.0,
                  status=status, elapsed_ms=1.0, episode_file=named, offset_s=at_s,
                  right=right if status != "no_match" else False)


def test_wrong_answers_are_counted_apart_from_misses() -> None:
    recs = [_clip("match", "ep1.webm", 100.4), _clip("match", "ep1.webm", 100.9),
            _clip("no_match", None, None), _clip("ambiguous", "ep2.webm", 40.0),
            _clip("ambiguous", "ep1.webm", 100.0), _clip("match", "ep2.webm", 100.0),
            _clip("match", "ep1.webm", 130.0), _clip("match", "ep1.webm", 100.0, length_s=2.0)]
    assert [r.outcome for r in recs] == ["hit", "hit", "no_match", "ambiguous", "ambiguous",
                                         "wrong_episode", "wrong_place", "hit"]
    table = hits_table(recs, ["clean", "room_far"])
    assert list(table) == ["room_far"]
    assert list(table["room_far"]) == ["2s", "3s"]  # by length, not by its text
    cell = table["room_far"]["3s"]
    assert cell == {"hits": 2, "clips": 7, "share": 2 / 7, "no_match": 1, "ambiguous": 2,
                    "misses": 3, "wrong_episode": 1, "wrong_place": 1, "wrong_answers": 2,
                    "wrong_same_recording": 0}
    assert cell["hits"] + cell["misses"] + cell["wrong_answers"] == cell["clips"]
    # A wrong place that holds the same recording (an undeclared repeat) stays wrong.
    repeat = replace(recs[6], identical_audio=True)
    cell = hits_table([repeat], ["room_far"])["room_far"]["3s"]
    assert (cell["wrong_place"], cell["wrong_same_recording"], cell["hits"]) == (1, 1, 0)
