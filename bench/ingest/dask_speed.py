"""How fast ingest runs locally and on Dask, in one run over one generated library.

    .venv/bin/python -m bench.ingest.dask_speed [--episodes 8] [--seconds 90]

Indexes the same library five ways into fresh indexes: in-process, a local pool of two
processes, and a local Dask cluster of one and of two worker processes (cluster start
included, and also reported apart). Prints a Markdown table. A speed figure, not a test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from citywok.cli.demo import make_library
from citywok.index import Index
from citywok.ingest.dask import DaskFingerprinter
from citywok.pipeline import drive, index_paths


def _run(folder: Path, dest: Path, *, workers: int = 1, dask: str | None = None,
         ) -> tuple[float, float, float]:
    """(wall seconds including the cluster's start, start alone, audio seconds)."""
    started = time.perf_counter()
    runner = DaskFingerprinter(dask) if dask else None
    ready = time.perf_counter() - started
    with Index.open(dest, writable=True) as idx:
        summary = drive(index_paths(idx, [folder], workers=workers, fingerprinter=runner))
    return time.perf_counter() - started, ready, summary.audio_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=90.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="citywok-dask-bench-") as tmp:
        root = Path(tmp)
        make_library(root / "library", episodes=args.episodes, seconds=args.seconds)
        ways = [("local, in-process", {}), ("local pool, 2 processes", {"workers": 2}),
                ("dask local:1", {"dask": "local:1"}), ("dask local:2", {"dask": "local:2"})]
        print(f"{args.episodes} episodes x {args.seconds:.0f} s, {os.cpu_count()} cores\n")
        print("| how | wall s | cluster start s | x real time | x real time after start |")
        print("|---|---:|---:|---:|---:|")
        for n, (name, kw) in enumerate(ways):
            wall, ready, audio = _run(root / "library", root / f"index{n}", **kw)  # type: ignore[arg-type]
            after = wall - ready
            print(f"| {name} | {wall:.1f} | {ready:.1f} | {audio / wall:.0f} | "
                  f"{audio / after:.0f} |", flush=True)


if __name__ == "__main__":
    main()
