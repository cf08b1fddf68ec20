"""Benchmark on a real-recording corpus: accuracy per distortion, speed, size."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import fftconvolve, resample_poly

from citywok.decode import decode
from citywok.index import Index, NewEpisode
from citywok.params import MatchParams
from citywok.peaks import Peaks
from citywok.pipeline import drive, identify_file, identify_samples, index_paths
from citywok.result import Status

Audio = npt.NDArray[np.float32]
SR_IN = 16000  # clips are cut and distorted at this rate, then brought to 8 kHz
SR = 8000
LENGTHS = (3.0, 5.0, 10.0)


def ffmpeg_filter(x: Audio, filt: str | None, *, codec: list[str] | None = None,
                  fmt: str = "wav") -> Audio:
    """Run ``x`` (16 kHz) through an ffmpeg filter and/or a lossy codec; return 8 kHz."""
    base = ["ffmpeg", "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(SR_IN), "-ac", "1",
            "-i", "pipe:0"]
    if codec:
        enc = subprocess.run(base + (["-af", filt] if filt else []) + codec + ["-f", fmt,
                             "pipe:1"], input=x.tobytes(), capture_output=True, check=True)
        dec = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", "pipe:0", "-ac", "1",
                              "-ar", str(SR), "-f", "f32le", "pipe:1"], input=enc.stdout,
                             capture_output=True, check=True)
        return np.frombuffer(dec.stdout, np.float32).copy()
    out = subprocess.run(base + (["-af", filt] if filt else []) + ["-ar", str(SR), "-f",
                         "f32le", "pipe:1"], input=x.tobytes(), capture_output=True, check=True)
    return np.frombuffer(out.stdout, np.float32).copy()


def to_8k(x: Audio) -> Audio:
    return np.asarray(resample_poly(x, 1, 2), dtype=np.float32)


def mix(x: Audio, other: Audio, snr_db: float) -> Audio:
    px = float(np.mean(x**2)) + 1e-12
    po = float(np.mean(other**2)) + 1e-12
    return np.asarray(x + other * np.sqrt(px / po / 10 ** (snr_db / 10)), dtype=np.float32)


@dataclass(frozen=True)
class Distortion:
    name: str
    #: Clip speed relative to the episode: the clip covers ``length * speed`` of episode.
    speed: float
    apply: Callable[[Audio, np.random.Generator], Audio]


def distortions(music: list[Audio], voices: list[Audio]) -> list[Distortion]:
    def other(pool: list[Audio], n: int, rng: np.random.Generator) -> Audio:
        src = pool[int(rng.integers(len(pool)))]
        s = int(rng.integers(0, len(src) - n))
        return src[s : s + n]

    def reverb(x: Audio, rng: np.random.Generator) -> Audio:
        n = int(0.6 * SR_IN)
        ir = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.1 * SR_IN))
        ir[0] = 1.0 / 0.35
        y = fftconvolve(x, ir * 0.35)[: len(x)]
        return to_8k((y / (np.abs(y).max() + 1e-9) * 0.5).astype(np.float32))

    def rs(s: float) -> str:
        return f"asetrate={round(SR_IN * s)},aresample={SR_IN}"

    d = [
        Distortion("clean", 1.0, lambda x, r: to_8k(x)),
        Distortion("mp3_32k", 1.0, lambda x, r: ffmpeg_filter(
            x, None, codec=["-c:a", "libmp3lame", "-b:a", "32k"], fmt="mp3")),
        Distortion("opus_16k", 1.0, lambda x, r: ffmpeg_filter(
            x, None, codec=["-c:a", "libopus", "-b:a", "16k"], fmt="ogg")),
        Distortion("noise_10db", 1.0, lambda x, r: to_8k(
            mix(x, r.standard_normal(len(x)).astype(np.float32), 10))),
        Distortion("noise_0db", 1.0, lambda x, r: to_8k(
            mix(x, r.standard_normal(len(x)).astype(np.float32), 0))),
        Distortion("music_0db", 1.0, lambda x, r: to_8k(mix(x, other(music, len(x), r), 0))),
        Distortion("voice_0db", 1.0, lambda x, r: to_8k(mix(x, other(voices, len(x), r), 0))),
        Distortion("phone", 1.0, lambda x, r: ffmpeg_filter(
            x, "highpass=f=300:poles=2,highpass=f=300:poles=2,lowpass=f=3400:poles=2,"
               "lowpass=f=3400:poles=2")),
        Distortion("reverb", 1.0, reverb),
        Distortion("level_-20db", 1.0, lambda x, r: to_8k((x * 0.1).astype(np.float32))),
    ]
    def through(filt: str) -> Callable[[Audio, np.random.Generator], Audio]:
        return lambda x, r: ffmpeg_filter(x, filt)

    for s in (0.75, 0.8, 0.9, 1.1, 1.2, 1.3):
        d.append(Distortion(f"speed_{s:g}", s, through(rs(s))))
    for s in (0.8, 0.9, 1.1, 1.25):
        d.append(Distortion(f"tempo_{s:g}", s, through(f"atempo={s}")))
    for st in (-3, -1.5, 1.5, 3):
        d.append(Distortion(f"pitch_{st:+g}", 1.0,
                            through(f"rubberband=pitch={2 ** (st / 12):.6f}")))
    return d


def cut(path: Path, start_s: float, length_s: float) -> Audio:
    """``length_s`` seconds of ``path`` from ``start_s`` at 16 kHz mono (native decode)."""
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{start_s:.3f}", "-t",
         f"{length_s:.3f}", "-i", str(path), "-vn", "-ac", "1", "-ar", str(SR_IN), "-f",
         "f32le", "pipe:1"], capture_output=True, check=True)
    return np.frombuffer(out.stdout, np.float32).copy()


def identical_audio(clip: Audio, ref: Audio, *, window_s: float = 0.5,
                    threshold: float = 0.95) -> bool:
    """Whether some ``window_s`` of ``clip`` correlates >= ``threshold`` with ``ref`` at
    some lag (both at 8 kHz): the same recording, not a look-alike."""
    w = int(window_s * SR)
    for start in range(0, max(1, len(clip) - w), w // 2):
        x = clip[start : start + w]
        ex = float(np.dot(x, x))
        if len(x) < w or ex < 1e-6:
            continue
        corr = np.correlate(ref, x, mode="valid")
        energy = np.convolve(ref**2, np.ones(w, dtype=np.float32), mode="valid")
        score = corr / np.sqrt(ex * energy + 1e-12)
        if score.size and float(score.max()) >= threshold:
            return True
    return False


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bench_ingest(files: list[Path], index_dir: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    c0 = cpu_s()
    for f in files:
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-i", str(f),
                        "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(SR), "-f", "f32le",
                        "-y", "/dev/null"], check=True)
    ffmpeg_wall = time.perf_counter() - t0
    ffmpeg_cpu = cpu_s() - c0
    t1 = time.perf_counter()
    c1 = cpu_s()
    with Index.open(index_dir, writable=True) as idx:
        summary = drive(index_paths(idx, files))
        stats = idx.stats()
    ingest_wall = time.perf_counter() - t1
    ingest_cpu = cpu_s() - c1
    audio_s = summary.audio_s
    return {
        "audio_h": audio_s / 3600,
        "ffmpeg_decode_s": ffmpeg_wall,
        "ffmpeg_x_realtime": audio_s / ffmpeg_wall,
        "ingest_s": ingest_wall,
        "ingest_x_realtime": audio_s / ingest_wall,
        "ingest_x_realtime_per_core": audio_s / ingest_cpu,
        "ffmpeg_x_realtime_per_core": audio_s / ffmpeg_cpu,
        "ingest_over_ffmpeg": ingest_wall / ffmpeg_wall,
        "index_bytes": stats.index_bytes,
        "index_mb_per_hour": stats.index_bytes / 1e6 / (audio_s / 3600),
        "peaks": stats.peaks,
        "hashes": stats.hashes,
    }


def bench_fingerprint(samples: list[Audio], index: Index) -> dict[str, Any]:
    """Fingerprinting alone (peaks and hashes) of decoded audio, fed in 8 s chunks
    through the same streaming path as ingest."""
    from citywok.hashes.triplet import reference_hashes as episode_hashes
    from citywok.peaks import PeakStream

    params = index.params
    chunk = 8 * SR
    t0 = time.process_time()
    for x in samples:
        stream = PeakStream(params=params, peak_params=params.index_peaks)
        parts = [stream.feed(x[i : i + chunk]) for i in range(0, len(x), chunk)]
        parts.append(stream.finish())
        episode_hashes(Peaks.concat(parts), params)
    cpu = time.process_time() - t0
    audio_s = sum(len(x) for x in samples) / SR
    return {"fingerprint_x_realtime_per_core": audio_s / cpu, "fingerprint_cpu_s": cpu}


def synthetic_copies(index: Index, copies: int, seed: int = 5) -> list[NewEpisode]:
    """Peaks that look like the library's but match nothing: 30 s blocks from random
    episodes, time-reversed and pitch-mirrored."""
    rng = np.random.default_rng(seed)
    sources: list[Peaks] = []
    for seg in index.segments:
        for local in range(len(seg.episode_keys)):
            sources.append(seg.episode_peaks(local))
    block = int(30 / index.params.frame_s)
    items: list[NewEpisode] = []
    eps = list(index.episodes.values())
    for c in range(copies):
        for e_no, (src, ep) in enumerate(zip(sources, eps, strict=True)):
            frames, pitches = [], []
            total = int(src.frame[-1]) + 1
            pos = 0
            while pos < total:
                donor = sources[int(rng.integers(len(sources)))]
                start = int(rng.integers(0, max(1, int(donor.frame[-1]) - block)))
                sel = (donor.frame >= start) & (donor.frame < start + block)
                f = (start + block - 1 - donor.frame[sel]) + pos
                p = (np.float32(75.0) - donor.pitch[sel]) if rng.random() < 0.5 else \
                    donor.pitch[sel] + np.float32(rng.uniform(-0.5, 0.5))
                frames.append(f)
                pitches.append(p)
                pos += block
            fr = np.concatenate(frames).astype(np.int32)
            pi = np.concatenate(pitches).astype(np.float32)
            order = np.lexsort((pi, fr))
            items.append(NewEpisode(
                episode=replace(ep, episode_id=f"synthetic-{c}-{e_no}", show="Synthetic",
                                content_hash=f"synthetic-{c}-{e_no}"),
                peaks=Peaks(fr[order], pi[order]), file_size=0, file_mtime_ns=0))
    return items


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--out", type=Path, default=Path("bench/out"))
    ap.add_argument("--clips", type=int, default=60, help="clips per distortion and length")
    ap.add_argument("--outside", type=int, default=600, help="clips of outside audio")
    ap.add_argument("--scale", type=int, default=10, help="library scale for the growth run")
    ap.add_argument("--only", default="", help="comma-separated distortion names")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    corpus: Path = args.corpus
    manifest = json.loads((corpus / "manifest.json").read_text())
    lib_files = sorted((corpus / "library").iterdir())
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="citywok-bench-"))
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, "
                   f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
                   f"{platform.processor() or platform.machine()}, Python "
                   f"{platform.python_version()}",
    }
    try:
        log("ingest ...")
        report["ingest"] = bench_ingest(lib_files, work / "index")
        log(json.dumps(report["ingest"], indent=1))
        index = Index.open(work / "index")
        by_name = {Path(e.source_path).name: k for k, e in index.episodes.items()}
        decoded = [decode(f, sample_rate_hz=SR) for f in lib_files[:3]]
        report["fingerprint"] = bench_fingerprint(decoded, index)
        log(json.dumps(report["fingerprint"]))
        del decoded

        outside = sorted((corpus / "outside").iterdir())
        out_audio = {f.name: decode(f, sample_rate_hz=SR_IN) for f in outside}
        music = [a for n, a in out_audio.items() if n.startswith("music")]
        voices = [a for n, a in out_audio.items() if n.startswith("speech")]
        dists = distortions(music, voices)
        if args.only:
            wanted = set(args.only.split(","))
            dists = [d for d in dists if d.name in wanted]
        mp = MatchParams()

        episodes = manifest["episodes"]
        shared = {e["file"]: [(s["start_s"], s["end_s"], s["kind"], s.get("cue_id"))
                              for s in e["segments"] if s["kind"] != "scene"]
                  for e in episodes}
        rng = np.random.default_rng(args.seed)

        def place(length: float, max_speed: float = 1.35) -> tuple[dict[str, Any], float]:
            while True:
                e = episodes[int(rng.integers(len(episodes)))]
                span = length * max_speed
                start = float(rng.uniform(0.5, e["duration_s"] - span - 0.5))
                if all(start + span < a or start > b for a, b, _, _ in shared[e["file"]]):
                    return e, start

        results: dict[str, dict[str, float]] = {}
        latency_match: list[float] = []
        for length in LENGTHS:
            places = [place(length) for _ in range(args.clips)]
            bases = [(e, s, cut(corpus / "library" / e["file"], s, length * 1.35))
                     for e, s in places]
            for d in dists:
                ok = 0
                drng = np.random.default_rng(args.seed + int(length))
                for e, start, base in bases:
                    x = base[: int(length * d.speed * SR_IN)]
                    y = d.apply(x, drng)
                    t = time.perf_counter()
                    res = identify_samples(y, index, match_params=mp)
                    dt = (time.perf_counter() - t) * 1000
                    if length == 5.0 and d.name == "clean":
                        latency_match.append(dt)
                    m = res.match
                    ok += int(res.status is Status.MATCH and m is not None
                              and m.episode.episode_id
                              == index.episodes[by_name[e["file"]]].episode_id
                              and abs(m.offset_s - start) <= 1.0)
                results.setdefault(d.name, {})[f"{length:g}s"] = ok / len(bases)
                log(f"{d.name:12s} {length:g}s hit {ok}/{len(bases)}")
        report["hits"] = results

        # False hits on audio outside the library. An answer is checked against the raw
        # audio: a 0.5 s stretch of the clip that correlates >= 0.95 with the episode at
        # the place named means the same recording is in both (the corpus's own check
        # only looks for shared stretches of 3 s or more), and is reported apart.
        false_hits = 0
        shared_audio = 0
        n_out = 0
        orng = np.random.default_rng(args.seed + 7)
        names = list(out_audio)
        for i in range(args.outside):
            length = LENGTHS[i % 3]
            a = out_audio[names[int(orng.integers(len(names)))]]
            s = int(orng.integers(0, len(a) - int(length * SR_IN)))
            x = a[s : s + int(length * SR_IN)]
            y = to_8k(x) if i % 2 == 0 else ffmpeg_filter(
                x, None, codec=["-c:a", "libmp3lame", "-b:a", "32k"], fmt="mp3")
            res = identify_samples(y, index, match_params=mp)
            n_out += 1
            if res.status is Status.NO_MATCH or res.match is None:
                continue
            m = res.match
            ref = to_8k(cut(Path(m.episode.source_path), max(0.0, m.offset_s - 0.5),
                            length * 1.4 + 1.0))
            if identical_audio(to_8k(x), ref):
                shared_audio += 1
                log(f"outside clip {i} shares audio with {m.episode.episode_id} at "
                    f"{m.offset_s:.1f} s")
            else:
                false_hits += 1
                log(f"false hit: outside clip {i} -> {m.episode.episode_id} {m.offset_s:.1f} s")
        report["outside"] = {"clips": n_out, "false_hits": false_hits,
                             "identical_audio": shared_audio}
        log(report["outside"])

        # Shared material.
        amb = wrong = n_sh = silent = 0
        kinds: dict[str, list[int]] = {}
        for e in episodes:
            for a, b, kind, cue in shared[e["file"]]:
                for length in (3.0, 5.0):
                    if b - a < length + 0.5:
                        continue
                    start = float(rng.uniform(a + 0.1, b - length - 0.1))
                    y = to_8k(cut(corpus / "library" / e["file"], start, length))
                    if float(np.sqrt(np.mean(y**2))) < 10 ** (-50 / 20):
                        silent += 1  # the theme's silent stretches identify nothing
                        continue
                    res = identify_samples(y, index, match_params=mp)
                    n_sh += 1
                    is_amb = res.status is Status.AMBIGUOUS
                    amb += int(is_amb)
                    if res.status is Status.MATCH and res.match is not None:
                        wrong += int(res.match.episode.episode_id
                                     != index.episodes[by_name[e["file"]]].episode_id)
                    kinds.setdefault(cue or kind, []).append(int(is_amb))
        report["shared"] = {"clips": n_sh, "silent_skipped": silent,
                            "ambiguous": amb / max(1, n_sh),
                            "single_wrong_episode": wrong,
                            "ambiguous_by_kind": {k: sum(v) / len(v) for k, v in kinds.items()}}
        log(report["shared"])

        # Latency with decoding, from files.
        lat_file: list[float] = []
        for e, start in [place(5.0) for _ in range(40)]:
            clip = work / "clip.mp3"
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", f"{start:.3f}",
                            "-t", "5", "-i", str(corpus / "library" / e["file"]), "-vn",
                            "-c:a", "libmp3lame", "-b:a", "64k", str(clip)], check=True)
            t = time.perf_counter()
            identify_file(clip, index, match_params=mp)
            lat_file.append((time.perf_counter() - t) * 1000)
        report["latency_ms"] = {
            "match_p50": percentile(latency_match, 50), "match_p95": percentile(latency_match, 95),
            "file_p50": percentile(lat_file, 50), "file_p95": percentile(lat_file, 95),
        }
        log(report["latency_ms"])
        index.close()

        if args.scale > 1:
            log(f"scale x{args.scale} ...")
            big = work / "index-big"
            shutil.copytree(work / "index", big)
            (big / "LOCK").unlink(missing_ok=True)
            with Index.open(big, writable=True) as w:
                w.add(synthetic_copies(w, args.scale - 1))
                bstats = w.stats()
            bidx = Index.open(big)
            lat: list[float] = []
            hits = 0
            for e, start in [place(5.0) for _ in range(60)]:
                y = to_8k(cut(corpus / "library" / e["file"], start, 5.0))
                t = time.perf_counter()
                res = identify_samples(y, bidx, match_params=mp)
                lat.append((time.perf_counter() - t) * 1000)
                hits += int(res.match is not None and Path(res.match.episode.source_path).name
                            == e["file"] and abs(res.match.offset_s - start) <= 1)
            fh = 0
            for i in range(150):
                a = out_audio[names[i % len(names)]]
                s = int(orng.integers(0, len(a) - 5 * SR_IN))
                res = identify_samples(to_8k(a[s : s + 5 * SR_IN]), bidx, match_params=mp)
                fh += int(res.status is not Status.NO_MATCH)
            report["scale"] = {"factor": args.scale, "hours": bstats.hours,
                               "index_mb": bstats.index_bytes / 1e6,
                               "match_p50_ms": percentile(lat, 50),
                               "match_p95_ms": percentile(lat, 95),
                               "clean_5s_hits": hits / 60, "outside_false_hits": fh,
                               "outside_clips": 150}
            log(report["scale"])
            bidx.close()
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    (args.out / "report.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def markdown(r: dict[str, Any]) -> str:
    lines = [f"Measured {r['date']} on {r['machine']}.", ""]
    hits = r.get("hits", {})
    if hits:
        lines += ["| distortion | 3 s | 5 s | 10 s |", "|---|---:|---:|---:|"]
        for name, row in hits.items():
            cells = [f"{100 * row.get(k, float('nan')):.0f}%" for k in ("3s", "5s", "10s")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if "outside" in r:
        o = r["outside"]
        lines.append(f"- False hits: **{o['false_hits']} / {o['clips']}** clips of audio "
                     "outside the library (3/5/10 s, clean and MP3 32k); a further "
                     f"{o.get('identical_audio', 0)} answers named a place whose waveform "
                     "matches the clip's (correlation >= 0.95): the same recording is in "
                     "both.")
    if "shared" in r:
        s = r["shared"]
        kinds = ", ".join(f"{k} {100 * v:.0f}%" for k, v in s["ambiguous_by_kind"].items())
        lines.append(f"- Shared material: {100 * s['ambiguous']:.0f}% of {s['clips']} clips "
                     f"`ambiguous` ({kinds}); single wrong episode: {s['single_wrong_episode']}"
                     f"; {s.get('silent_skipped', 0)} clips below -50 dBFS skipped.")
    if "latency_ms" in r:
        lt = r["latency_ms"]
        lines.append(f"- Query latency, decoded 5 s clip, 1 core: p50 {lt['match_p50']:.1f} ms, "
                     f"p95 {lt['match_p95']:.1f} ms; from an MP3 file (decode included): "
                     f"p50 {lt['file_p50']:.1f} ms, p95 {lt['file_p95']:.1f} ms.")
    if "ingest" in r:
        i = r["ingest"]
        lines.append(f"- Ingest of {i['audio_h']:.2f} h: {i['ingest_s']:.1f} s "
                     f"({i['ingest_x_realtime']:.0f}x real time, "
                     f"{i['ingest_x_realtime_per_core']:.0f}x per core) vs ffmpeg decode alone "
                     f"{i['ffmpeg_decode_s']:.1f} s ({i['ffmpeg_x_realtime']:.0f}x): ratio "
                     f"**{i['ingest_over_ffmpeg']:.2f}**.")
        lines.append(f"- Index: {i['index_bytes'] / 1e6:.2f} MB, "
                     f"**{i['index_mb_per_hour']:.2f} MB per hour** "
                     f"({i['peaks']} peaks, {i['hashes']} hashes).")
    if "fingerprint" in r:
        lines.append(f"- Fingerprinting decoded audio: "
                     f"{r['fingerprint']['fingerprint_x_realtime_per_core']:.0f}x real time "
                     "per core.")
    if "scale" in r:
        s = r["scale"]
        lines.append(f"- At {s['factor']}x the library ({s['hours']:.0f} h, {s['index_mb']:.0f} "
                     f"MB, synthetic): match p50 {s['match_p50_ms']:.1f} ms, p95 "
                     f"{s['match_p95_ms']:.1f} ms; clean 5 s hits {100 * s['clean_5s_hits']:.0f}%; "
                     f"false hits {s['outside_false_hits']} / {s['outside_clips']}.")
    if "peak_rss_mb" in r:
        lines.append(f"- Peak RSS: {r['peak_rss_mb']:.0f} MB.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
