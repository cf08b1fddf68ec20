"""Scale benchmark: the same 5 s clips against the library at 1x, 10x, 100x, 250x.

    .venv/bin/python -m bench.scale ../shared/corpus --scales 1,10 [--work DIR --keep]

The extra hours are synthetic episodes made of scrambled real peaks that match nothing
(``bench/synthetic.py`` says how), added through the store's public API in batches
(``Index.open(writable=True)``, ``add``, and ``compact`` whenever the store holds more
than 8 segments, as ``citywok index`` does; each measured size is compacted to one
segment). Every stage runs in its own process, so the peak RSS of building and of
querying are measured apart. Queries run pinned to one core with single-threaded
BLAS/FFT. Stages can be run a few at a time: with ``--work DIR --keep`` a later run
resumes from the largest size built (``--scales 100,250`` after ``--scales 1,10``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import engine
from bench.corpus import MAX_SPEED, SR_IN, Places, cut, load_corpus, split_outside
from bench.distortions import Overlays, distortions
from bench.scoring import OFFSET_TOL_S, percentile
from bench.synthetic import library_peaks, synthetic_copy
from citywok.analysis.decode import decode
from citywok.errors import CityWokError
from citywok.index import Index
from citywok.params import MatchParams
from citywok.pipeline import drive, index_paths

#: The store merges its segments when it holds more than this many (as ``citywok index``).
MAX_SEGMENTS = 8
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """This process's peak RSS since it started its program (``VmHWM``; unlike
    ``ru_maxrss`` it does not count what the parent held when it forked us)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_stage(args: list[str]) -> tuple[dict[str, Any], float]:
    """Run ``python -m bench.scale --stage ...``; return its JSON and its peak RSS (MB)."""
    env = {**os.environ, **{v: "1" for v in THREAD_VARS}}
    p = subprocess.run([sys.executable, "-m", "bench.scale", *args], env=env,
                       stdout=subprocess.PIPE, check=False)
    if p.returncode != 0:
        raise SystemExit(f"stage {' '.join(args[-2:])} failed ({p.returncode})")
    out = json.loads(p.stdout)
    return out, float(out.pop("peak_rss_mb"))


# -- stages (each in its own process) ------------------------------------------------------


def stage_ingest(corpus_dir: Path, work: Path) -> dict[str, Any]:
    files = sorted((corpus_dir / "library").iterdir())
    t = time.perf_counter()
    with Index.open(work / "index", writable=True) as idx:
        summary = drive(index_paths(idx, files))
        stats = idx.stats()
    wall = time.perf_counter() - t
    return {"hours": stats.hours, "wall_s": wall, "x_realtime": summary.audio_s / wall,
            "what": "decode + fingerprint + write of the real episodes"}


def synthetic_count(idx: Index) -> int:
    return sum(e.show == "Synthetic" for e in idx.episodes.values())


def stage_grow(corpus_dir: Path, work: Path, upto: int, batch_copies: int, seed: int
               ) -> dict[str, Any]:
    files = sorted((corpus_dir / "library").iterdir())
    with Index.open(work / "index", writable=True) as idx:
        library = library_peaks(files, idx.params, work / "library-peaks.npz")
        n_real = len(library)
        have = synthetic_count(idx) // n_real
        t = time.perf_counter()
        added_h = 0.0
        compactions = 0
        copy = have + 1
        compact_error: str | None = None

        def compact() -> None:
            # The store may refuse to merge past what one segment can hold; the index is
            # then left with several segments, and the report says why.
            nonlocal compactions, compact_error
            if compact_error is None:
                try:
                    idx.compact()
                    compactions += 1
                except (ValueError, CityWokError) as exc:
                    compact_error = f"{type(exc).__name__}: {exc}"
                    log(f"  compaction refused: {compact_error}")

        while copy < upto:
            batch = []
            for c in range(copy, min(upto, copy + batch_copies)):
                batch += synthetic_copy(c, library, idx.params, seed)
            idx.add(batch)
            added_h += sum(it.episode.duration_s for it in batch) / 3600
            copy += batch_copies
            if len(idx.segments) > MAX_SEGMENTS:
                compact()
            log(f"  {synthetic_count(idx) // n_real + 1}x: {len(idx.segments)} segments")
        compact()
        wall = time.perf_counter() - t
        stats = idx.stats()
    return {"hours": stats.hours, "added_hours": added_h, "wall_s": wall,
            "hours_per_s": added_h / wall if wall else None, "compactions": compactions,
            "compact_error": compact_error,
            "segments": stats.segments, "index_bytes": stats.index_bytes,
            "index_mb_per_hour": stats.index_bytes / 1e6 / stats.hours, "peaks": stats.peaks,
            "hashes": stats.hashes}


