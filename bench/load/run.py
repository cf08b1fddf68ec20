"""Load benchmark of the web service (not a test): throughput, latency, memory, limits.

Starts ``citywok serve`` with several workers on loopback (sharing a Redis for rate
limits when ``redis-server`` is installed), then:

1. throughput: ``--concurrency`` clients upload 5 s clips in a loop for ``--duration`` s,
   taking in turn a clean clip, a distorted one (1.2x fast, noise, MP3 32k) and one of
   audio that is not in the library (answered ``no_match``); prints identifications/s,
   p50/p95/p99 latency of all and of each kind, answers as expected, error rate and RSS
   per worker;
2. limits: bursts of concurrent requests against a key limited to ``--key-limit`` and the
   anonymous tier limited to ``--anon-limit``; exactly that many must get through.

    python bench/load/run.py [--workers 2] [--concurrency 8] [--duration 20] [--json out]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from citywok.cli.demo import RATE_HZ, encode, make_library, melody
from citywok.index import Index
from citywok.pipeline import drive, index_paths
from citywok.web.keys import KeyStore

URL = "/api/v1/identify"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """Worker processes of the server (not multiprocessing's resource tracker)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cmdline = (stat.parent / "cmdline").read_bytes() if stat.parent.exists() else b""
        if int(fields[1]) == pid and b"resource_tracker" not in cmdline:
            out.append(int(stat.parent.name))
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


#: Kinds of clip in the mix: name -> the status a right answer has.
EXPECTED = {"match": "match", "distorted": "match", "no_match": "no_match"}


def latency_ms(values: list[float]) -> dict[str, float]:
    return {f"p{q}_ms": round(percentile(values, q) * 1000, 1) for q in (50, 95, 99)}


async def throughput(url: str, clips: dict[str, bytes], token: str, concurrency: int,
                     duration_s: float) -> dict[str, Any]:
    """Clients send the kinds of ``clips`` in turn; every answered request is timed."""
    latencies: dict[str, list[float]] = {k: [] for k in clips}
    as_expected: dict[str, int] = {k: 0 for k in clips}
    statuses: dict[int, int] = {}
    errors = 0
    sent = 0
    kinds = list(clips)
    deadline = time.monotonic() + duration_s

    async def loop(client: httpx.AsyncClient) -> None:
        nonlocal errors, sent
        while time.monotonic() < deadline:
            kind = kinds[sent % len(kinds)]
            sent += 1
            t0 = time.perf_counter()
            try:
                r = await client.post(URL, files={"file": ("clip.mp3", clips[kind])},
                                      headers={"X-API-Key": token})
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    latencies[kind].append(time.perf_counter() - t0)
                    as_expected[kind] += int(r.json().get("status") == EXPECTED[kind])
                else:
                    errors += 1
            except httpx.HTTPError:
                errors += 1

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=120,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        await asyncio.gather(*[loop(client) for _ in range(concurrency)])
    elapsed = time.monotonic() - started
    answered = sum(len(v) for v in latencies.values())
    total = answered + errors
    return {
        "requests": total, "identified": answered, "elapsed_s": round(elapsed, 2),
        "identifications_per_s": round(answered / elapsed, 2),
        **latency_ms([x for v in latencies.values() for x in v]),
        "by_kind": {k: {"answered": len(latencies[k]), "as_expected": as_expected[k],
                        **latency_ms(latencies[k])} for k in clips},
        "error_rate": round(errors / total, 4) if total else 0.0,
        "statuses": statuses,
    }


async def burst(url: str, clip: bytes, n: int, headers: dict[str, str]) -> dict[int, int]:
    async with httpx.AsyncClient(base_url=url, timeout=120,
                                 limits=httpx.Limits(max_connections=n)) as client:
        rs = await asyncio.gather(*[client.post(URL, files={"file": ("c.mp3", clip)},
                                                headers=headers) for _ in range(n)])
    out: dict[int, int] = {}
    for r in rs:
        out[r.status_code] = out.get(r.status_code, 0) + 1
    return out


async def crowd(url: str, clip: bytes, n: int, token: str, pids: list[int]
                ) -> dict[str, Any]:
    """``n`` uploads at once: how many are answered, how many refused (503 ``busy``), how
    long each kind took, and the workers' RSS at the peak."""
    times: dict[int, list[float]] = {}
    peak_rss = [0.0]

    async def one(client: httpx.AsyncClient) -> None:
        t0 = time.perf_counter()
        try:
            r = await client.post(URL, files={"file": ("c.mp3", clip)},
                                  headers={"X-API-Key": token})
            code = r.status_code
        except httpx.HTTPError:
            code = 0
        times.setdefault(code, []).append(time.perf_counter() - t0)

    async def watch() -> None:
        while True:
            peak_rss[0] = max(peak_rss[0], sum(rss_mb(p) for p in pids))
            await asyncio.sleep(0.1)

    before = sum(rss_mb(p) for p in pids)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=300,
                                 limits=httpx.Limits(max_connections=n)) as client:
        watcher = asyncio.ensure_future(watch())
        await asyncio.gather(*[one(client) for _ in range(n)])
        watcher.cancel()
    return {"sent": n, "elapsed_s": round(time.monotonic() - started, 2),
            "statuses": {code: len(v) for code, v in sorted(times.items())},
            "latency": {code: latency_ms(v) for code, v in sorted(times.items())},
            "rss_mb_workers_before": round(before, 1),
            "rss_mb_workers_peak": round(peak_rss[0], 1)}


