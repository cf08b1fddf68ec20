"""Benchmark on a real-recording corpus: accuracy per distortion, false hits on held-out
outside audio with a threshold calibrated apart, shared material, reliability, latency of
every kind of query, ingest speed and index size.

    .venv/bin/python -m bench.run ../shared/corpus --out bench/out [--clips 40]

The scale benchmark is a separate command (``bench/scale.py``), the mutation test
another (``bench/mutation.sh``). See bench/README.md.
"""

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
import zlib
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import engine
from bench.corpus import (
    LENGTHS,
    LIBRARY_LENGTHS,
    MAX_SPEED,
    SR,
    SR_IN,
    Audio,
    Corpus,
    Places,
    cut,
    load_corpus,
    split_outside,
    to_8k,
)
from bench.distortions import (
    OUTSIDE_VARIANTS,
    Distortion,
    Mix,
    Overlays,
    distortions,
    in_band_snr_db,
)
from bench.report import write_report
from bench.scoring import (
    OFFSET_TOL_S,
    Record,
    hits_table,
    latency_table,
    length_key,
    outside_table,
    reliability,
    same_recording,
    shared_table,
    waveform_correlation,
)
from citywok.analysis.decode import decode
from citywok.analysis.fingerprint import fingerprint_file
from citywok.index import Index
from citywok.params import MatchParams
from citywok.pipeline import drive, index_paths


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def seeded(*parts: float | str) -> np.random.Generator:
    """A generator that depends only on ``parts``: a cell's clips and distortions stay
    the same whichever other cells run."""
    return np.random.default_rng([zlib.crc32(str(p).encode()) for p in parts])


# -- ingest -----------------------------------------------------------------------------


def bench_ingest(files: list[Path], index_dir: Path) -> dict[str, Any]:
    """ffmpeg alone decoding every episode (one process at a time, one thread), then
    CityWok indexing the same files, in the same run."""
    t0, c0 = time.perf_counter(), cpu_s()
    for f in files:
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-i", str(f),
                        "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(SR), "-f", "f32le",
                        "-y", "/dev/null"], check=True)
    ffmpeg_wall, ffmpeg_cpu = time.perf_counter() - t0, cpu_s() - c0
    t1, c1 = time.perf_counter(), cpu_s()
    with Index.open(index_dir, writable=True) as idx:
        summary = drive(index_paths(idx, files))
    ingest_wall, ingest_cpu = time.perf_counter() - t1, cpu_s() - c1
    with Index.open(index_dir) as idx:  # sizes as a reader sees them, the writer closed
        stats = idx.stats()
    audio_s = summary.audio_s
    return {
        "audio_h": audio_s / 3600,
        "ffmpeg_decode_s": ffmpeg_wall,
        "ffmpeg_x_realtime": audio_s / ffmpeg_wall,
        "ffmpeg_x_realtime_per_core": audio_s / ffmpeg_cpu,
        "ingest_s": ingest_wall,
        "ingest_x_realtime": audio_s / ingest_wall,
        "ingest_x_realtime_per_core": audio_s / ingest_cpu,
        "ingest_over_ffmpeg": ingest_wall / ffmpeg_wall,
        "index_bytes": stats.index_bytes,
        "index_mb_per_hour": stats.index_bytes / 1e6 / (audio_s / 3600),
        "peaks": stats.peaks,
        "hashes": stats.hashes,
    }


def bench_fingerprint(files: list[Path], index: Index, work: Path) -> dict[str, Any]:
    """Fingerprinting alone: the ingest job on episodes already decoded to 8 kHz WAV
    (reading PCM is next to free), CPU time of this process only."""
    wavs = []
    for f in files:
        wav = work / f"{f.stem}.wav"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(f), "-vn", "-ac",
                        "1", "-ar", str(index.params.sample_rate_hz), str(wav)], check=True)
        wavs.append(wav)
    t0 = time.process_time()
    audio_s = sum(fingerprint_file(w, index.params).duration_s for w in wavs)
    cpu = time.process_time() - t0
    for w in wavs:
        w.unlink()
    return {"fingerprint_x_realtime_per_core": audio_s / cpu, "fingerprint_cpu_s": cpu,
            "audio_s": audio_s}