def stage_query(work: Path, threshold: float | None) -> dict[str, Any]:
    allowed = os.sched_getaffinity(0)
    core = max(allowed)
    os.sched_setaffinity(0, {core})
    meta = json.loads((work / "clips.json").read_text())
    data = np.load(work / "clips.npz")
    mp = MatchParams()
    if threshold is not None:
        mp = engine.with_threshold(mp, threshold)
    idx = Index.open(work / "index")
    stats = idx.stats()
    for i in range(min(10, len(meta))):  # warm-up: imports, caches, the first page faults
        engine.identify(data[f"c{i}"], idx, mp)
    rows = []
    for i, m in enumerate(meta):
        a = engine.identify(data[f"c{i}"], idx, mp)
        right = (a.status.value == "match" and a.episode_file == m["source"]
                 and a.offset_s is not None and abs(a.offset_s - m["start_s"]) <= OFFSET_TOL_S)
        rows.append({**m, "status": a.status.value, "ms": a.elapsed_ms, "right": right,
                     "wrong": a.status.value == "match" and not right})
    idx.close()
    lib = [r for r in rows if r["kind"] == "library"]
    out = [r for r in rows if r["kind"] == "outside"]
    ms_all = [r["ms"] for r in rows]
    by_dist: dict[str, Any] = {}
    for name in sorted({r["distortion"] for r in lib}):
        rs = [r for r in lib if r["distortion"] == name]
        by_dist[name] = {"clips": len(rs), "hits": sum(r["right"] for r in rs),
                         "wrong_answers": sum(r["wrong"] for r in rs),
                         "p50_ms": percentile([r["ms"] for r in rs], 50),
                         "p99_ms": percentile([r["ms"] for r in rs], 99)}
    return {
        "hours": stats.hours, "index_bytes": stats.index_bytes, "segments": stats.segments,
        "core": core, "threshold": engine.threshold_value(mp),
        "p50_ms": percentile(ms_all, 50), "p99_ms": percentile(ms_all, 99),
        "library": by_dist,
        "outside": {"clips": len(out), "false_hits": sum(r["status"] != "no_match" for r in out),
                    "p50_ms": percentile([r["ms"] for r in out], 50),
                    "p99_ms": percentile([r["ms"] for r in out], 99)},
    }


# -- the orchestrator ----------------------------------------------------------------------


