import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from citywok.analysis.peaks import (
    PeakStream,
    find_peaks,
    hz_to_pitch,
    mean_nearest,
    running_max,
)
from citywok.params import AnalysisParams

P = AnalysisParams()


def _chirps(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sr = P.sample_rate_hz
    out = np.zeros(int(seconds * sr), dtype=np.float32)
    pos = 0
    while pos < len(out):
        n = min(int(rng.uniform(0.1, 0.4) * sr), len(out) - pos)
        t = np.arange(n) / sr
        f = rng.uniform(200, 3000)
        out[pos : pos + n] = np.sin(2 * np.pi * f * t) * np.hanning(n)
        pos += n
    return out + 0.001 * rng.standard_normal(len(out)).astype(np.float32)


def test_tone_gives_peaks_at_its_pitch() -> None:
    sr = P.sample_rate_hz
    t = np.arange(2 * sr) / sr
    f = 440.0 * 2 ** (7 / 12)
    x = (np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    peaks = find_peaks(x, params=P, peak_params=P.index_peaks)
    assert len(peaks) > 0
    assert np.all(np.abs(peaks.pitch - hz_to_pitch(f)) < 0.2)


def test_silence_has_no_peaks() -> None:
    assert len(find_peaks(np.zeros(16000, np.float32), params=P, peak_params=P.index_peaks)) == 0


def test_pitch_shift_moves_every_peak_by_the_same_amount() -> None:
    sr = P.sample_rate_hz
    t = np.arange(sr) / sr
    tones = [300.0, 700.0, 1500.0]
    ratio = 2 ** (3 / 12)

    def signal(scale: float) -> np.ndarray:
        x = sum(np.sin(2 * np.pi * f * scale * t) for f in tones)
        return (x * np.hanning(len(t))).astype(np.float32)

    a = find_peaks(signal(1.0), params=P, peak_params=P.index_peaks)
    b = find_peaks(signal(ratio), params=P, peak_params=P.index_peaks)
    assert len(a) and len(b)
    assert abs(np.median(b.pitch) - np.median(a.pitch) - 3.0) < 0.2


def test_streaming_equals_one_pass() -> None:
    x = _chirps(40.0, 2)
    whole = find_peaks(x, params=P, peak_params=P.index_peaks)
    stream = PeakStream(params=P, peak_params=P.index_peaks, block_frames=300)
    parts = [stream.feed(x[i : i + 7777]) for i in range(0, len(x), 7777)]
    parts.append(stream.finish())
    frames = np.concatenate([p.frame for p in parts])
    pitch = np.concatenate([p.pitch for p in parts])
    np.testing.assert_array_equal(frames, whole.frame)
    np.testing.assert_allclose(pitch, whole.pitch, atol=1e-5)
    assert np.all(np.diff(frames) >= 0)


@given(st.integers(1, 40), st.integers(1, 30), st.integers(0, 25), st.integers(0, 1))
@settings(max_examples=60, deadline=None)
def test_running_max_equals_scipy(rows: int, cols: int, half: int, axis: int) -> None:
    x = np.random.default_rng(rows * 31 + cols).standard_normal((rows, cols)).astype(
        np.float32)
    expect = maximum_filter1d(x, 2 * half + 1, axis=axis, mode="constant", cval=-np.inf)
    np.testing.assert_array_equal(running_max(x, half, axis=axis), expect)


@given(st.integers(1, 40), st.integers(1, 30), st.integers(0, 25), st.integers(0, 1))
@settings(max_examples=60, deadline=None)
def test_running_max_at_the_edges_equals_scipy_nearest(rows: int, cols: int, half: int,
                                                        axis: int) -> None:
    # The loudness floor's filter: SciPy's mode="nearest" and running_max's -inf agree.
    x = np.random.default_rng(rows * 37 + cols).standard_normal((rows, cols)).astype(
        np.float32)
    expect = maximum_filter1d(x, 2 * half + 1, axis=axis, mode="nearest")
    np.testing.assert_array_equal(running_max(x, half, axis=axis), expect)


@given(st.integers(1, 60), st.integers(1, 40), st.integers(0, 25), st.integers(0, 1))
@settings(max_examples=80, deadline=None)
def test_mean_nearest_equals_scipy_bit_for_bit(rows: int, cols: int, half: int,
                                               axis: int) -> None:
    # Powers over 16 decades, as a spectrogram's are: the rounding must be SciPy's.
    rng = np.random.default_rng(rows * 31 + cols + half)
    x = (rng.standard_normal((rows, cols)) ** 2
         * 10.0 ** rng.uniform(-12, 4, (rows, cols))).astype(np.float32)
    expect = uniform_filter1d(x, 2 * half + 1, axis=axis, mode="nearest")
    got = mean_nearest(x, half, axis=axis)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expect)
