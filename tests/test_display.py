"""How values read to a person: one clock formatter, rounded once."""

import math
import re

from hypothesis import given
from hypothesis import strategies as st

from citywok.display import clock, whole_seconds

_CLOCK = re.compile(r"^(?:(\d+):)?(\d\d):(\d\d)(?:\.(\d+))?$")


def _seconds(text: str) -> float:
    m = _CLOCK.match(text)
    assert m, text
    h, mm, ss, frac = m.groups()
    if h is not None:
        assert int(mm) < 60, text
    assert int(ss) < 60, text
    return int(h or 0) * 3600 + int(mm) * 60 + int(ss) + (int(frac) / 10 ** len(frac)
                                                          if frac else 0.0)


times = st.floats(min_value=0, max_value=1e7, allow_nan=False)


@given(times, st.integers(0, 3))
def test_clock_reads_back_within_half_a_unit(seconds: float, decimals: int) -> None:
    text = clock(seconds, decimals=decimals)
    assert abs(_seconds(text) - seconds) <= 0.5 / 10**decimals + 1e-6 * max(1.0, seconds)
    assert (text.count(".") == 1) == (decimals > 0)


@given(times, times)
def test_clock_is_monotonic(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert _seconds(clock(lo)) <= _seconds(clock(hi))


def test_clock_carries_into_minutes_and_hours() -> None:
    # Rounding once: 599.99 s is ten minutes, never "9:60.0" (issue 8, item 4).
    assert clock(599.99) == "10:00.0"
    assert clock(599.99, decimals=0) == "10:00"
    assert clock(3599.96) == "1:00:00.0"
    assert clock(59.5, decimals=0) == "01:00"
    assert clock(21.31) == "00:21.3"


def test_clock_of_nonsense_is_plain() -> None:
    assert clock(-3.0) == "00:00.0"
    assert clock(math.nan) == clock(math.inf) == "?"


@given(times)
def test_whole_seconds_is_what_clock_shows(seconds: float) -> None:
    assert _seconds(clock(seconds, decimals=0)) == whole_seconds(seconds)
