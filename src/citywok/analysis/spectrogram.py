"""Short-time power spectrum of mono audio."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from citywok.analysis.native import pocketfft

#: Frames transformed at once; bounds memory for long inputs.
_CHUNK_FRAMES = 4096


@functools.lru_cache(maxsize=8)
def _hann(n_fft: int) -> npt.NDArray[np.float32]:
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    window.setflags(write=False)
    return window


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
    r2c = pocketfft().r2c  # loaded on first use: importing CityWok needs no SciPy
    hi = n_fft // 2 + 1 if bin_hi is None else bin_hi
    n_frames = frame_count(len(samples), n_fft=n_fft, hop_length=hop_length)
    out = np.empty((n_frames, hi - bin_lo), dtype=np.float32)
    if n_frames == 0:
        return out
    x = np.ascontiguousarray(samples, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop_length]
    window = _hann(n_fft)
    for start in range(0, n_frames, _CHUNK_FRAMES):
        block = frames[start : start + _CHUNK_FRAMES] * window
        spec = r2c(block, (1,), True, 0, None, 1)[:, bin_lo:hi]  # scipy.fft.rfft(block, axis=1)
        # |z|^2 from the (re, im) pairs, written straight into the output.
        pairs = spec.view(np.float32).reshape(len(block), hi - bin_lo, 2)
        dest = out[start : start + len(block)]
        np.multiply(pairs[..., 0], pairs[..., 0], out=dest)
        dest += pairs[..., 1] * pairs[..., 1]
    return out


def warp(
    power: npt.NDArray[np.float32],
    *,
    time_factor: float,
    freq_factor: float,
    bin_lo: int,
    bin_hi: int,
) -> npt.NDArray[np.float32]:
    """Stretch a full-band power spectrogram in time and frequency, keep ``[bin_lo,
    bin_hi)``.

    Output frame ``t`` and bin ``k`` sample the input at ``t / time_factor`` and
    ``k / freq_factor`` (linear interpolation; beyond the input is silence). Undoing a
    guessed speed or pitch change this way lets peaks be picked with the reference's
    geometry, so the clip's peaks are the ones the index holds.
    """
    n_frames, n_bins = power.shape
    out_frames = max(0, int(np.floor((n_frames - 1) * time_factor)) + 1) if n_frames else 0
    src_k = np.arange(bin_lo, bin_hi, dtype=np.float64) / freq_factor
    k0 = np.floor(src_k).astype(np.int64)
    wk = (src_k - k0).astype(np.float32)
    valid_k = k0 + 1 < n_bins
    k0c = np.clip(k0, 0, n_bins - 2)
    by_freq = power[:, k0c] * (1 - wk) + power[:, k0c + 1] * wk
    by_freq[:, ~valid_k] = 0.0
    if time_factor == 1.0 or out_frames == 0:
        return np.ascontiguousarray(by_freq, dtype=np.float32)
    src_t = np.arange(out_frames, dtype=np.float64) / time_factor
    t0 = np.clip(np.floor(src_t).astype(np.int64), 0, max(0, n_frames - 2))
    wt = np.clip(src_t - t0, 0.0, 1.0).astype(np.float32)[:, None]
    t1 = np.minimum(t0 + 1, n_frames - 1)
    return np.ascontiguousarray(by_freq[t0] * (1 - wt) + by_freq[t1] * wt, dtype=np.float32)
