import numpy as np

from citywok.analysis.spectrogram import frame_count, power_spectrogram


def test_frame_count() -> None:
    assert frame_count(100, n_fft=512, hop_length=256) == 0
    assert frame_count(512, n_fft=512, hop_length=256) == 1
    assert frame_count(8000, n_fft=512, hop_length=256) == 30


def test_sine_lands_in_its_bin() -> None:
    sr, f = 8000, 1000.0
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * f * t).astype(np.float32)
    spec = power_spectrogram(x, n_fft=512, hop_length=256)
    assert spec.shape == (30, 257) and spec.dtype == np.float32
    assert np.all(spec.argmax(axis=1) == round(f / (sr / 512)))


def test_band_selection_matches_full_spectrum() -> None:
    x = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    full = power_spectrogram(x, n_fft=512, hop_length=256)
    band = power_spectrogram(x, n_fft=512, hop_length=256, bin_lo=10, bin_hi=100)
    np.testing.assert_allclose(band, full[:, 10:100], rtol=1e-5)


def test_the_spectrum_is_scipys_bit_for_bit() -> None:
    # The FFT is SciPy's extension loaded on its own (no `import scipy.fft`): the same
    # transform, the same bits.
    import scipy.fft

    x = np.random.default_rng(3).standard_normal(20000).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, 512)[::128]
    spec = scipy.fft.rfft(frames * np.hanning(513)[:-1].astype(np.float32), axis=1)
    expect = (spec.real * spec.real + spec.imag * spec.imag).astype(np.float32)
    np.testing.assert_array_equal(power_spectrogram(x, n_fft=512, hop_length=128), expect)
