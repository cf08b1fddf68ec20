"""Every answer of one version, as JSON, to diff against another's: a refactoring that
must not change what CityWok answers shows it with ``cmp``, not a claim.

    .venv/bin/python -m bench.same_answers WORK OUT.json
    PYTHONPATH=/path/to/other/src .venv/bin/python -m bench.same_answers WORK2 OTHER.json
    cmp OUT.json OTHER.json

On the generated demo library (4 episodes of 40 s, seed 11; built in ``WORK`` by the
version under test, so indexing is compared too): identify on 48 clips (every episode,
3/5/10 s, clean, 1.1x and 0.85x speed, 0 dB noise), the timeline of a 70 s mix (three
episodes, noise, a sped-up stretch, a jump, a noisy stretch), and live following of the
same mix fed 0.2 s at a time. Every field is kept but the elapsed times.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from citywok.cli.demo import make_library
from citywok.index import Index
from citywok.long.live import LiveTracker
from citywok.long.timeline import run_to_end, timeline_steps
from citywok.pipeline import drive, identify_samples, index_paths

Audio = npt.NDArray[np.float32]
RATE_HZ = 8000


def answers(work: Path) -> dict[str, Any]:
    folder, index_dir = work / "library", work / "index"
    if not index_dir.exists():
        make_library(folder, episodes=4, seconds=40.0, seed=11)
        with Index.open(index_dir, writable=True) as idx:
            drive(index_paths(idx, [folder]))
    truth = json.loads((folder / "truth.json").read_text())
    episodes = [np.asarray(resample_poly(np.load(folder / t["raw"]), 1, 2), dtype=np.float32)
                for t in truth]
    rng = np.random.default_rng(5)

    def cut(n: int, start_s: float, length_s: float) -> Audio:
        return episodes[n][int(start_s * RATE_HZ) : int((start_s + length_s) * RATE_HZ)]

    def speed(x: Audio, factor: float) -> Audio:
        return np.asarray(resample_poly(x, 100, round(100 * factor)), dtype=np.float32)

    def noisy(x: Audio, snr_db: float) -> Audio:
        power = float(np.mean(x**2))
        noise = rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(x))
        return np.asarray(x + noise, dtype=np.float32)

    kinds: tuple[tuple[str, Callable[[Audio], Audio]], ...] = (
        ("clean", lambda x: x), ("fast", lambda x: speed(x, 1.1)),
        ("noise0", lambda x: noisy(x, 0.0)), ("slow", lambda x: speed(x, 0.85)))
    out: dict[str, Any] = {"identify": [], "timeline": None, "live": []}
    with Index.open(index_dir) as index:
        for n in range(len(episodes)):
            for start_s, length_s in ((3.0, 3.0), (12.0, 5.0), (25.0, 10.0)):
                for name, change in kinds:
                    got = identify_samples(change(cut(n, start_s, length_s)), index).to_json()
                    got.pop("elapsed_ms", None)
                    out["identify"].append({"ep": n, "start": start_s, "len": length_s,
                                            "kind": name, "answer": got})
        noise = np.asarray(rng.normal(0, 0.05, 6 * RATE_HZ), dtype=np.float32)
        mix = np.concatenate([cut(1, 5.0, 14.0), noise, speed(cut(2, 8.0, 16.0), 1.1),
                              cut(0, 20.0, 12.0), cut(0, 2.0, 8.0),
                              noisy(cut(3, 10.0, 15.0), 3.0)])
        step = 4 * RATE_HZ
        timeline = run_to_end(timeline_steps(
            (mix[i : i + step] for i in range(0, len(mix), step)), index))
        tl = timeline.to_json()
        tl.pop("elapsed_ms", None)
        tl["searches"] = timeline.searches
        out["timeline"] = tl
        tracker = LiveTracker(index)
        step = int(0.2 * RATE_HZ)
        for i in range(0, len(mix), step):
            out["live"] += [e.to_json() for e in tracker.feed(mix[i : i + step])]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, help="folder for the demo library and its index")
    ap.add_argument("out", type=Path, help="where the answers go (JSON)")
    args = ap.parse_args()
    got = answers(args.work)
    args.out.write_text(json.dumps(got, indent=1, sort_keys=True))
    print(f"identify {len(got['identify'])}, timeline {len(got['timeline']['segments'])} "
          f"stretches, live {len(got['live'])} events -> {args.out}")


if __name__ == "__main__":
    main()
