"""Data recipe for the learned front end: decode, split, code and reverberate, once.

Writes into ``--cache`` (default ``/tmp/citywok-learned``):

- ``library/<k>.npy``: episode k of the corpus's library, mono float32 at 8 kHz;
- ``coded/<k>_<codec>.npy``: the same audio after one low-bitrate codec round trip
  through ffmpeg (the pool training draws its coded positives from);
- ``outside/<name>.npy``: the outside files, decoded the same way;
- ``rirs_train.npz``: room impulse responses (pyroomacoustics image-source shoeboxes,
  RT60 0.2-1.0 s, source-microphone distance 1-5 m), cut or padded to 1 s;
- ``split.json``: per episode, the training range (first 80 %) and the held-out range
  (last 20 %), and which shared segments (intro, outro, cues) to keep out of training.

Everything is seeded (``--seed``); the corpus is read from ``--corpus``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

from citywok.analysis.decode import decode as decode_file

SAMPLE_RATE_HZ = 8000
HELD_OUT_FRACTION = 0.2
CODECS = {
    "mp3_24k": ["-c:a", "libmp3lame", "-b:a", "24k", "-f", "mp3"],
    "aac_32k": ["-c:a", "aac", "-b:a", "32k", "-f", "adts"],
    "opus_12k": ["-c:a", "libopus", "-b:a", "12k", "-f", "ogg"],
}
# Outside files used as background during training; the others are kept for evaluation
# (music overlays, talkers and the no-match queries).
OUTSIDE_TRAIN = [
    "music_01",
    "music_02",
    "music_03",
    "music_04",
    "music_05",
    "speech_01",
    "speech_02",
]


def decode(path: Path) -> np.ndarray:
    """A whole file at the analysis rate, as the index decodes it (no duration cap)."""
    return decode_file(path, sample_rate_hz=SAMPLE_RATE_HZ)


def codec_round_trip(signal: np.ndarray, codec_args: list[str]) -> np.ndarray:
    pcm = signal.astype(np.float32).tobytes()
    coded = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "f32le",
            "-ar",
            str(SAMPLE_RATE_HZ),
            "-ac",
            "1",
            "-i",
            "-",
            *codec_args,
            "-",
        ],
        input=pcm,
        check=True,
        capture_output=True,
    ).stdout
    out = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            "-",
            "-ac",
            "1",
            "-ar",
            str(SAMPLE_RATE_HZ),
            "-f",
            "f32le",
            "-",
        ],
        input=coded,
        check=True,
        capture_output=True,
    ).stdout
    decoded = np.frombuffer(out, dtype=np.float32)
    # Align to the input: codecs add a delay; find it by cross-correlating the start.
    n = min(len(decoded), len(signal))
    probe = signal[SAMPLE_RATE_HZ * 10 : SAMPLE_RATE_HZ * 40]
    best_lag, best = 0, -np.inf
    for lag in range(0, 2000, 1):
        seg = decoded[SAMPLE_RATE_HZ * 10 + lag : SAMPLE_RATE_HZ * 40 + lag]
        if len(seg) < len(probe):
            break
        c = float(np.dot(seg[::4], probe[::4]))
        if c > best:
            best, best_lag = c, lag
    aligned = np.zeros_like(signal)
    m = min(n - best_lag, len(signal))
    aligned[:m] = decoded[best_lag : best_lag + m]
    return aligned


def make_rirs(
    *,
    count: int,
    seed: int,
    rt60_s: tuple[float, float],
    distance_m: tuple[float, float],
    max_len: int,
) -> np.ndarray:
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    rirs = np.zeros((count, max_len), dtype=np.float32)
    k = 0
    while k < count:
        rt60 = rng.uniform(*rt60_s)
        dims = np.array([rng.uniform(3, 8), rng.uniform(3, 7), rng.uniform(2.4, 3.5)])
        dist = rng.uniform(*distance_m)
        src = np.array(
            [
                rng.uniform(0.3, dims[0] - 0.3),
                rng.uniform(0.3, dims[1] - 0.3),
                rng.uniform(0.8, 1.6),
            ]
        )
        direction = rng.normal(size=3)
        direction[2] *= 0.2
        direction /= np.linalg.norm(direction)
        mic = src + dist * direction
        if np.any(mic < 0.2) or np.any(mic > dims - 0.2):
            continue
        try:
            e_abs, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:
            continue
        # Image sources up to order 40 reach the RT60's -60 dB at 8 kHz (checked: a
        # 1.0 s room measures 1.04 s from its T20) in well under a second per room.
        room = pra.ShoeBox(
            dims, fs=SAMPLE_RATE_HZ, materials=pra.Material(e_abs), max_order=min(max_order, 40)
        )
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)[:max_len]
        full = np.zeros(max_len)
        full[: len(rir)] = rir
        full /= np.sqrt(np.sum(full**2)) + 1e-12
        rirs[k] = full
        k += 1
    return rirs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path("/work/shared/corpus"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/citywok-learned"))
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--rirs", type=int, default=400)
    args = ap.parse_args()
    cache: Path = args.cache
    manifest = json.loads((args.corpus / "manifest.json").read_text())
    for sub in ("library", "coded", "outside"):
        (cache / sub).mkdir(parents=True, exist_ok=True)

    split = []
    for k, ep in enumerate(manifest["episodes"]):
        dst = cache / "library" / f"{k:02d}.npy"
        if not dst.exists():
            np.save(dst, decode(args.corpus / "library" / ep["file"]))
        signal = np.load(dst, mmap_mode="r")
        duration = len(signal) / SAMPLE_RATE_HZ
        train_end = duration * (1 - HELD_OUT_FRACTION)
        shared = [[s["start_s"], s["end_s"]] for s in ep["segments"] if s["kind"] != "scene"]
        split.append(
            {
                "index": k,
                "file": ep["file"],
                "duration_s": duration,
                "train_range_s": [0.0, train_end],
                "held_out_range_s": [train_end, duration],
                "shared_s": shared,
            }
        )
        for name, codec_args in CODECS.items():
            cdst = cache / "coded" / f"{k:02d}_{name}.npy"
            if not cdst.exists():
                # Only the training range is coded: held-out audio is never touched here.
                n_train = int(train_end * SAMPLE_RATE_HZ)
                np.save(cdst, codec_round_trip(np.asarray(signal[:n_train]), codec_args))
        print(f"episode {k}: {duration:.0f} s", flush=True)
    (cache / "split.json").write_text(
        json.dumps({"episodes": split, "outside_train": OUTSIDE_TRAIN}, indent=1)
    )
    for f in sorted((args.corpus / "outside").iterdir()):
        dst = cache / "outside" / f"{f.stem}.npy"
        if not dst.exists():
            np.save(dst, decode(f))
    if not (cache / "rirs_train.npz").exists():
        rirs = make_rirs(
            count=args.rirs,
            seed=args.seed,
            rt60_s=(0.2, 1.0),
            distance_m=(1.0, 5.0),
            max_len=SAMPLE_RATE_HZ,
        )
        np.savez(cache / "rirs_train.npz", rirs=rirs)
    print("prepared", cache)


if __name__ == "__main__":
    main()
