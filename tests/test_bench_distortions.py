"""The bench's distortions of issue 15: every SNR is what the row asks inside the analysed
band, the stacked row plays 1.25x fast, rooms hear the episode before the clip, and the
rows that were there before are still there, in their order."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from bench.corpus import SR, SR_IN, Audio, to_8k
from bench.distortions import (
    AAC_64K,
    Distortion,
    Overlays,
    distortions,
    ffmpeg,
    in_band_snr,
    mic_highpass,
    mix_parts,
    pink,
)

BAND_HZ = (150.0, 3400.0)
SONG = "speed_1.25+music_0db_band+aac_48k_mp4"
REACTION = "reaction_voice_0db+music_6db_band"
#: Every row of bench.run before issue 15, in its order: their clips must not change.
BEFORE_ISSUE_15 = (
    "clean", "mp3_32k", "opus_16k", "aac_64k", "phone", "level_-20db",
    "white_10db_full16k", "white_0db_full16k", "white_10db_band", "white_0db_band",
    "pink_10db_band", "pink_0db_band", "music_0db_full16k", "music_0db_band",
    "voice_0db_full16k", "voice_0db_band", "reverb", "speed_0.75", "speed_0.8", "speed_0.9",
    "speed_1.1", "speed_1.2", "speed_1.3", "tempo_0.8", "tempo_0.9", "tempo_1.1",
    "tempo_1.25", "pitch_-3", "pitch_-1.5", "pitch_+1.5", "pitch_+3",
    "speed_1.2+music_10db+aac_64k")


def tones(n: int, rng: np.random.Generator) -> Audio:
    """Something like a soundtrack at 16 kHz: chords that change every 0.4 s, over quiet
    pink noise."""
    t = np.arange(n) / SR_IN
    out = 0.05 * pink(n, rng).astype(np.float64)
    for start in range(0, n, int(0.4 * SR_IN)):
        sl = slice(start, start + int(0.4 * SR_IN))
        for f in rng.uniform(200, 3000, 3):
            out[sl] += 0.2 * np.sin(2 * np.pi * f * t[sl])
    return out.astype(np.float32)


def voice(n: int, rng: np.random.Generator) -> Audio:
    """A talker's stand-in: band-limited noise in syllables (on 0.2 s, off 0.1 s)."""
    x = pink(n, rng)
    gate = (np.arange(n) % int(0.3 * SR_IN)) < int(0.2 * SR_IN)
    return (x * gate).astype(np.float32)


@pytest.fixture(scope="module")
def rows() -> dict[str, Distortion]:
    rng = np.random.default_rng(3)
    overlays = Overlays([tones(40 * SR_IN, rng)], [voice(40 * SR_IN, rng)])
    return {d.name: d for d in distortions(overlays, BAND_HZ)}


def test_rows_from_before_are_kept_in_their_order(rows: dict[str, Distortion]) -> None:
    names = list(rows)
    kept = [n for n in names if n in BEFORE_ISSUE_15]
    assert kept == list(BEFORE_ISSUE_15)
    assert len(set(names)) == len(names)


def test_bench_seeds_each_cell_by_its_row_name() -> None:
    """A cell's generator is made from the row's name (and seed and length) only, so a
    new row cannot change another row's clips (bench/run.py, ``Bench.library``)."""
    tree = ast.parse((Path(__file__).parents[1] / "bench" / "run.py").read_text())
    calls = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call)
             and ast.unparse(n.func) == "seeded" and "'distort'" in ast.unparse(n)]
    assert calls == ["seeded(self.seed, 'distort', length, name)"]


@pytest.mark.parametrize("name", ["room_near", "room_far", "room_listen", SONG, REACTION,
                                  "music_6db_band"])