def make_clips(corpus_dir: Path, work: Path, names: list[str], n: int, n_out: int,
               seed: int) -> dict[str, Any]:
    """The clips every size is asked: ``n`` places x each distortion, and ``n_out`` clean
    5 s clips of the held-out outside audio (the split of ``bench.run``)."""
    corpus = load_corpus(corpus_dir)
    out_audio = {f.name: decode(f, sample_rate_hz=SR_IN) for f in corpus.outside}
    overlays = Overlays([a for k, a in out_audio.items() if k.startswith("music")],
                        [a for k, a in out_audio.items() if k.startswith("speech")])
    with Index.open(work / "index") as idx:
        band = (idx.params.fmin_hz, idx.params.fmax_hz)
    dists = {d.name: d for d in distortions(overlays, band)}
    places = Places(corpus, np.random.default_rng([seed, 5]))
    bases = [(e, s, cut(corpus.library / e.file, s, 5.0 * MAX_SPEED))
             for e, s in (places(5.0) for _ in range(n))]
    meta: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    for name in names:
        d = dists[name]
        rng = np.random.default_rng([seed, 6, len(meta)])
        for e, s, base in bases:
            arrays[f"c{len(meta)}"] = d.apply(base[: int(5.0 * d.speed * SR_IN)], rng)
            meta.append({"kind": "library", "distortion": name, "source": e.file,
                         "start_s": s})
    _, held = split_outside(corpus.outside, seed=seed)
    rng = np.random.default_rng([seed, 7])
    for _ in range(n_out):
        f = held[int(rng.integers(len(held)))]
        a = out_audio[f.name]
        s = int(rng.integers(0, len(a) - 5 * SR_IN))
        arrays[f"c{len(meta)}"] = dists["clean"].apply(a[s : s + 5 * SR_IN], rng)
        meta.append({"kind": "outside", "distortion": "clean", "source": f.name,
                     "start_s": s / SR_IN})
    savez: Any = np.savez  # its stubs take **arrays for keyword options
    savez(work / "clips.npz", **arrays)
    (work / "clips.json").write_text(json.dumps(meta))
    return {"clips": len(meta)}


