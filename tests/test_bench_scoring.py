"""The bench's confidence mapping: monotone, weighted, and blind to tiny bins."""

from __future__ import annotations

from typing import Any

from bench.scoring import confidence_mapping


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