def _exact(statuses: dict[int, int], limit: int, sent: int) -> bool:
    """The limit held: exactly ``limit`` answered and the rest 429, or, where the bounded
    queue refused some of the burst at once (503 ``busy``: those spend no quota), no more
    than ``limit`` answered and nothing else but 429 and 503."""
    ok, limited, busy = statuses.get(200, 0), statuses.get(429, 0), statuses.get(503, 0)
    if ok + limited + busy != sent:
        return False
    return ok == limit if busy == 0 else ok <= limit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--episodes", type=int, default=6)
    ap.add_argument("--key-limit", type=int, default=50)
    ap.add_argument("--anon-limit", type=int, default=30)
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--crowd", type=int, default=0,
                    help="Also send this many uploads at once (the bounded queue: answered "
                    "or refused at once with 503)")
    ap.add_argument("--json", type=Path, help="Also write the figures here.")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="citywok-load-"))
    procs: list[subprocess.Popen[bytes]] = []
    server_pids: list[int] = []
    try:
        lib = work / "library"
        make_library(lib, episodes=args.episodes, seconds=60)
        with Index.open(work / "index", writable=True) as idx:
            drive(index_paths(idx, [lib]))
        truth = json.loads((lib / "truth.json").read_text())
        raw = np.load(lib / truth[1]["raw"])
        clip = encode(raw[int(20 * RATE_HZ): int(25 * RATE_HZ)], work / "clip.mp3",
                      audio_args=("-c:a", "libmp3lame", "-b:a", "64k")).read_bytes()
        # 6 s played 1.2x fast (5 s), white noise at 10 dB, MP3 32k.
        other = np.load(lib / truth[-1]["raw"])[int(30 * RATE_HZ): int(36 * RATE_HZ)]
        noise = np.random.default_rng(3).standard_normal(len(other)).astype(np.float32)
        noisy = other + noise * np.float32(np.sqrt(np.mean(other**2) / 10))
        distorted = encode(noisy.astype(np.float32), work / "distorted.mp3",
                           audio_args=("-c:a", "libmp3lame", "-b:a", "32k"),
                           filters=f"asetrate={int(RATE_HZ * 1.2)},aresample={RATE_HZ}")
        # Audio the library does not hold: a melody of its own.
        unknown = encode(melody(np.random.default_rng(99), 5.0), work / "unknown.mp3",
                         audio_args=("-c:a", "libmp3lame", "-b:a", "64k"))
        mix = {"match": clip, "distorted": distorted.read_bytes(),
               "no_match": unknown.read_bytes()}

        env = {**os.environ, "CITYWOK_INDEX": str(work / "index"),
               "CITYWOK_TEMP_DIR": str(work / "tmp"),
               "CITYWOK_ANONYMOUS_RATE_LIMIT": f"{args.anon_limit}/hour",
               "CITYWOK_KEY_RATE_LIMIT": f"{args.key_limit}/hour",
               "CITYWOK_LOG_LEVEL": "warning"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        storage = "memory:// (per worker: limits are per worker)"
        if shutil.which("redis-server"):
            rport = free_port()
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(work)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            env["CITYWOK_RATE_LIMIT_STORAGE"] = f"redis://127.0.0.1:{rport}/0"
            storage = "redis"
            time.sleep(0.5)
        env["CITYWOK_KEYS_DB"] = str(work / "keys.sqlite")  # beside, not in, the index
        store = KeyStore(work / "keys.sqlite")
        big = store.create("load", rate_limit="1000000/hour").token
        limited = store.create("limited").token

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "citywok.cli.serve", "serve", "--port", str(port),
             "--workers", str(args.workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        procs.append(server)
        server_pids.append(server.pid)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        time.sleep(1.0)  # let every worker come up

        asyncio.run(throughput(url, mix, big, 2, 3.0))  # warm-up
        figures = asyncio.run(throughput(url, mix, big, args.concurrency, args.duration))
        workers = children(server.pid) or [server.pid]  # one worker: the server itself
        figures["rss_mb_per_worker"] = sorted(round(rss_mb(p), 1) for p in workers)
        figures["rss_mb_master"] = round(rss_mb(server.pid), 1)

        key_burst = asyncio.run(burst(url, clip, args.burst, {"X-API-Key": limited}))
        anon_burst = asyncio.run(burst(url, clip, args.burst, {}))
        figures["limits"] = {
            "storage": storage,
            "key": {"limit": args.key_limit, "sent": args.burst, "statuses": key_burst,
                    "exact": _exact(key_burst, args.key_limit, args.burst)},
            "anonymous": {"limit": args.anon_limit, "sent": args.burst,
                          "statuses": anon_burst,
                          "exact": _exact(anon_burst, args.anon_limit, args.burst)},
        }
        if args.crowd:
            figures["crowd"] = asyncio.run(crowd(url, clip, args.crowd, big, workers))
        figures["setup"] = {"workers": args.workers, "concurrency": args.concurrency,
                            "duration_s": args.duration, "episodes": args.episodes,
                            "episode_s": 60, "clip_s": 5, "cpus": os.cpu_count()}
        print(f"workers {args.workers}, concurrency {args.concurrency}, "
              f"{args.duration:g} s, index of {args.episodes} x 60 s episodes, 5 s MP3 clips "
              "in turn: clean, distorted, not in the library")
        print(f"identifications/s  {figures['identifications_per_s']}")
        print(f"latency p50/p95/p99  {figures['p50_ms']} / {figures['p95_ms']} / "
              f"{figures['p99_ms']} ms")
        for kind, k in figures["by_kind"].items():
            print(f"  {kind:9s} p50/p95/p99  {k['p50_ms']} / {k['p95_ms']} / {k['p99_ms']} ms"
                  f"  as expected {k['as_expected']}/{k['answered']}")
        print(f"error rate  {figures['error_rate']:.2%}  ({figures['statuses']})")
        print(f"RSS per worker  {figures['rss_mb_per_worker']} MB "
              f"(master {figures['rss_mb_master']} MB)")
        for tier in ("key", "anonymous"):
            t = figures["limits"][tier]
            print(f"limit {tier}: {t['limit']}/hour, {t['sent']} concurrent -> "
                  f"{t['statuses']}  exact: {t['exact']}  ({storage})")
        if args.crowd:
            c = figures["crowd"]
            print(f"crowd: {c['sent']} uploads at once -> {c['statuses']} in {c['elapsed_s']} s")
            for code, lat in c["latency"].items():
                print(f"  {code}: p50/p95/p99  {lat['p50_ms']} / {lat['p95_ms']} / "
                      f"{lat['p99_ms']} ms")
            print(f"  workers' RSS {c['rss_mb_workers_before']} -> peak "
                  f"{c['rss_mb_workers_peak']} MB")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=1))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    if p.pid in server_pids:  # the server: its whole group
                        os.killpg(p.pid, signal.SIGTERM)
                    else:
                        p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
