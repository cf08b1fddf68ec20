from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from citywok.vision.descriptor import (
    CODE_BITS,
    CODE_BYTES,
    COEFFS,
    frame_codes,
    hamming,
    to_grid,
    window_codes,
)
from citywok.vision.params import FrameParams


def smooth_frame(seed: int, h: int = 180, w: int = 320) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (6, 10))
    yy = np.linspace(0, 5, h)[:, None]
    xx = np.linspace(0, 9, w)[None, :]
    y0, x0 = np.floor(yy).astype(int), np.floor(xx).astype(int)
    y1, x1 = np.minimum(y0 + 1, 5), np.minimum(x0 + 1, 9)
    fy, fx = yy - y0, xx - x0
    img = (coarse[y0, x0] * (1 - fy) * (1 - fx) + coarse[y1, x0] * fy * (1 - fx)
           + coarse[y0, x1] * (1 - fy) * fx + coarse[y1, x1] * fy * fx)
    return np.asarray(np.clip(img + rng.normal(0, 3, (h, w)), 0, 255), dtype=np.uint8)


def test_every_bit_has_a_coefficient() -> None:
    assert len(COEFFS) == CODE_BITS == 8 * CODE_BYTES
    assert len(set(COEFFS)) == CODE_BITS
    assert (0, 0) not in COEFFS  # the DC term is brightness: it carries no bit


@given(st.lists(st.booleans(), min_size=CODE_BITS, max_size=CODE_BITS))
def test_bit_layout_round_trips(bits: list[bool]) -> None:
    packed = np.packbits(np.array(bits), bitorder="little")
    assert packed.shape == (CODE_BYTES,)
    assert np.unpackbits(packed, bitorder="little").astype(bool).tolist() == bits


def test_codes_have_one_row_per_strip() -> None:
    params = FrameParams()
    codes = frame_codes(np.stack([smooth_frame(1), smooth_frame(2)]), params=params)
    assert codes.shape == (2, params.n_strips, CODE_BYTES)
    assert codes.dtype == np.uint8


def test_brightness_and_contrast_leave_the_codes_almost_unchanged() -> None:
    params = FrameParams()
    frame = smooth_frame(3)
    graded = np.clip(frame.astype(np.float32) * 0.7 + 40, 0, 255).astype(np.uint8)
    a = frame_codes(frame[None], params=params)
    b = frame_codes(graded[None], params=params)
    assert hamming(a, b).max() <= 4


def test_different_pictures_differ() -> None:
    params = FrameParams()
    a = frame_codes(smooth_frame(4)[None], params=params)
    b = frame_codes(smooth_frame(5)[None], params=params)
    assert hamming(a, b).mean() > 16


def test_a_window_on_a_strip_is_that_strip() -> None:
    """A 9:16 crop resampled to the grid's height meets the strip it holds."""
    params = FrameParams()
    grid = to_grid(smooth_frame(6)[None], height_px=72, width_px=128)
    strips = window_codes(grid, np.arange(13) * 8, width_px=32)
    crop = grid[:, :, 40:80]  # holds the strips at 40 and 48
    windows = window_codes(np.ascontiguousarray(crop), np.arange(9), width_px=32)
    assert hamming(windows[0, 0], strips[0, 5]) == 0
    assert hamming(windows[0, 8], strips[0, 6]) == 0
    assert params.n_strips == 13
