from __future__ import annotations

import numpy as np

from citywok.vision.dedupe import keep_mask


def test_a_still_picture_keeps_one_frame_per_gap() -> None:
    codes = np.zeros((20, 13, 8), np.uint8)
    times = np.arange(20) / 4.0  # 4 frames a second, 5 s
    keep = keep_mask(codes, times, min_bits=3, max_gap_s=1.0)
    assert keep.sum() == 5
    assert keep[0] and keep[4]


def test_changing_pictures_are_all_kept() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (10, 13, 8), dtype=np.uint8)
    keep = keep_mask(codes, np.arange(10) / 2.0, min_bits=3, max_gap_s=1.0)
    assert keep.all()
