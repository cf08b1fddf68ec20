"""The bench's simulated rooms: the RT60 measured on each impulse response is the one
drawn, inside the row's range, and the phone is where the row says."""

from __future__ import annotations

import math

import numpy as np
import pyroomacoustics as pra
import pytest

from bench.distortions import ROOM_FAR, ROOM_LISTEN, ROOM_NEAR
from bench.rooms import RT60_TOLERANCE, RoomSpec, simulate

RATE_HZ = 16000
SPEED_OF_SOUND_M_S = float(pra.constants.get("c"))


@pytest.mark.parametrize(("spec", "seed"), [(ROOM_NEAR, 0), (ROOM_NEAR, 1), (ROOM_FAR, 0),
                                            (ROOM_FAR, 1), (ROOM_LISTEN, 0)])
def test_rt60_measured_on_the_response_is_in_the_rows_range(spec: RoomSpec, seed: int) -> None:
    room = simulate(spec, np.random.default_rng(seed), rate_hz=RATE_HZ)
    lo, hi = spec.rt60_s
    assert lo <= room.rt60_s <= hi
    # Measured here on the response itself (T30 as well as the T20 the room was fitted
    # with): a room that only claims its RT60 fails.
    t20 = pra.experimental.measure_rt60(room.ir_tv, fs=RATE_HZ, decay_db=20)
    t30 = pra.experimental.measure_rt60(room.ir_tv, fs=RATE_HZ, decay_db=30)
    assert abs(t20 - room.rt60_s) <= RT60_TOLERANCE * room.rt60_s
    assert lo * (1 - RT60_TOLERANCE) <= t20 <= hi * (1 + RT60_TOLERANCE)
    assert abs(t30 - t20) <= 0.15 * t20


@pytest.mark.parametrize(("spec", "seed"), [(ROOM_NEAR, 2), (ROOM_FAR, 2), (ROOM_LISTEN, 1)])
def test_the_phone_is_as_far_from_the_tv_as_the_row_says(spec: RoomSpec, seed: int) -> None:
    room = simulate(spec, np.random.default_rng(seed), rate_hz=RATE_HZ)
    lo, hi = spec.distance_m
    assert lo <= room.distance_m <= hi
    assert math.dist(room.tv_m, room.phone_m) == pytest.approx(room.distance_m, abs=1e-6)
    for p in (room.tv_m, room.phone_m, *([room.talker_m] if room.talker_m else [])):
        assert all(0 < c < d for c, d in zip(p, room.dims_m, strict=True))
    # The direct sound arrives after the distance's travel time (pyroomacoustics centres
    # a fractional-delay filter of frac_delay_length taps on it), and nothing before it
    # (but the slow ramp of the high-pass pyroomacoustics puts on every response).
    half = pra.constants.get("frac_delay_length") // 2
    at = round(room.distance_m / SPEED_OF_SOUND_M_S * RATE_HZ + half)
    direct = float(np.max(np.abs(room.ir_tv[at - 1 : at + 2])))
    assert direct >= 0.5 * float(np.max(np.abs(room.ir_tv[at - half : at + half])))
    assert float(np.max(np.abs(room.ir_tv[: at - half]))) < 0.05 * direct
    assert (room.ir_talker is not None) == spec.talker
    if room.talker_m is not None:
        assert math.dist(room.talker_m, room.phone_m) >= 1.0


def test_a_room_is_the_same_for_the_same_seed() -> None:
    a = simulate(ROOM_NEAR, np.random.default_rng(7), rate_hz=RATE_HZ)
    b = simulate(ROOM_NEAR, np.random.default_rng(7), rate_hz=RATE_HZ)
    assert a.dims_m == b.dims_m and a.phone_m == b.phone_m
    np.testing.assert_array_equal(a.ir_tv, b.ir_tv)