def markdown(r: dict[str, Any]) -> str:
    lines = [f"Scale benchmark, {r['date']} on {r['machine']}; engine `{r['engine']}`.", "",
             "Extra hours: synthetic episodes of time-reversed, pitch-mirrored (or shifted) "
             "30 s blocks of the library's own peaks, added through `Index.add` in batches, "
             "compacted by the store; they match nothing.", "",
             "| size | hours | index MB | MB/hour | p50 ms | p99 ms | query RSS MB | build "
             "RSS MB | build h/s | " + " | ".join(f"hits {d}" for d in r["distortions"])
             + " | false hits |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
             + "---:|" * len(r["distortions"]) + "---:|"]
    for s in r["sizes"]:
        q, b = s["query"], s.get("build", {})
        hits = [f"{q['library'][d]['hits']}/{q['library'][d]['clips']}"
                + (f" ({w} wrong)" if (w := q["library"][d].get("wrong_answers")) else "")
                if d in q["library"] else "" for d in r["distortions"]]
        speed = b.get("hours_per_s")
        lines.append(
            f"| {s['scale']}x | {q['hours']:.0f} | {q['index_bytes'] / 1e6:.0f} | "
            f"{q['index_bytes'] / 1e6 / q['hours']:.2f} | {q['p50_ms']:.1f} | {q['p99_ms']:.1f} | "
            f"{s['query_rss_mb']:.0f} | "
            + (f"{s['build_rss_mb']:.0f}" if "build_rss_mb" in s else
               f"{r['ingest_rss_mb']:.0f} (ingest)" if s["scale"] == 1 and "ingest_rss_mb" in r
               else "") + " | "
            + (f"{speed:.1f}" if speed else "") + " | " + " | ".join(hits)
            + f" | {q['outside']['false_hits']}/{q['outside']['clips']} |")
    lines += ["", "Hits: `match` naming the right episode and start (±1 s) over clips; a "
              "`match` naming a wrong episode or place is counted apart (\"wrong\"), every "
              "other clip is a miss (`no_match` or `ambiguous`). "
              "p50/p99: every clip (library and outside), decoded, one core. Build h/s: "
              "synthetic hours added per second (hashing, writing, compaction; no decoding). "
              + (f"Real ingest at 1x: {r['ingest']['x_realtime']:.0f}x real time "
                 f"({r['ingest']['hours']:.2f} h in {r['ingest']['wall_s']:.1f} s, RSS "
                 f"{r['ingest_rss_mb']:.0f} MB)." if "ingest" in r else ""), ""]
    for s in r["sizes"]:
        error = s.get("build", {}).get("compact_error")
        if error:
            lines.append(f"- {s['scale']}x: the store could not compact ({error}); queried "
                         f"with {s['query']['segments']} segments.")
    for s in r["sizes"]:
        q = s["query"]
        per = ", ".join(f"{d} p50 {v['p50_ms']:.1f} / p99 {v['p99_ms']:.1f} ms"
                        for d, v in q["library"].items())
        lines.append(f"- {s['scale']}x: {per}; outside p50 {q['outside']['p50_ms']:.1f} / "
                     f"p99 {q['outside']['p99_ms']:.1f} ms.")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--scales", default="1,10,100,250")
    ap.add_argument("--out", type=Path, default=Path("bench/out"))
    ap.add_argument("--work", type=Path, help="where the index grows (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep --work for a later run")
    ap.add_argument("--clips", type=int, default=40, help="library places (x distortions)")
    ap.add_argument("--distortions", default="clean,speed_1.2,music_0db_band")
    ap.add_argument("--outside", type=int, default=120, help="outside 5 s clips")
    ap.add_argument("--batch-copies", type=int, default=10,
                    help="library copies per add() call (10 = ~40 h)")
    ap.add_argument("--threshold", type=float, help=f"MatchParams.{engine.THRESHOLD_FIELD} "
                    "(default: the engine's)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--stage", choices=("ingest", "clips", "grow", "query"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--upto", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage is not None:
        if args.stage == "ingest":
            result = stage_ingest(args.corpus, args.work)
        elif args.stage == "clips":
            result = make_clips(args.corpus, args.work, args.distortions.split(","),
                                args.clips, args.outside, args.seed)
        elif args.stage == "grow":
            result = stage_grow(args.corpus, args.work, args.upto, args.batch_copies,
                                args.seed)
        else:
            result = stage_query(args.work, args.threshold)
        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
        return 0

    from bench.run import engine_commit, machine

    scales = sorted({int(s) for s in args.scales.split(",")})
    work = args.work or Path(tempfile.mkdtemp(prefix="citywok-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    common = [str(args.corpus), "--work", str(work), "--seed", str(args.seed)]
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "machine": machine(),
                              "engine": engine_commit(),
                              "distortions": args.distortions.split(","), "sizes": []}
    try:
        if not (work / "index" / "catalog.sqlite").is_file():
            log("1x: ingest of the real library ...")
            report["ingest"], report["ingest_rss_mb"] = run_stage([*common, "--stage", "ingest"])
        if not (work / "clips.npz").is_file():
            run_stage([*common, "--stage", "clips", "--clips", str(args.clips), "--outside",
                       str(args.outside), "--distortions", args.distortions])
        with Index.open(work / "index") as idx:
            n_real = sum(e.show != "Synthetic" for e in idx.episodes.values())
            current = synthetic_count(idx) // n_real + 1
        for n in scales:
            if n < current:
                log(f"{n}x: skipped (the index at {work} is already {current}x)")
                continue
            size: dict[str, Any] = {"scale": n}
            if n > current:
                log(f"{n}x: building ...")
                size["build"], size["build_rss_mb"] = run_stage(
                    [*common, "--stage", "grow", "--upto", str(n),
                     "--batch-copies", str(args.batch_copies)])
                current = n
            log(f"{n}x: querying ...")
            q_args = [*common, "--stage", "query"]
            if args.threshold is not None:
                q_args += ["--threshold", str(args.threshold)]
            size["query"], size["query_rss_mb"] = run_stage(q_args)
            report["sizes"].append(size)
            log(json.dumps(size))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "scale-" + "-".join(str(s["scale"]) for s in report["sizes"])
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1))
    text = markdown(report)
    (args.out / f"{name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
