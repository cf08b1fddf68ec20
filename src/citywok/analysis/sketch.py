"""A compact sketch of a recording's spectrum over time, to verify candidate places.

Peaks say where a clip *might* come from; the sketch says whether it does. For each
48 ms (``sketch_frames`` frames) the energy of ``sketch_bands`` log-spaced bands is
measured, and each of the ``sketch_bands - 1`` bits of a 16-bit code says whether the
energy difference between two neighbouring bands grew or shrank since the previous
sketch frame (the sign of a difference of differences, as in Haitsma & Kalker's
fingerprint). Differences in frequency cancel the level and the spectral tilt of a
channel; differences in time cancel a fixed equaliser (a phone band, a codec's
roll-off). The index stores one code per sketch frame: 42 bytes per second.

To verify a place, the clip's spectrogram is read at the reference's sketch frames
through the place's alignment (offset, time scale, pitch shift), so the clip's codes
are computed on the reference's grid, and the share of equal bits is compared with the
one half that chance gives: ``score = (2 * agreement - 1) * sqrt(bits)``, in standard
deviations of independent fair bits. Unrelated audio scores about 0 to 4; the copy it
came from scores 20 to 60 when clean and still 8 or more under a voice-over at 0 dB.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from citywok.params import AnalysisParams

_EPS = np.float32(1e-10)


@functools.lru_cache(maxsize=8)
def band_edges_hz(params: AnalysisParams) -> npt.NDArray[np.float64]:
    """The ``sketch_bands + 1`` log-spaced band edges (Hz); read-only."""
    edges: npt.NDArray[np.float64] = np.geomspace(
        params.sketch_fmin_hz, params.sketch_fmax_hz, params.sketch_bands + 1)
    edges.setflags(write=False)
    return edges


def _edge_positions(params: AnalysisParams, bin_lo: int, shift_semitones: float,
                    ) -> npt.NDArray[np.float64]:
    """Band edges as fractional column positions of a power array whose column 0 is FFT
    bin ``bin_lo``; bin ``b`` covers frequencies ``[(b - 0.5), (b + 0.5)) * hz_per_bin``."""
    hz_per_bin = params.sample_rate_hz / params.n_fft
    edges = band_edges_hz(params) * 2.0 ** (shift_semitones / 12.0)
    pos: npt.NDArray[np.float64] = edges / hz_per_bin - bin_lo + 0.5
    return pos


@functools.lru_cache(maxsize=64)
def band_matrix(params: AnalysisParams, bin_lo: int, n_bins: int,
                shift_key: int = 0) -> npt.NDArray[np.float32]:
    """Weights ``(n_bins, sketch_bands)`` that sum a power spectrum's columns (FFT bins
    ``bin_lo ...``) into sketch bands shifted by ``shift_key / 20`` semitones.

    Band edges fall between bins; a bin cut by an edge counts in proportion, so a band
    edge moved by a pitch shift moves the energy smoothly, not in whole bins.
    """
    pos = np.clip(_edge_positions(params, bin_lo, shift_key / 20.0), 0.0, float(n_bins))
    # Cumulative power up to position x: every bin below floor(x), and the fraction
    # x - floor(x) of bin floor(x).
    cum = np.zeros((len(pos), n_bins), dtype=np.float64)
    for e, x in enumerate(pos):
        whole = int(np.floor(x))
        cum[e, :whole] = 1.0
        if whole < n_bins:
            cum[e, whole] = x - whole
    weights = np.ascontiguousarray(np.diff(cum, axis=0).T, dtype=np.float32)
    weights.setflags(write=False)
    return weights


def band_energies(power: npt.NDArray[np.float32], *, params: AnalysisParams, bin_lo: int,
                  shift_semitones: float = 0.0) -> npt.NDArray[np.float32]:
    """Energy of each sketch band in each frame, shape ``(frames, sketch_bands)``.

    ``power`` holds FFT bins ``bin_lo, bin_lo + 1, ...`` in its columns.
    """
    weights = band_matrix(params, bin_lo, power.shape[1], round(shift_semitones * 20))
    out: npt.NDArray[np.float32] = np.asarray(power, dtype=np.float32) @ weights
    return out


def codes_from_energies(energies: npt.NDArray[np.float32], *, frames_per_code: int,
                        ) -> npt.NDArray[np.uint16]:
    """Sketch codes from per-frame band energies.

    Frames are summed in groups of ``frames_per_code`` (a trailing part group is
    dropped); code ``n`` compares groups ``n`` and ``n + 1``, so ``G`` groups give
    ``G - 1`` codes.
    """
    n_groups = len(energies) // frames_per_code
    if n_groups < 2:
        return np.empty(0, dtype=np.uint16)
    grouped = energies[: n_groups * frames_per_code].reshape(
        n_groups, frames_per_code, -1).sum(axis=1)
    return _codes(grouped)


def _codes(grouped: npt.NDArray[np.float32]) -> npt.NDArray[np.uint16]:
    """Codes of band energies grouped by sketch frame, along the second-last axis."""
    level = np.log(grouped + _EPS)
    across = level[..., :-1] - level[..., 1:]
    bits = (across[..., 1:, :] - across[..., :-1, :]) > 0
    weights = (np.uint16(1) << np.arange(bits.shape[-1], dtype=np.uint16)).astype(np.uint16)
    codes: npt.NDArray[np.uint16] = (bits.astype(np.uint16) * weights).sum(
        axis=-1, dtype=np.uint16)
    return codes


class ClipSketcher:
    """A clip's sketch codes on any reference grid, from its spectrogram computed once.

    Band energies are computed once per pitch shift (to 1/20 semitone); an alignment
    then only resamples them in time.
    """

    def __init__(self, power: npt.NDArray[np.float32], *, params: AnalysisParams,
                 bin_lo: int) -> None:
        self.params = params
        self.bin_lo = bin_lo
        self.n_frames = power.shape[0]
        self._power = power
        self._bands: dict[int, npt.NDArray[np.float32]] = {}

    def _band_energies(self, shift_semitones: float) -> npt.NDArray[np.float32]:
        # Shifts closer than 1/20 semitone share their band energies.
        key = round(shift_semitones * 20)
        cached = self._bands.get(key)
        if cached is None:
            cached = band_energies(self._power, params=self.params, bin_lo=self.bin_lo,
                                   shift_semitones=key / 20.0)
            self._bands[key] = cached
        return cached

    def codes(self, *, offsets_frames: npt.NDArray[np.float64], time_scale: float,
              shift_semitones: float, first_code: int, n_codes: int,
              ) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.bool_]]:
        """The clip's codes for reference codes ``first_code`` .. ``first_code + n_codes
        - 1``, through the alignments ``t_ref = offset + time_scale * t_clip`` (one row
        per offset in ``offsets_frames``) and ``pitch_clip = pitch_ref +
        shift_semitones``; and which of them the clip covers whole."""
        f = self.params.sketch_frames
        bands = self._band_energies(shift_semitones)
        ref_frames = np.arange(first_code * f, (first_code + n_codes + 1) * f,
                               dtype=np.float64)
        at = (ref_frames[None, :] - offsets_frames[:, None]) / time_scale
        n = self.n_frames
        lo = np.clip(np.floor(at).astype(np.int64), 0, max(0, n - 2))
        w = np.clip(at - lo, 0.0, 1.0)[..., None]
        hi = np.minimum(lo + 1, n - 1)
        rows = bands[lo] * (1.0 - w) + bands[hi] * w
        n_off = len(offsets_frames)
        grouped = rows.reshape(n_off, n_codes + 1, f, -1).sum(axis=2).astype(np.float32)
        inside = ((at >= 0) & (at <= n - 1)).reshape(n_off, n_codes + 1, f).all(axis=2)
        return _codes(grouped), inside[:, :-1] & inside[:, 1:]


def agreement(a: npt.NDArray[np.uint16], b: npt.NDArray[np.uint16], *, bits_per_code: int,
              ) -> tuple[int, int]:
    """(equal bits, bits compared) of two code sequences of one length."""
    differing = int(np.bitwise_count(np.bitwise_xor(a, b)).sum())
    total = len(a) * bits_per_code
    return total - differing, total


def score(equal_bits: int, total_bits: int) -> float:
    """Agreement beyond chance, in standard deviations of independent fair bits."""
    if total_bits <= 0:
        return 0.0
    return float((2.0 * equal_bits / total_bits - 1.0) * np.sqrt(total_bits))
