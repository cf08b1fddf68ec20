"""The frame descriptor: 64-bit DCT hashes of overlapping vertical strips.

A frame on the grid (``FrameParams.grid_height_px`` rows) is cut into windows
``strip_width_px`` wide. A window's code is 64 bits, one per low-frequency 2-D DCT
coefficient (8 vertical x 8 horizontal frequencies, the DC term swapped for the 9th
vertical one), set when the coefficient is above the median of the 64. Brightness,
contrast and most colour grading move every coefficient alike and leave the signs
about the median; captions and stickers touch a few; a crop keeps whole strips.

Code layout (:data:`CODE_BYTES` bytes, FAISS's binary layout, bit ``i`` of the
little-endian bit order is coefficient ``COEFFS[i]``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

from citywok.vision.params import FrameParams

Codes = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]

CODE_BITS = 64
CODE_BYTES = CODE_BITS // 8
#: (vertical, horizontal) frequency of each bit: 8x8 without DC, plus (8, 0).
COEFFS: tuple[tuple[int, int], ...] = tuple(
    [(v, u) for v in range(8) for u in range(8) if (v, u) != (0, 0)] + [(8, 0)])


def dct_basis(n_out: int, n_in: int) -> Floats:
    """The first ``n_out`` rows of the orthonormal DCT-II of length ``n_in``."""
    k = np.arange(n_out)[:, None]
    x = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * (2 * x + 1) * k / (2 * n_in)) * np.sqrt(2 / n_in)
    basis[0] /= np.sqrt(2)
    return np.asarray(basis, dtype=np.float32)


def to_grid(pixels: npt.NDArray[np.uint8], *, height_px: int, width_px: int) -> Floats:
    """Resample grey frames ``uint8[n, h, w]`` to ``float32[n, height_px, width_px]``."""
    if pixels.shape[1:] == (height_px, width_px):  # ffmpeg already scaled them
        return pixels.astype(np.float32)
    out = np.empty((pixels.shape[0], height_px, width_px), np.float32)
    for i, frame in enumerate(pixels):
        im = Image.fromarray(np.ascontiguousarray(frame), "L")
        out[i] = np.asarray(im.resize((width_px, height_px), Image.Resampling.BOX), np.float32)
    return out


def window_codes(grid: Floats, offsets: npt.NDArray[np.int64], *, width_px: int,
                 rows_px: int | None = None) -> Codes:
    """Codes of windows ``[:, :, o:o + width_px]`` of grid frames: ``uint8[n, len(offsets), 8]``."""
    if rows_px is not None:
        grid = grid[:, :rows_px]
    h = grid.shape[1]
    dv = dct_basis(9, h)
    du = dct_basis(8, width_px)
    cols = offsets[:, None] + np.arange(width_px)[None, :]
    # Separable: the vertical transform once over the whole width, then each window's
    # horizontal one (a third of the work of transforming every window in full).
    vertical = np.einsum("vh,nhx->nvx", dv, grid)  # n, 9, width of the grid
    coef = np.einsum("nvmw,uw->nmvu", vertical[:, :, cols], du)
    v = np.array([c[0] for c in COEFFS])
    u = np.array([c[1] for c in COEFFS])
    sel = coef[:, :, v, u]  # n, m, 64
    bits = sel > np.median(sel, axis=-1, keepdims=True)
    return np.packbits(bits, axis=-1, bitorder="little")


def window_texture(grid: Floats, offsets: npt.NDArray[np.int64], *, width_px: int) -> Floats:
    """Standard deviation of the grey values of each window: ``float32[n, len(offsets)]``.

    A flat window (sky, a wall, a black screen) has no code worth the name: its bits
    are set by noise and meet every other flat window. The query leaves such out.
    """
    cols = offsets[:, None] + np.arange(width_px)[None, :]
    return np.asarray(grid[:, :, cols].std(axis=(1, 3)), dtype=np.float32)


def strip_offsets(params: FrameParams) -> npt.NDArray[np.int64]:
    return np.arange(params.n_strips, dtype=np.int64) * params.strip_step_px


def frame_codes(pixels: npt.NDArray[np.uint8], *, params: FrameParams) -> Codes:
    """An episode's frames (any size: the whole picture) to ``uint8[n, n_strips, 8]``."""
    grid = to_grid(pixels, height_px=params.grid_height_px, width_px=params.grid_width_px)
    return window_codes(grid, strip_offsets(params), width_px=params.strip_width_px,
                        rows_px=params.code_rows_px)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def hamming(a: Codes, b: Codes) -> npt.NDArray[np.int64]:
    """Bits that differ between codes ``a`` and ``b`` (broadcast over leading axes)."""
    return np.asarray(_POPCOUNT[np.bitwise_xor(a, b)].sum(axis=-1, dtype=np.int64))