def test_in_band_snr_is_what_the_row_asks(rows: dict[str, Distortion], name: str) -> None:
    d = rows[name]
    x = tones(int(5 * d.speed * SR_IN), np.random.default_rng(11))
    if d.layers is None:
        assert d.mix is not None and d.mix.band == "band"
        clip, added = mix_parts(x, d.mix, np.random.default_rng(1), Overlays(
            [tones(20 * SR_IN, np.random.default_rng(2))], []), BAND_HZ)
        got = [("music", d.mix.snr_db, in_band_snr(clip, added, rate_hz=SR, band_hz=BAND_HZ))]
    else:
        got = d.layers(x, np.random.default_rng(5)).snr_db(BAND_HZ)
    asked = {"room_near": [("pink", 15.0)], "room_far": [("voice", 5.0), ("pink", 15.0)],
             "room_listen": [("pink", 15.0)], SONG: [("music", 0.0)],
             REACTION: [("voice", 0.0), ("music", 6.0)], "music_6db_band": [("music", 6.0)]}
    assert [(what, db) for what, db, _ in got] == asked[name]
    for _, db, measured in got:
        assert measured == pytest.approx(db, abs=0.5)


def test_room_noise_snr_holds_through_the_phones_high_pass(rows: dict[str, Distortion]) -> None:
    # The SNR is set at the microphone; the phone's high-pass after it changes it by little.
    x = tones(5 * SR_IN, np.random.default_rng(12))
    layers = rows["room_near"].layers
    assert layers is not None
    lay = layers(x, np.random.default_rng(6))
    (_, asked, noise), = lay.added
    s, n = (to_8k(mic_highpass(a)) for a in (lay.signal, noise))
    assert in_band_snr(s, n, rate_hz=SR, band_hz=BAND_HZ) == pytest.approx(asked, abs=1.0)


def test_stacked_row_plays_the_clip_1_25x_fast(rows: dict[str, Distortion]) -> None:
    d = rows[SONG]
    assert d.speed == 1.25
    n = int(5 * 1.25 * SR_IN)
    t = np.arange(n) / SR_IN
    x = (0.3 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    y = d(x, np.random.default_rng(4))
    # 6.25 s of episode become 5 s (the MP4's AAC adds under a frame).
    assert len(y) / SR == pytest.approx(5.0, abs=0.1)
    # ... and the 1 kHz tone comes out at 1.25 kHz, above the song at 0 dB in band.
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    f = np.fft.rfftfreq(len(y), 1 / SR)
    assert f[int(np.argmax(spec))] == pytest.approx(1250.0, abs=3.0)


def test_reaction_is_its_layers_mixed(rows: dict[str, Distortion]) -> None:
    d = rows[REACTION]
    assert d.layers is not None
    x = tones(3 * SR_IN, np.random.default_rng(8))
    np.testing.assert_array_equal(d(x, np.random.default_rng(9)),
                                  d.layers(x, np.random.default_rng(9)).mixed())


def test_a_room_hears_the_episode_before_the_clip() -> None:
    seen: list[Audio] = []

    def apply(x: Audio, rng: np.random.Generator) -> Audio:
        seen.append(x)
        return to_8k(x)

    d = Distortion("echo", "room", 1.0, apply, lead_in_s=0.5)
    x = tones(2 * SR_IN, np.random.default_rng(1))
    before = tones(3 * SR_IN, np.random.default_rng(2))
    y = d(x, np.random.default_rng(0), before)
    np.testing.assert_array_equal(seen[-1], np.concatenate([before[-SR_IN // 2 :], x]))
    assert len(y) == 2 * SR
    np.testing.assert_array_equal(y, to_8k(seen[-1])[SR // 2 :])
    # Near an episode's start there is less before the clip: silence makes up the rest.
    d(x, np.random.default_rng(0), before[: SR_IN // 4])
    assert len(seen[-1]) == len(x) + SR_IN // 2
    assert not seen[-1][: SR_IN // 4].any()
    np.testing.assert_array_equal(seen[-1][SR_IN // 4 : SR_IN // 2], before[: SR_IN // 4])


def test_combination_audit_layers_are_the_clips_parts(rows: dict[str, Distortion]) -> None:
    # The older combination row keeps its own code (its clips must not change); its
    # layers, for the SNR audit, must be the same two parts.
    d = rows["speed_1.2+music_10db+aac_64k"]
    assert d.layers is not None
    x = tones(int(3 * 1.2 * SR_IN), np.random.default_rng(13))
    lay = d.layers(x, np.random.default_rng(14))
    assert lay.band == "full16k"
    np.testing.assert_array_equal(d(x, np.random.default_rng(14)),
                                  ffmpeg(lay.mixed(), codec=AAC_64K, fmt="adts"))
