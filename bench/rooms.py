"""Rooms a clip is played in and recorded by a phone: image-source impulse responses.

A :class:`RoomSpec` says what is drawn for each clip (reverberation time, how far the
phone is from the TV, whether somebody talks in the room); :func:`simulate` draws one
shoebox room from a seeded generator and returns the impulse responses from the TV, and
from the talker, to the phone, made with pyroomacoustics' image-source method.

The reverberation time is a property of the impulse response, not of the formula that
chose the walls' absorption: Sabine's formula, which ``pyroomacoustics.inverse_sabine``
inverts, is only a first guess (in a long room the image-source response decays up to
50 % slower than it says). :func:`simulate` measures the response it made (T20, from
Schroeder's backward integral, extrapolated to 60 dB) and corrects the absorption until
the measured RT60 is within :data:`RT60_TOLERANCE` of the one drawn.

The image sources reach to 0.6 of the order Sabine's formula asks for: the response then
covers its first ~40 dB of decay, which is all a T20 measurement reads and more than the
ambient noise (15 dB below the TV's sound) leaves audible; going further costs ten times
the time for a tail under the noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyroomacoustics as pra

from bench.corpus import Audio

#: The measured RT60 is within this share of the one drawn (see the module docstring).
RT60_TOLERANCE = 0.04
#: Share of Sabine's image-source order that is computed (see the module docstring).
ORDER_SHARE = 0.6
_MARGIN_M = 0.3
#: Room sizes drawn (metres): width and height; the length fits the distance asked.
_WIDTH_M = (3.0, 5.5)
_HEIGHT_M = (2.4, 3.0)


@dataclass(frozen=True)
class RoomSpec:
    """What is drawn for each clip, uniformly within each range (a range of one value
    is that value)."""

    rt60_s: tuple[float, float]
    #: From the TV's loudspeaker to the phone's microphone.
    distance_m: tuple[float, float]
    #: Whether a person talks somewhere else in the room (a second source).
    talker: bool = False


@dataclass(frozen=True)
class Room:
    """One drawn room and its impulse responses (at ``rate_hz``)."""

    dims_m: tuple[float, float, float]
    tv_m: tuple[float, float, float]
    phone_m: tuple[float, float, float]
    talker_m: tuple[float, float, float] | None
    #: The RT60 drawn, and the RT60 measured on :attr:`ir_tv` (T20).
    rt60_s: float
    rt60_measured_s: float
    distance_m: float
    #: The walls' energy absorption coefficient that gave it, and the image-source order.
    absorption: float
    max_order: int
    rate_hz: int
    ir_tv: Audio
    ir_talker: Audio | None


def measure_rt60(ir: Audio, *, rate_hz: int) -> float:
    """RT60 of an impulse response: T20 (the decay from -5 to -25 dB of Schroeder's
    backward integral) extrapolated to 60 dB."""
    return float(pra.experimental.measure_rt60(ir, fs=rate_hz, decay_db=20))


def _inside(p: tuple[float, float, float], dims: tuple[float, float, float]) -> bool:
    return all(_MARGIN_M <= c <= d - _MARGIN_M for c, d in zip(p, dims, strict=True))


def _draw(spec: RoomSpec, rng: np.random.Generator) -> tuple[
        float, float, tuple[float, float, float], tuple[float, float, float],
        tuple[float, float, float], tuple[float, float, float] | None]:
    """RT60, distance, room size, TV, phone and talker positions."""
    rt60 = float(rng.uniform(*spec.rt60_s))
    dist = float(rng.uniform(*spec.distance_m))
    shortest = max(3.5, dist + 1.2)
    dims = (float(rng.uniform(shortest, shortest + 3.0)), float(rng.uniform(*_WIDTH_M)),
            float(rng.uniform(*_HEIGHT_M)))
    # The TV stands against the wall at x = 0; the phone is held up in front of it.
    tv = (float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.8, dims[1] - 0.8)),
          float(rng.uniform(0.7, 1.3)))
    z = float(rng.uniform(1.0, 1.6))
    flat = math.sqrt(dist**2 - (z - tv[2]) ** 2)
    phone = (tv[0] + flat, tv[1], z)  # straight ahead always fits: length >= dist + 1.2
    for _ in range(50):
        az = float(rng.uniform(-math.pi / 3, math.pi / 3))
        p = (tv[0] + flat * math.cos(az), tv[1] + flat * math.sin(az), z)
        if _inside(p, dims):
            phone = p
            break
    talker = None
    if spec.talker:
        for _ in range(200):
            t = (float(rng.uniform(0.5, dims[0] - 0.5)), float(rng.uniform(0.5, dims[1] - 0.5)),
                 float(rng.uniform(1.1, 1.7)))
            if math.dist(t, phone) >= 1.0 and math.dist(t, tv) >= 1.0:
                talker = t
                break
        else:  # pragma: no cover - a room of at least 3.5 x 3 m always has such a place
            raise RuntimeError("no place for the talker")
    return rt60, dist, dims, tv, phone, talker


def simulate(spec: RoomSpec, rng: np.random.Generator, *, rate_hz: int) -> Room:
    """Draw a room from ``spec`` with ``rng`` and make its impulse responses, the
    absorption corrected until the measured RT60 is the one drawn (module docstring)."""
    rt60, dist, dims, tv, phone, talker = _draw(spec, rng)
    absorption, sabine_order = pra.inverse_sabine(rt60, list(dims))
    order = max(3, math.ceil(ORDER_SHARE * sabine_order))
    best: tuple[float, float, list[Audio]] | None = None
    for _ in range(6):
        room = pra.ShoeBox(list(dims), fs=rate_hz, materials=pra.Material(float(absorption)),
                           max_order=order)
        room.add_source(list(tv))
        if talker is not None:
            room.add_source(list(talker))
        room.add_microphone(list(phone))
        room.compute_rir()
        irs = [np.asarray(h, dtype=np.float32) for h in room.rir[0]]
        measured = measure_rt60(irs[0], rate_hz=rate_hz)
        if best is None or abs(measured - rt60) < abs(best[1] - rt60):
            best = (float(absorption), measured, irs)
        if abs(measured - rt60) <= RT60_TOLERANCE * rt60:
            break
        # The decay per reflection is (1 - a): RT60 goes as 1 / -ln(1 - a) (Eyring).
        absorption = float(np.clip(1 - (1 - absorption) ** (measured / rt60), 0.005, 0.95))
    assert best is not None
    absorption, measured, irs = best
    return Room(dims_m=dims, tv_m=tv, phone_m=phone, talker_m=talker, rt60_s=rt60,
                rt60_measured_s=measured, distance_m=dist, absorption=absorption,
                max_order=order, rate_hz=rate_hz, ir_tv=irs[0],
                ir_talker=irs[1] if talker is not None else None)
