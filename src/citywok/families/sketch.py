"""The sketch family: verifies a place by comparing band-energy codes.

The signal side (band energies, codes, the clip's sketch on any alignment) is the
analysis stage :mod:`citywok.analysis.sketch`; this module is what the matcher asks of it:
the agreement of a clip with a stored window at given alignments, and its score.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from citywok.analysis.sketch import ClipSketcher, score

NAME = "sketch"

__all__ = ["NAME", "agreement", "score"]


def agreement(clip: ClipSketcher, ref: npt.NDArray[np.uint16], *,
              offsets_frames: npt.NDArray[np.float64], time_scale: float,
              shift_semitones: float, first_code: int, n_codes: int, bits_per_code: int,
              ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(equal bits, bits compared) of the clip's codes against
    ``ref[first_code:first_code + n_codes]``, at each offset (only codes the clip covers
    count)."""
    codes, inside = clip.codes(offsets_frames=offsets_frames, time_scale=time_scale,
                               shift_semitones=shift_semitones, first_code=first_code,
                               n_codes=n_codes)
    window = ref[first_code : first_code + n_codes]
    differing = np.where(inside, np.bitwise_count(np.bitwise_xor(codes, window[None, :])),
                         0).sum(axis=1)
    total = inside.sum(axis=1) * bits_per_code
    return (total - differing).astype(np.int64), total.astype(np.int64)
