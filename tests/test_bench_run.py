"""bench.run's clips: the 2 s column changes none of the 3/5/10 s clips."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from bench.corpus import LENGTHS, SR_IN
from bench.distortions import OUTSIDE_VARIANTS, Overlays, distortions
from bench.run import Bench, seeded


def _wav(path: Path, seconds: float, rng: np.random.Generator) -> Path:
    x = (0.1 * rng.standard_normal(int(seconds * SR_IN))).astype(np.float32)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(SR_IN),
                    "-ac", "1", "-i", "pipe:0", "-y", str(path)], input=x.tobytes(), check=True)
    return path


def _bench(lengths: tuple[float, ...]) -> Bench:
    dists = distortions(Overlays([], []), (150.0, 3400.0))
    corpus: Any = None
    index: Any = None
    return Bench(corpus, index, Overlays([], []), dists, 2026, lengths)


def test_outside_clips_at_3_5_10_s_stay_the_same_with_the_2_s_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    files = (_wav(tmp_path / "music_01.wav", 20, rng), _wav(tmp_path / "speech_01.wav", 15, rng))
    n = 6
    old = _bench((3.0, 5.0, 10.0)).outside_clips(files, n, "calibration")
    new = _bench((2.0, 3.0, 5.0, 10.0)).outside_clips(files, n, "calibration")
    assert [m["length_s"] for m, _, _ in new].count(2.0) == n // 3
    same = [c for c in new if c[0]["length_s"] != 2.0]
    assert [m for m, _, _ in same] == [m for m, _, _ in old]
    for (_, x1, y1), (_, x2, y2) in zip(same, old, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    # ... and they are the clips bench.run drew before the 2 s column (its loop, as it was).
    bench = _bench((3.0, 5.0, 10.0))
    r = seeded(2026, "outside", "calibration")
    audio = {f: subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(f), "-ac", "1",
                                "-ar", str(SR_IN), "-f", "f32le", "pipe:1"],
                               capture_output=True, check=True).stdout for f in files}
    weights = np.array([len(a) // 4 for a in audio.values()], dtype=np.float64)
    for i, (meta, x, _) in enumerate(old):
        length = LENGTHS[i % len(LENGTHS)]
        variant = OUTSIDE_VARIANTS[(i // len(LENGTHS)) % len(OUTSIDE_VARIANTS)]
        f = files[int(r.choice(len(files), p=weights / weights.sum()))]
        s = int(r.integers(0, len(audio[f]) // 4 - int(length * SR_IN)))
        bench.dists[variant].apply(x, r)
        assert (meta["source"], meta["start_s"], meta["length_s"], meta["distortion"]) == (
            f.name, s / SR_IN, length, variant)
