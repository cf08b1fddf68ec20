"""Spectral peaks: local maxima of the log-power spectrogram, with sub-bin pitch.

Peaks are kept as (frame, pitch) where pitch is in semitones above
:data:`PITCH_REF_HZ`. Working in semitones turns every pitch change (a resampled speed
change, a pitch shift) into a constant offset, which the hashes then cancel out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from citywok.analysis import sketch
from citywok.analysis.native import nd_image, pocketfft
from citywok.analysis.spectrogram import power_spectrogram
from citywok.params import AnalysisParams, PeakParams

#: Pitch zero; every pitch is ``12 * log2(f / PITCH_REF_HZ)``.
PITCH_REF_HZ = 100.0
#: Power below this (dB, same scale as the spectrogram) is digital silence.
SILENCE_DB = -60.0
#: Span over which the loudest value sets the floor for weak peaks (seconds each side).
_FLOOR_HALF_S = 1.0
#: Neighbourhood of the mean power a peak must stand out of.
_MEAN_HALF_BINS = 12
_MEAN_HALF_S = 0.128


def running_max(x: npt.NDArray[np.float32], half: int, *, axis: int) -> npt.NDArray[np.float32]:
    """Maximum over ``[i - half, i + half]`` along ``axis`` (beyond the edges: -inf).

    Same result as ``scipy.ndimage.maximum_filter1d(x, 2 * half + 1, axis=axis,
    mode="constant", cval=-inf)``, several times faster for these window sizes: the
    maxima of runs of 1, 2, 4, 8 ... are built by doubling, and each window is the max of
    two overlapping runs of the largest power of two that fits in it.
    """
    width = 2 * half + 1
    moved = np.moveaxis(x, axis, -1)
    n = moved.shape[-1]
    pad = np.full((*moved.shape[:-1], half), -np.inf, dtype=x.dtype)
    padded = np.concatenate([pad, moved, pad], axis=-1)
    run = padded
    length = 1
    while 2 * length <= width:
        run = np.maximum(run[..., :-length], run[..., length:])
        length *= 2
    # run[..., j] = max(padded[j : j + length]); the window of output i is padded[i : i + width].
    out = np.maximum(run[..., :n], run[..., width - length : width - length + n])
    return np.moveaxis(out, -1, axis)


def mean_nearest(x: npt.NDArray[np.float32], half: int, *, axis: int
                 ) -> npt.NDArray[np.float32]:
    """Mean over ``[i - half, i + half]`` along ``axis`` (beyond the edges: the edge
    value): ``scipy.ndimage.uniform_filter1d(x, 2 * half + 1, axis=axis,
    mode="nearest")``, from SciPy's compiled filter without SciPy's import."""
    out = np.zeros(x.shape, dtype=np.float32)
    nd_image().uniform_filter1d(np.asarray(x, dtype=np.float32), 2 * half + 1, axis, out,
                                0, 0.0, 0)
    return out


def import_scipy() -> None:
    """Load now the SciPy parts that the spectrogram and the peaks load on first use
    (:mod:`citywok.analysis.native`): a server does at start, so that its first answer
    is as quick as the others (a one-shot CLI leaves it to the first clip, and
    ``--help`` never pays it)."""
    pocketfft()
    nd_image()


def _frames(seconds: float, params: AnalysisParams) -> int:
    return max(1, round(seconds / params.frame_s))


@dataclass(frozen=True)
class Peaks:
    """Peaks sorted by (frame, pitch)."""

    frame: npt.NDArray[np.int32]
    pitch: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def empty(cls) -> Peaks:
        return cls(np.empty(0, np.int32), np.empty(0, np.float32))

    @classmethod
    def concat(cls, parts: list[Peaks]) -> Peaks:
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.frame for p in parts]), np.concatenate([p.pitch for p in parts])
        )


def band_bins(params: AnalysisParams) -> tuple[int, int]:
    """The FFT bins ``[lo, hi)`` analysed, with one bin of margin for interpolation."""
    hz_per_bin = params.sample_rate_hz / params.n_fft
    lo = max(1, int(np.floor(params.fmin_hz / hz_per_bin)) - 1)
    hi = min(params.n_fft // 2, int(np.ceil(params.fmax_hz / hz_per_bin)) + 2)
    return lo, hi


def hz_to_pitch(freq_hz: npt.ArrayLike) -> npt.NDArray[np.float32]:
    return (12.0 * np.log2(np.asarray(freq_hz, dtype=np.float64) / PITCH_REF_HZ)).astype(
        np.float32
    )


def peaks_from_power(
    power: npt.NDArray[np.float32],
    *,
    peak_params: PeakParams,
    params: AnalysisParams,
    first_frame: int = 0,
    keep_from: int = 0,
    keep_to: int | None = None,
) -> Peaks:
    """Peaks of a power spectrogram covering the bins of :func:`band_bins`.

    Frames ``[keep_from, keep_to)`` of ``power`` are reported (the rest is context for a
    streamed block), numbered from ``first_frame``.
    """
    n_frames = power.shape[0]
    keep_to = n_frames if keep_to is None else keep_to
    if n_frames == 0 or keep_to <= keep_from:
        return Peaks.empty()
    level = np.log10(power + 1e-12, dtype=np.float32)
    level *= 10.0
    local_max = running_max(level, peak_params.half_bins, axis=1)
    local_max = running_max(local_max, peak_params.half_frames, axis=0)
    # Beyond the edges nothing (SciPy's mode="nearest" gives the same: the edge value is in
    # every window that reaches past it).
    loudest = running_max(level.max(axis=1), _frames(_FLOOR_HALF_S, params), axis=0)
    floor = np.maximum(loudest - peak_params.floor_db, SILENCE_DB)
    is_peak = (level == local_max) & (level > floor[:, None])
    if peak_params.prominence_db > 0:
        # Mean power around each cell; noise peaks barely stand out of it, tonal ones do.
        mean = mean_nearest(power, _MEAN_HALF_BINS, axis=1)
        mean = mean_nearest(mean, _frames(_MEAN_HALF_S, params), axis=0)
        is_peak &= power > mean * np.float32(10 ** (peak_params.prominence_db / 10))
    # Edge bins cannot be interpolated and lie outside the analysed band anyway.
    is_peak[:, 0] = False
    is_peak[:, -1] = False
    is_peak[:keep_from] = False
    is_peak[keep_to:] = False
    rows, cols = np.nonzero(is_peak)
    left = level[rows, cols - 1]
    mid = level[rows, cols]
    right = level[rows, cols + 1]
    curvature = left - 2.0 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    lo, _ = band_bins(params)
    freq_hz = (lo + cols + delta) * (params.sample_rate_hz / params.n_fft)
    in_band = (freq_hz >= params.fmin_hz) & (freq_hz <= params.fmax_hz)
    return Peaks(
        frame=(rows[in_band] + first_frame).astype(np.int32),
        pitch=hz_to_pitch(freq_hz[in_band]),
    )


def find_peaks(
    samples: npt.NDArray[np.float32], *, params: AnalysisParams, peak_params: PeakParams
) -> Peaks:
    """Peaks of a whole signal held in memory (queries and tests)."""
    lo, hi = band_bins(params)
    power = power_spectrogram(
        samples, n_fft=params.n_fft, hop_length=params.hop_length, bin_lo=lo, bin_hi=hi
    )
    return peaks_from_power(power, peak_params=peak_params, params=params)


class PeakStream:
    """Peaks of a signal fed in chunks, identical to :func:`find_peaks` on the whole.

    Blocks are analysed with enough context frames on each side that every filter sees
    the same neighbourhood it would see in one pass, so streaming changes no result. The
    sketch's band energies of every frame are gathered from the same spectrogram
    (:meth:`band_energies`), so the FFT runs once per frame.
    """

    def __init__(self, *, params: AnalysisParams, peak_params: PeakParams,
                 block_frames: int = 2048) -> None:
        self._params = params
        self._peak_params = peak_params
        self._block = block_frames
        self._context = (max(peak_params.half_frames, _frames(_MEAN_HALF_S, params))
                         + _frames(_FLOOR_HALF_S, params) + 1)
        self._buffer = np.empty(0, dtype=np.float32)
        self._buffer_frame = 0  # frame number of the first frame starting in the buffer
        self._next_frame = 0  # first frame not yet reported
        self._energies: list[npt.NDArray[np.float32]] = []
        self.samples_seen = 0

    def band_energies(self) -> npt.NDArray[np.float32]:
        """Sketch band energies of every frame reported so far, ``(frames, bands)``."""
        if not self._energies:
            return np.empty((0, self._params.sketch_bands), dtype=np.float32)
        return np.concatenate(self._energies)

    def feed(self, chunk: npt.NDArray[np.float32]) -> Peaks:
        self.samples_seen += len(chunk)
        self._buffer = np.concatenate([self._buffer, chunk.astype(np.float32, copy=False)])
        out: list[Peaks] = []
        while True:
            peaks = self._process(final=False)
            if peaks is None:
                break
            out.append(peaks)
        return Peaks.concat(out)

    def finish(self) -> Peaks:
        peaks = self._process(final=True)
        return peaks if peaks is not None else Peaks.empty()

    def _process(self, *, final: bool) -> Peaks | None:
        p = self._params
        hop, n_fft = p.hop_length, p.n_fft
        available = 0 if len(self._buffer) < n_fft else 1 + (len(self._buffer) - n_fft) // hop
        keep_from = self._next_frame - self._buffer_frame
        if final:
            keep_to = available
        else:
            keep_to = keep_from + self._block
            if keep_to + self._context > available:
                return None
        if keep_to <= keep_from:
            return None
        n_frames = min(available, keep_to + self._context)
        lo, hi = band_bins(p)
        seg = self._buffer[: (n_frames - 1) * hop + n_fft]
        power = power_spectrogram(seg, n_fft=n_fft, hop_length=hop, bin_lo=lo, bin_hi=hi)
        peaks = peaks_from_power(power, peak_params=self._peak_params, params=p,
                                 first_frame=self._buffer_frame, keep_from=keep_from,
                                 keep_to=keep_to)
        self._energies.append(sketch.band_energies(power[keep_from:keep_to], params=p,
                                                   bin_lo=lo))
        self._next_frame = self._buffer_frame + keep_to
        # Keep the context needed before the next unreported frame.
        drop_frames = max(0, keep_to - self._context)
        self._buffer = self._buffer[drop_frames * hop :]
        self._buffer_frame += drop_frames
        return peaks
