"""Skip near-duplicate frames at index time."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from citywok.vision.descriptor import Codes, hamming


def keep_mask(codes: Codes, times_s: npt.NDArray[np.float64], *, min_bits: float,
              max_gap_s: float) -> npt.NDArray[np.bool_]:
    """Which frames to keep: the first, then each one whose strips differ from the last
    kept frame's by more than ``min_bits`` on average, or that comes ``max_gap_s`` or
    more after it. ``codes`` is ``uint8[n, strips, 8]``, ``times_s`` increasing."""
    keep = np.zeros(len(codes), bool)
    last = -1
    for i in range(len(codes)):
        if (last < 0 or times_s[i] - times_s[last] >= max_gap_s - 1e-9
                or float(hamming(codes[i], codes[last]).mean()) > min_bits):
            keep[i] = True
            last = i
    return keep
