"""The sketch: band energies, codes, and verification through an alignment."""

import numpy as np
import pytest

from citywok.analysis import sketch
from citywok.analysis.peaks import PeakStream, band_bins
from citywok.analysis.spectrogram import power_spectrogram
from citywok.params import AnalysisParams

P = AnalysisParams()
LO, HI = band_bins(P)
RATE = P.sample_rate_hz


def _noise_music(seconds: float, seed: int) -> np.ndarray:
    """Notes that change every 0.2 s over a little noise: a sketch with every bit used."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.01 * rng.standard_normal(len(t))
    for start in np.arange(0, seconds, 0.2):
        f = rng.uniform(300, 3000)
        on = (t >= start) & (t < start + 0.25)
        x[on] += np.sin(2 * np.pi * f * t[on]) * rng.uniform(0.1, 0.5)
    return x.astype(np.float32)


def _power(x: np.ndarray) -> np.ndarray:
    return power_spectrogram(x, n_fft=P.n_fft, hop_length=P.hop_length, bin_lo=LO, bin_hi=HI)


def test_band_energies_sum_the_right_bins() -> None:
    flat = np.ones((3, HI - LO), dtype=np.float32)
    e = sketch.band_energies(flat, params=P, bin_lo=LO)
    hz = P.sample_rate_hz / P.n_fft
    widths = np.diff(sketch.band_edges_hz(P)) / hz  # in bins
    np.testing.assert_allclose(e[0], widths, rtol=1e-5)
    # One loud bin lands in the band holding its frequency, and only there.
    one = np.zeros((1, HI - LO), dtype=np.float32)
    k = 60  # FFT bin LO + 60
    one[0, k] = 1.0
    f = (LO + k) * hz
    band = int(np.searchsorted(sketch.band_edges_hz(P), f)) - 1
    got = sketch.band_energies(one, params=P, bin_lo=LO)[0]
    assert got.argmax() == band and got.sum() == pytest.approx(1.0)


def test_pitch_shift_moves_the_band_edges() -> None:
    one = np.zeros((1, HI - LO), dtype=np.float32)
    one[0, 60] = 1.0
    plain = sketch.band_energies(one, params=P, bin_lo=LO)[0].argmax()
    # The clip is 3 semitones up: a reference band is read 3 semitones higher.
    up = sketch.band_energies(one, params=P, bin_lo=LO, shift_semitones=3.0)[0].argmax()
    assert up < plain


def test_codes_ignore_level_and_fixed_equaliser() -> None:
    x = _noise_music(4.0, 1)
    energies = sketch.band_energies(_power(x), params=P, bin_lo=LO)
    codes = sketch.codes_from_energies(energies, frames_per_code=P.sketch_frames)
    tilt = np.linspace(0.3, 3.0, P.sketch_bands, dtype=np.float32)
    other = sketch.codes_from_energies(energies * 0.01 * tilt, frames_per_code=P.sketch_frames)
    np.testing.assert_array_equal(codes, other)
    assert len(codes) == len(energies) // P.sketch_frames - 1


def _reference(x: np.ndarray) -> np.ndarray:
    stream = PeakStream(params=P, peak_params=P.index_peaks)
    stream.feed(x)
    stream.finish()
    return sketch.codes_from_energies(stream.band_energies(), frames_per_code=P.sketch_frames)


def _score(clip: np.ndarray, ref: np.ndarray, offset: float, scale: float = 1.0,
           shift: float = 0.0) -> float:
    s = sketch.ClipSketcher(_power(clip), params=P, bin_lo=LO)
    f = P.sketch_frames
    first = int(np.ceil(offset / f)) + 1
    n = int((s.n_frames * scale - 3) / f) - 2
    codes, inside = s.codes(offsets_frames=np.array([offset]), time_scale=scale,
                            shift_semitones=shift, first_code=first, n_codes=n)
    eq, total = sketch.agreement(codes[0][inside[0]], ref[first:first + n][inside[0]],
                                 bits_per_code=P.sketch_bands - 1)
    return sketch.score(eq, total)


def test_the_copy_scores_high_and_other_audio_does_not() -> None:
    episode = _noise_music(30.0, 2)
    ref = _reference(episode)
    start = 10.0
    clip = episode[int(start * RATE): int((start + 5.0) * RATE)]
    offset = start / P.frame_s
    assert _score(clip, ref, offset) > 30
    # A frame of misalignment costs much; a second of it leaves chance.
    assert _score(clip, ref, offset + 62.5) < 4
    other = _noise_music(5.0, 3)
    assert abs(_score(other, ref, offset)) < 4


def test_alignment_undoes_speed_and_pitch() -> None:
    """A clip played 1.1x fast (resampled: pitch up too) scores high through the
    alignment that undoes it, and low through the plain one."""
    from scipy.signal import resample_poly

    episode = _noise_music(30.0, 4)
    ref = _reference(episode)
    start = 8.0
    part = episode[int(start * RATE): int((start + 5.5) * RATE)]
    fast = resample_poly(part, 10, 11).astype(np.float32)  # 1.1x: 10 samples for 11
    offset = start / P.frame_s
    good = _score(fast, ref, offset, scale=1.1, shift=12 * np.log2(1.1))
    plain = _score(fast, ref, offset)
    assert good > 20 > 2 * plain


def test_score_is_zero_at_chance() -> None:
    assert sketch.score(50, 100) == 0.0
    assert sketch.score(100, 100) == pytest.approx(10.0)
    assert sketch.score(0, 0) == 0.0