# -- the clips ---------------------------------------------------------------------------


class Bench:
    """One run: the corpus, the index, the overlays, and the records made so far."""

    def __init__(self, corpus: Corpus, index: Index, overlays: Overlays,
                 dists: list[Distortion], seed: int,
                 lengths: tuple[float, ...] = LIBRARY_LENGTHS, tail_share: float = 1.0,
                 ) -> None:
        self.corpus = corpus
        self.tail_share = tail_share
        self.lengths = lengths
        self.index = index
        self.overlays = overlays
        self.dists = {d.name: d for d in dists}
        self.seed = seed
        self.records: list[Record] = []
        self.raw_answers: list[engine.Answer] = []

    def ask(self, y: Audio, mp: MatchParams, **fields: Any) -> Record:
        a = engine.identify(y, self.index, mp)
        rec = Record(status=a.status.value, elapsed_ms=a.elapsed_ms, episode_file=a.episode_file,
                     offset_s=a.offset_s, score=a.score, candidate_files=a.candidate_files,
                     **fields)
        self.records.append(rec)
        return rec

    # Outside audio ---------------------------------------------------------------------

    def outside_clips(self, files: tuple[Path, ...], n: int, part: str
                      ) -> list[tuple[dict[str, Any], Audio, Audio]]:
        """``n`` clips of ``files`` (3/5/10 s in turn, each variant in turn), and ``n / 3``
        of every other length of the run (2 s), as (description, the clean 16 kHz cut,
        what the engine is given). The 3/5/10 s clips are drawn as they always were (one
        generator for the three, in turn), whichever lengths the run asks; each other
        length draws from its own generator."""
        audio = {f: decode(f, sample_rate_hz=SR_IN) for f in files}
        weights = np.array([len(a) for a in audio.values()], dtype=np.float64)
        out = []

        def clip(i: int, length: float, rng: np.random.Generator, variant: str) -> None:
            f = files[int(rng.choice(len(files), p=weights / weights.sum()))]
            a = audio[f]
            s = int(rng.integers(0, len(a) - int(length * SR_IN)))
            x = a[s : s + int(length * SR_IN)]
            y = self.dists[variant].apply(x, rng)
            if length in self.lengths:
                out.append(({"source": f.name, "start_s": s / SR_IN, "length_s": length,
                             "distortion": variant, "part": part}, x, y))

        rng = seeded(self.seed, "outside", part)
        for i in range(n):
            clip(i, LENGTHS[i % len(LENGTHS)], rng,
                 OUTSIDE_VARIANTS[(i // len(LENGTHS)) % len(OUTSIDE_VARIANTS)])
        for length in self.lengths:
            if length not in LENGTHS:
                rng = seeded(self.seed, "outside", part, length)
                for i in range(n // len(LENGTHS)):
                    clip(i, length, rng, OUTSIDE_VARIANTS[i % len(OUTSIDE_VARIANTS)])
        return out

    def raw_scores(self, clips: list[tuple[dict[str, Any], Audio, Audio]], mp: MatchParams
                   ) -> list[float | None]:
        self.raw_answers = [engine.raw_best(y, self.index, mp) for _, _, y in clips]
        return [a.score for a in self.raw_answers]

    def best_chance(self, clips: list[tuple[dict[str, Any], Audio, Audio]],
                    raws: list[float | None]) -> tuple[dict[float, float],
                                                        list[dict[str, Any]]]:
        """Per length, the highest raw score of a clip whose best place does not hold the
        same recording; and the clips set aside because theirs does."""
        best: dict[float, float] = {}
        aside: list[dict[str, Any]] = []
        for length in self.lengths:
            ranked = sorted((i for i, (m, _, _) in enumerate(clips)
                             if m["length_s"] == length and raws[i] is not None),
                            key=lambda i: -(raws[i] or 0.0))
            for i in ranked:
                meta, x, _ = clips[i]
                a = self.raw_answers[i]
                assert a.episode_file is not None and a.offset_s is not None
                ref = to_8k(cut(self.corpus.library / a.episode_file,
                                max(0.0, a.offset_s - 0.5), length * 1.4 + 1.0))
                same, corr = same_recording(to_8k(x), ref)
                if not same:
                    best[length] = float(raws[i] or 0.0)
                    break
                aside.append({**{k: meta[k] for k in ("source", "start_s", "length_s",
                                                      "distortion")},
                              "score": raws[i], "named": a.episode_file, "at_s": a.offset_s,
                              "correlation": round(corr, 3)})
        return best, aside

    def top_raw(self, clips: list[tuple[dict[str, Any], Audio, Audio]], per_length: int
                ) -> list[dict[str, Any]]:
        """The clips with the highest raw scores (of the last :meth:`raw_scores`), each
        checked for identical audio at the place it would name."""
        out = []
        for length in self.lengths:
            ranked = sorted((i for i, (m, _, _) in enumerate(clips)
                             if m["length_s"] == length and self.raw_answers[i].score is not None),
                            key=lambda i: -(self.raw_answers[i].score or 0.0))
            for i in ranked[:per_length]:
                meta, x, _ = clips[i]
                a = self.raw_answers[i]
                assert a.episode_file is not None and a.offset_s is not None
                ref = to_8k(cut(self.corpus.library / a.episode_file, max(0.0, a.offset_s - 0.5),
                                length * 1.4 + 1.0))
                out.append({**{k: meta[k] for k in ("source", "start_s", "length_s",
                                                     "distortion")},
                            "score": a.score, "named": a.episode_file, "at_s": a.offset_s,
                            "correlation": round(waveform_correlation(to_8k(x), ref), 3),
                            "same_recording": same_recording(to_8k(x), ref)[0]})
        return out

    def outside(self, clips: list[tuple[dict[str, Any], Audio, Audio]],
                raws: list[float | None], mp: MatchParams) -> None:
        """Identify each clip; an answer is checked against the raw audio of the place
        it names (a waveform match means the same recording is in both), and counted
        either way."""
        for (meta, x, y), raw in zip(clips, raws, strict=True):
            rec = self.ask(y, mp, kind="outside", group="outside", raw_score=raw, **meta)
            if rec.answered and rec.episode_file is not None and rec.offset_s is not None:
                ref = to_8k(cut(self.corpus.library / rec.episode_file,
                                max(0.0, rec.offset_s - 0.5), meta["length_s"] * 1.4 + 1.0))
                same, corr = same_recording(to_8k(x), ref)
                self.records[-1] = replace(rec, correlation=round(corr, 3),
                                            identical_audio=same)
                log(f"outside {meta['part']} {meta['source']} {meta['start_s']:.1f}s "
                    f"{meta['length_s']:g}s {meta['distortion']} -> {rec.episode_file} "
                    f"{rec.offset_s:.1f}s score {rec.score} corr {corr:.2f}")

    # Library clips ----------------------------------------------------------------------

    def library(self, names: list[str], mp: MatchParams, clips: dict[float, int]) -> None:
        for length in self.lengths:
            places = Places(self.corpus, seeded(self.seed, "places", length),
                            tail_share=self.tail_share)
            bases = [(e, s, cut(self.corpus.library / e.file, s, length * MAX_SPEED))
                     for e, s in (places(length) for _ in range(clips[length]))]
            for name in names:
                d = self.dists[name]
                rng = seeded(self.seed, "distort", length, name)
                hits = 0
                for e, start, base in bases:
                    # Rows that hear the episode before the clip (a room) get it cut apart:
                    # the clip itself stays the one every row is given.
                    before = (cut(self.corpus.library / e.file, max(0.0, start - d.lead_in_s),
                                  min(start, d.lead_in_s)) if d.lead_in_s else None)
                    y = d(base[: int(length * d.speed * SR_IN)], rng, before)
                    rec = self.ask(y, mp, kind="library", distortion=name, group=d.group,
                                   length_s=length, source=e.file, start_s=start,
                                   right=False)
                    right = (rec.episode_file == e.file and rec.offset_s is not None
                             and abs(rec.offset_s - start) <= OFFSET_TOL_S)
                    # The same clip with the threshold out of the way: how reliable each
                    # score is, below the threshold too (not timed).
                    raw = engine.raw_best(y, self.index, mp)
                    raw_right = (raw.episode_file == e.file and raw.offset_s is not None
                                 and abs(raw.offset_s - start) <= OFFSET_TOL_S)
                    self.records[-1] = replace(rec, right=right, raw_score=raw.score,
                                               raw_right=raw_right)
                    if rec.status == "match" and not right:
                        # A wrong answer: does the place it names hold the same recording
                        # (a repeat the manifest does not declare)? Counted wrong either way.
                        assert rec.episode_file is not None and rec.offset_s is not None
                        clean = base[: int(length * d.speed * SR_IN)]
                        ref = cut(self.corpus.library / rec.episode_file,
                                  max(0.0, rec.offset_s - 0.5), length * d.speed + 1.5)
                        same, corr = same_recording(to_8k(clean), to_8k(ref))
                        self.records[-1] = replace(self.records[-1], identical_audio=same,
                                                   correlation=round(corr, 3))
                        log(f"wrong answer: {name} {length:g}s {e.file} {start:.1f}s -> "
                            f"{rec.episode_file} {rec.offset_s:.1f}s score {rec.score} "
                            f"same recording {same} ({corr:.2f})")
                    hits += int(rec.status == "match" and right)
                log(f"{name:30s} {length:g}s hit {hits}/{len(bases)}")

    # Shared material ---------------------------------------------------------------------

    def shared(self, mp: MatchParams, per_copy: int) -> dict[str, int]:
        """Clips wholly inside each copy of the intro, outro and cues (3 and 5 s), and
        clips half inside, half in the episode's own audio around them."""
        rng = seeded(self.seed, "shared")
        silent = 0
        quiet = 10 ** (-50 / 20)
        for e in self.corpus.episodes:
            path = self.corpus.library / e.file
            for span in e.shared:
                holders = self.corpus.holders(span.name)
                for length in (3.0, 5.0):
                    for _ in range(per_copy):
                        if span.end_s - span.start_s < length + 0.5:
                            continue
                        start = float(rng.uniform(span.start_s + 0.1, span.end_s - length - 0.1))
                        y = to_8k(cut(path, start, length))
                        if float(np.sqrt(np.mean(y**2))) < quiet:
                            silent += 1  # the theme's silent stretches identify nothing
                            continue
                        rec = self.ask(y, mp, kind="shared", distortion="clean", group="shared",
                                       length_s=length, source=e.file, start_s=start,
                                       shared=span.name)
                        self.records[-1] = replace(
                            rec, right=rec.episode_file in holders,
                            all_listed=holders <= set(rec.candidate_files))
                    # Half shared, half the episode's own: must name this episode.
                    own_after = span.name != "outro"
                    start = span.end_s - length / 2 if own_after else span.start_s - length / 2
                    own = (span.end_s, span.end_s + length / 2) if own_after else \
                        (start, span.start_s)
                    if start < 0 or own[1] > e.duration_s or any(
                            o is not span and o.start_s < own[1] and o.end_s > own[0]
                            for o in e.shared):
                        continue
                    y = to_8k(cut(path, start, length))
                    own_part = y[int((own[0] - start) * SR) : int((own[1] - start) * SR)]
                    if len(own_part) == 0 or float(np.sqrt(np.mean(own_part**2))) < quiet:
                        silent += 1
                        continue
                    rec = self.ask(y, mp, kind="straddle", distortion="clean", group="straddle",
                                   length_s=length, source=e.file, start_s=start,
                                   shared=span.name)
                    self.records[-1] = replace(
                        rec, right=rec.episode_file == e.file and rec.offset_s is not None
                        and abs(rec.offset_s - start) <= OFFSET_TOL_S)
        return {"silent_skipped": silent}

    # File to answer -----------------------------------------------------------------------

    def files(self, mp: MatchParams, n: int, outside: tuple[Path, ...], work: Path) -> None:
        """5 s MP3 files (64 kb/s) cut from the library and from held-out outside audio,
        identified from the file: decoding included."""
        places = Places(self.corpus, seeded(self.seed, "files"))
        rng = seeded(self.seed, "files-outside")
        clip = work / "clip.mp3"
        jobs: list[tuple[str, Path, float]] = []
        for _ in range(n):
            e, s = places(5.0)
            jobs.append(("library", self.corpus.library / e.file, s))
        for _ in range(n):
            f = outside[int(rng.integers(len(outside)))]
            dur = len(decode(f, sample_rate_hz=SR)) / SR
            jobs.append(("outside", f, float(rng.uniform(0, dur - 5.5))))
        for part, src, start in jobs:
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", f"{start:.3f}",
                            "-t", "5", "-i", str(src), "-vn", "-c:a", "libmp3lame", "-b:a",
                            "64k", str(clip)], check=True)
            a = engine.identify_path(clip, self.index, mp)
            self.records.append(Record(
                kind="file", distortion="mp3_64k_file", group="file", length_s=5.0,
                source=src.name, start_s=start, status=a.status.value,
                elapsed_ms=a.elapsed_ms, episode_file=a.episode_file, offset_s=a.offset_s,
                score=a.score, part=part,
                right=part == "library" and a.episode_file == src.name
                and a.offset_s is not None and abs(a.offset_s - start) <= OFFSET_TOL_S))


def snr_audit(corpus: Corpus, dists: list[Distortion], overlays: Overlays,
              band_hz: tuple[float, float], seed: int, n: int = 20) -> dict[str, Any]:
    """The SNR each mixing row really gives inside the analysed band, on ``n`` 5 s clips;
    for layered rows (rooms, stacked edits), each addition's, keyed ``row: what``."""
    places = Places(corpus, seeded(seed, "snr"))
    at = [places(5.0) for _ in range(n)]
    bases = [cut(corpus.library / e.file, s, 5.0) for e, s in at]
    longer = ([cut(corpus.library / e.file, s, 5.0 * MAX_SPEED) for e, s in at]
              if any(d.layers is not None for d in dists) else [])
    out: dict[str, Any] = {}
    for d in dists:
        if d.layers is not None:
            rng = seeded(seed, "snr", d.name)
            got: dict[tuple[str, float], list[float]] = {}
            band = "band"
            for x in longer:
                lay = d.layers(x[: int(5.0 * d.speed * SR_IN)], rng)
                band = lay.band
                for what, asked, db in lay.snr_db(band_hz):
                    got.setdefault((what, asked), []).append(db)
            for (what, asked), vals in got.items():
                out[f"{d.name}: {what}"] = {
                    "kind": what, "nominal_db": asked, "band": band,
                    "measured_over": (Mix(what, asked, band).describe(band_hz)
                                      if band != "band" else
                                      f"{band_hz[0]:g}-{band_hz[1]:g} Hz at 8 kHz, set on "
                                      "the clip as it arrives (sped up, or at the phone)"),
                    "in_band_db_mean": float(np.mean(vals)),
                    "in_band_db_min": float(np.min(vals)),
                    "in_band_db_max": float(np.max(vals))}
            continue
        if d.mix is None:
            continue
        rng = seeded(seed, "snr", d.name)
        vals = [in_band_snr_db(x, d.mix, rng, overlays, band_hz) for x in bases]
        out[d.name] = {"kind": d.mix.kind, "nominal_db": d.mix.snr_db, "band": d.mix.band,
                       "measured_over": d.mix.describe(band_hz),
                       "in_band_db_mean": float(np.mean(vals)),
                       "in_band_db_min": float(np.min(vals)),
                       "in_band_db_max": float(np.max(vals))}
    return out


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores, {mem:.0f} GiB, {platform.processor() or platform.machine()}"
            f", Python {platform.python_version()}")


def engine_commit() -> str:
    try:
        return subprocess.run(["git", "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--out", type=Path, default=Path("bench/out"))
    ap.add_argument("--clips", type=int, default=40, help="clips a cell at 3 and 5 s")
    ap.add_argument("--clips-10s", type=int, default=20, help="clips a cell at 10 s")
    ap.add_argument("--lengths", default=",".join(f"{x:g}" for x in LIBRARY_LENGTHS),
                    help="clip lengths in seconds (library and outside clips); 3,5,10 "
                         "gives the runs before the 2 s column, clip for clip")
    ap.add_argument("--calibration", type=int, default=600,
                    help="clips of the calibration part of the outside audio")
    ap.add_argument("--held-out", type=int, default=1000,
                    help="clips of the held-out part of the outside audio")
    ap.add_argument("--margin", type=float, default=0.10,
                    help="threshold = (1 + margin) x the best calibration score, per length")
    ap.add_argument("--threshold", choices=("calibrated", "engine"), default="calibrated",
                    help="score every other clip with the calibrated threshold or the "
                         "engine's own")
    ap.add_argument("--shared-per-copy", type=int, default=2,
                    help="clips per copy of shared material and per length")
    ap.add_argument("--file-clips", type=int, default=40,
                    help="5 s MP3 files identified from disk, each of library and outside")
    ap.add_argument("--only", default="", help="comma-separated distortion names")
    ap.add_argument("--skip", default="",
                    help="comma-separated sections to leave out: ingest,library,shared,files")
    ap.add_argument("--index", type=Path, help="use (or build once) this index; ingest "
                    "is then not measured when it already exists")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--from-tail", type=float, default=1.0, metavar="SHARE",
                    help="cut library clips only from the last SHARE of each episode (0.2: "
                    "the part the learned front end never trained on)")
    ap.add_argument("--engine-v2", action="store_true",
                    help="match as engine v2 did (the peaks alone: no embeddings, only "
                    "places past the threshold refined), on the same index: the before of "
                    "a before/after")
    args = ap.parse_args()
    started = time.perf_counter()
    skip = set(filter(None, args.skip.split(",")))
    corpus = load_corpus(args.corpus)
    lib_files = sorted(corpus.library.iterdir())
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="citywok-bench-"))
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "machine": machine(),
                              "engine": engine_commit(), "seed": args.seed}
    try:
        index_dir = args.index or work / "index"
        if (index_dir / "catalog.sqlite").is_file():
            log(f"using the index at {index_dir} (ingest not measured)")
        elif "ingest" in skip:
            with Index.open(index_dir, writable=True) as idx:
                drive(index_paths(idx, lib_files))
        else:
            log("ingest ...")
            report["ingest"] = bench_ingest(lib_files, index_dir)
            log(json.dumps(report["ingest"]))
        index = Index.open(index_dir)
        if "ingest" not in skip:
            report["fingerprint"] = bench_fingerprint(lib_files[:3], index, work)
            log(json.dumps(report["fingerprint"]))

        band_hz = (index.params.fmin_hz, index.params.fmax_hz)
        out_audio = {f.name: decode(f, sample_rate_hz=SR_IN) for f in corpus.outside}
        overlays = Overlays([a for n, a in out_audio.items() if n.startswith("music")],
                            [a for n, a in out_audio.items() if n.startswith("speech")])
        all_dists = distortions(overlays, band_hz)
        wanted = set(args.only.split(",")) if args.only else {d.name for d in all_dists}
        unknown = wanted - {d.name for d in all_dists}
        if unknown:
            raise SystemExit(f"unknown distortions: {', '.join(sorted(unknown))}")
        names = [d.name for d in all_dists if d.name in wanted]
        lengths = tuple(sorted(float(x) for x in args.lengths.split(",")))
        bench = Bench(corpus, index, overlays, all_dists, args.seed, lengths,
                      tail_share=args.from_tail)
        report["from_tail"] = args.from_tail

        # Calibration: the outside audio is split by file; the threshold is derived from
        # the calibration part alone, then held-out clips are scored with it.
        cal_files, held_files = split_outside(corpus.outside, seed=args.seed)
        engine_mp = (MatchParams(use_embeddings=False, refine_from_share=1.0)
                     if args.engine_v2 else MatchParams())
        report["engine_v2"] = bool(args.engine_v2)
        with engine.one_core() as core:
            log(f"timing on CPU {core}; calibration on {[f.name for f in cal_files]}")
            cal = bench.outside_clips(cal_files, args.calibration, "calibration")
            cal_raw = bench.raw_scores(cal, engine_mp)
            # The best score of chance, per length: clips whose best place holds the same
            # recording (a prompt that is in the library too) are not chance; they are
            # set aside and listed.
            best, shared_recordings = bench.best_chance(cal, cal_raw)
            needed = {length: (best[length] + args.margin * abs(best[length])
                               if length in best else 0.0) for length in lengths}
            cal_mp = engine.calibrated(engine_mp, needed)
            top = bench.top_raw(cal, 3)
            mp = cal_mp if args.threshold == "calibrated" else engine_mp
            report["calibration"] = {
                "split_seed": args.seed,
                "calibration_files": [f.name for f in cal_files],
                "held_out_files": [f.name for f in held_files],
                "margin": args.margin,
                "threshold_field": engine.THRESHOLD_FIELD,
                "best_calibration_score": {length_key(k): v for k, v in best.items()},
                "set_aside_same_recording": shared_recordings,
                "top_calibration_clips": top,
                "needed": {length_key(k): v for k, v in needed.items()},
                "calibrated_value": engine.threshold_value(cal_mp),
                "engine_value": engine.threshold_value(engine_mp),
                "used": args.threshold,
                "used_value": engine.threshold_value(mp),
                # One threshold for every length; listed per length, as reports were.
                "thresholds": {length_key(k): engine.threshold_value(mp) for k in lengths},
                "engine_thresholds": {length_key(k): engine.threshold_value(engine_mp)
                                      for k in lengths},
            }
            log(json.dumps(report["calibration"]))
            bench.outside(cal, cal_raw, mp)
            held = bench.outside_clips(held_files, args.held_out, "held_out")
            bench.outside(held, bench.raw_scores(held, engine_mp), mp)
            del cal, held

            if "library" not in skip:
                bench.library(names, mp, {length: args.clips_10s if length >= 10
                                          else args.clips for length in lengths})
            if "shared" not in skip:
                report["shared_skipped"] = bench.shared(mp, args.shared_per_copy)
        if "files" not in skip:
            bench.files(mp, args.file_clips, held_files, work)
        report["snr"] = snr_audit(corpus, [d for d in all_dists if d.name in wanted],
                                  overlays, band_hz, args.seed)
        index.close()

        recs = bench.records
        report["hits"] = hits_table(recs, [d.name for d in all_dists])
        report["wrong_answers"] = [
            {k: getattr(r, k) for k in ("distortion", "length_s", "source", "start_s",
                                        "episode_file", "offset_s", "score", "correlation",
                                        "identical_audio")}
            for r in recs if r.kind == "library" and r.outcome.startswith("wrong")]
        report["distortions"] = {d.name: {"group": d.group, "speed": d.speed,
                                          "mix": asdict(d.mix) if d.mix else None}
                                 for d in all_dists if d.name in wanted}
        report["outside"] = outside_table(recs, report["calibration"]["thresholds"])
        for part in ("calibration", "held_out"):
            rs = [r for r in recs if r.kind == "outside" and r.part == part]
            report["outside"][part]["answered_at_engine_threshold"] = sum(
                r.raw_score is not None and r.raw_score >= engine.threshold_value(engine_mp)
                for r in rs)
        report["shared"] = shared_table(recs)
        report["reliability"] = reliability(recs)
        report["latency"] = latency_table(recs)
        report["latency"]["decoded_clips_pinned_to_one_core"] = True
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report["wall_s"] = time.perf_counter() - started
        report["setup"] = {"clips": args.clips, "clips_10s": args.clips_10s,
                           "lengths": list(lengths),
                           "calibration_clips": args.calibration,
                           "held_out_clips": args.held_out,
                           "shared_per_copy": args.shared_per_copy,
                           "file_clips": args.file_clips, "only": args.only,
                           "skip": sorted(skip), "band_hz": band_hz}
        with (args.out / "records.jsonl").open("w") as fh:
            for r in recs:
                fh.write(json.dumps(asdict(r)) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(write_report(report, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
