"""Short-time power spectrum of mono audio."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.fft

#: Frames transformed at once; bounds memory for long inputs.
_CHUNK_FRAMES = 4096


def frame_count(n_samples: int, *, n_fft: int, hop_length: int) -> int:
    """Number of whole frames in ``n_samples`` samples (0 when shorter than a window)."""
    if n_samples < n_fft:
        return 0
    return 1 + (n_samples - n_fft) // hop_length


def power_spectrogram(
    samples: npt.NDArray[np.float32],
    *,
    n_fft: int,
    hop_length: int,
    bin_lo: int = 0,
    bin_hi: int | None = None,
) -> npt.NDArray[np.float32]:
    """Hann-windowed power spectrum, shape ``(frames, bin_hi - bin_lo)``, float32.

    Frame ``i`` covers samples ``[i * hop_length, i * hop_length + n_fft)``. Only bins
    ``[bin_lo, bin_hi)`` are kept, which is all later stages look at.
    """
    if samples.ndim != 1:
        raise ValueError("samples must be one-dimensional")
    hi = n_fft // 2 + 1 if bin_hi is None else bin_hi
    n_frames = frame_count(len(samples), n_fft=n_fft, hop_length=hop_length)
    out = np.empty((n_frames, hi - bin_lo), dtype=np.float32)
    if n_frames == 0:
        return out
    x = np.ascontiguousarray(samples, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop_length]
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    for start in range(0, n_frames, _CHUNK_FRAMES):
        block = frames[start : start + _CHUNK_FRAMES] * window
        spec = scipy.fft.rfft(block, axis=1)[:, bin_lo:hi]
        out[start : start + len(block)] = spec.real**2 + spec.imag**2
    return out
