"""Timeline benchmark: compilations built from the corpus, scored against how they were
built; and live following's re-acquisition after seeks and changes of episode.

    .venv/bin/python -m bench.timeline ../shared/corpus --out bench/out-timeline \\
        [--cases 3] [--live 10] [--index DIR]

Each compilation has 20-40 segments of 3-30 s from random episodes and places; some are
sped up 1.1-1.3x (resampled: pitch follows), pitch-shifted (+-1-3 semitones) or have
music or a voice from ``outside/`` on top (3 dB below the episode); they are joined by
hard cuts or crossfades (0.5-1.5 s), with stretches of outside audio (3-15 s) between
some of them. One more input is reaction-style: 10 minutes of one episode with a voice
talking over all of it at 0 dB. Inputs are encoded as AAC 128 kb/s stereo at 44.1 kHz
(as a downloaded video's audio would be) and timed through ``timeline_file`` (decoding
included) on one core: CPU time of this process and of ffmpeg.

Scores: the share of the input's duration labelled correctly (sampled every 0.1 s; a
stretch of an episode needs the right episode and its position within 1 s, or, inside
material several episodes share, any episode that holds it; outside audio needs
``unknown``; crossfades are not scored), segments found (half of a segment labelled
correctly), median boundary error (each true boundary against the nearest boundary
found), outside stretches labelled as an episode (a segment found that lies mostly in
outside audio), speed in x real time, and for live following the seconds of audio after
a seek or a change of episode until the right episode and position (within 1 s) are
reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from bench.distortions import Distortion, Overlays, issue_15_rows
from citywok.index import Index
from citywok.long.live import Found, LiveTracker
from citywok.long.timeline import Stretch, StretchStatus, Timeline, timeline_file
from citywok.pipeline import drive, index_paths

Audio = npt.NDArray[np.float32]
SR_IN = 16000
SR = 8000
STEP_S = 0.1
POSITION_TOL_S = 1.0


def cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def cut(path: Path, start_s: float, length_s: float) -> Audio:
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{start_s:.3f}", "-t", f"{length_s:.3f}",
         "-i", str(path), "-vn", "-ac", "1", "-ar", str(SR_IN), "-f", "f32le", "pipe:1"],
        capture_output=True, check=True)
    return np.frombuffer(out.stdout, np.float32).copy()


def through(x: Audio, filt: str) -> Audio:
    """``x`` (16 kHz) through an ffmpeg audio filter, still 16 kHz."""
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(SR_IN), "-ac", "1",
         "-i", "pipe:0", "-af", filt, "-ar", str(SR_IN), "-f", "f32le", "pipe:1"],
        input=x.tobytes(), capture_output=True, check=True)
    return np.frombuffer(out.stdout, np.float32).copy()


def mix(x: Audio, other: Audio, snr_db: float) -> Audio:
    px = float(np.mean(x**2)) + 1e-12
    po = float(np.mean(other**2)) + 1e-12
    return np.asarray(x + other * np.sqrt(px / po / 10 ** (snr_db / 10)), dtype=np.float32)


def encode(x: Audio, path: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(SR_IN), "-ac", "1",
         "-i", "pipe:0", "-ar", "44100", "-ac", "2", "-c:a", "aac", "-b:a", "128k", str(path)],
        input=np.clip(x, -1, 1).astype(np.float32).tobytes(), capture_output=True, check=True)
    return path


@dataclass
class Piece:
    """One stretch of a built input and where it came from."""

    kind: str  # "episode" or "outside"
    source: str  # episode file name, or outside file name
    effect: str
    #: For an episode: its position at the piece's first sample and the playback speed.
    ep_start_s: float = 0.0
    speed: float = 1.0
    start_s: float = 0.0  # in the input (the middle of a crossfade in)
    end_s: float = 0.0


@dataclass
class Built:
    name: str
    path: Path
    duration_s: float
    pieces: list[Piece]
    #: Crossfades: (start, end) in input seconds, not scored.
    fades: list[tuple[float, float]]


class Corpus:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = json.loads((root / "manifest.json").read_text())
        self.episodes = self.manifest["episodes"]
        outside = sorted((root / "outside").iterdir())
        self.outside = {f.name: cut(f, 0.0, 100000.0) for f in outside}
        self.music = [n for n in self.outside if n.startswith("music")]
        self.speech = [n for n in self.outside if n.startswith("speech")]
        # Shared material: per file, (start, end, id) with id the same in every copy.
        self.shared: dict[str, list[tuple[float, float, str]]] = {
            e["file"]: [(s["start_s"], s["end_s"], s.get("cue_id") or s["kind"])
                        for s in e["segments"] if s["kind"] != "scene"]
            for e in self.episodes}

    def equivalents(self, file: str, pos_s: float) -> list[tuple[str, float]]:
        """Every (episode file, position) that holds the same audio as ``file`` at
        ``pos_s`` (itself included)."""
        out = [(file, pos_s)]
        for a, b, sid in self.shared[file]:
            if a <= pos_s < b:
                for other, items in self.shared.items():
                    for a2, _, sid2 in items:
                        if sid2 == sid and other != file:
                            out.append((other, a2 + pos_s - a))
        return out

    def in_shared(self, file: str, pos_s: float) -> bool:
        return len(self.equivalents(file, pos_s)) > 1

    def outside_clip(self, rng: np.random.Generator, names: list[str], length_s: float,
                     n: int | None = None) -> Audio:
        src = self.outside[names[int(rng.integers(len(names)))]]
        n = int(length_s * SR_IN) if n is None else n
        if len(src) <= n:
            return np.resize(src, n).astype(np.float32)
        s = int(rng.integers(0, len(src) - n))
        return src[s : s + n]


def build_compilation(corpus: Corpus, rng: np.random.Generator, work: Path,
                      name: str) -> Built:
    n_seg = int(rng.integers(20, 41))
    parts: list[tuple[Piece, Audio]] = []
    # Crossfades are drawn first: a segment's length is between the middles of its
    # fades, so half of each fade is cut on top of it.
    fades = [float(rng.uniform(0.5, 1.5)) if i and rng.random() < 0.4 else 0.0
             for i in range(2 * n_seg + 1)]
    for _ in range(n_seg):
        if parts and rng.random() < 0.3:
            k = len(parts)
            length = float(rng.uniform(3, 15)) + (fades[k] + fades[k + 1]) / 2
            clip = corpus.outside_clip(rng, corpus.music + corpus.speech, length)
            parts.append((Piece("outside", "outside", "outside"), clip))
        k = len(parts)
        length = float(rng.uniform(3, 30)) + (fades[k] + fades[k + 1]) / 2
        e = corpus.episodes[int(rng.integers(len(corpus.episodes)))]
        r = rng.random()
        speed, effect = 1.0, "clean"
        if r < 0.15:
            speed = float(rng.uniform(1.1, 1.3))
            effect = f"speed {speed:.2f}"
        elif r < 0.25:
            effect = f"pitch {float(rng.choice([-3, -2, -1, 1, 2, 3])):+g}"
        elif r < 0.35:
            effect = "music 3 dB"
        elif r < 0.45:
            effect = "voice 3 dB"
        span = length * speed
        start = float(rng.uniform(0.0, e["duration_s"] - span - 0.1))
        x = cut(corpus.root / "library" / e["file"], start, span)
        if effect.startswith("speed"):
            x = through(x, f"asetrate={round(SR_IN * speed)},aresample={SR_IN}")
        elif effect.startswith("pitch"):
            st = float(effect.split()[1])
            x = through(x, f"rubberband=pitch={2 ** (st / 12):.6f}")
        elif effect.startswith("music"):
            x = mix(x, corpus.outside_clip(rng, corpus.music, 0, len(x)), 3.0)
        elif effect.startswith("voice"):
            x = mix(x, corpus.outside_clip(rng, corpus.speech, 0, len(x)), 3.0)
        parts.append((Piece("episode", e["file"], effect, ep_start_s=start, speed=speed), x))
    return assemble(parts, fades, work, name)


def assemble(parts: list[tuple[Piece, Audio]], fades_s: list[float], work: Path,
             name: str) -> Built:
    out = np.zeros(0, np.float32)
    fades: list[tuple[float, float]] = []
    pieces: list[Piece] = []
    for i, (piece, x) in enumerate(parts):
        x = x / (np.sqrt(np.mean(x**2)) + 1e-9) * 0.07  # level every piece alike
        nf = min(int(fades_s[i] * SR_IN), len(x) // 3, len(out) // 3)
        at = len(out) - nf
        if nf:
            ramp = np.linspace(0, 1, nf, dtype=np.float32)
            out[at:] = out[at:] * (1 - ramp) + x[:nf] * ramp
            out = np.concatenate([out, x[nf:]])
            fades.append((at / SR_IN, (at + nf) / SR_IN))
            boundary = (at + nf / 2) / SR_IN
            skip = nf / 2 / SR_IN  # the piece's first half fade lies before its start
        else:
            out = np.concatenate([out, x])
            boundary = at / SR_IN
            skip = 0.0
        if pieces:
            pieces[-1].end_s = boundary
        piece.start_s = boundary
        piece.ep_start_s += skip * piece.speed
        pieces.append(piece)
    pieces[-1].end_s = len(out) / SR_IN
    path = encode(out, work / f"{name}.m4a")
    return Built(name=name, path=path, duration_s=len(out) / SR_IN, pieces=pieces, fades=fades)


def build_reaction(corpus: Corpus, rng: np.random.Generator, work: Path,
                   minutes: float = 10.0) -> Built:
    e = corpus.episodes[int(rng.integers(len(corpus.episodes)))]
    length = minutes * 60.0
    start = float(rng.uniform(0.0, e["duration_s"] - length - 1))
    x = cut(corpus.root / "library" / e["file"], start, length)
    voice = np.concatenate([corpus.outside[n] for n in corpus.speech])
    voice = np.resize(voice, len(x)).astype(np.float32)
    y = mix(x, voice, 0.0)
    piece = Piece("episode", e["file"], "voice 0 dB, all of it", ep_start_s=start)
    return assemble([(piece, y)], [0.0], work, "reaction")


# -- scoring ----------------------------------------------------------------------------


def score(built: Built, tl: Timeline, corpus: Corpus) -> dict[str, Any]:
    segs = list(tl.stretches)
    starts = np.array([s.start_s for s in segs])

    def segment_at(t: float) -> Stretch:
        return segs[max(0, int(np.searchsorted(starts, t, side="right")) - 1)]

    def in_fade(t: float) -> bool:
        return any(a <= t < b for a, b in built.fades)

    def correct(p: Piece, t: float) -> bool:
        seg = segment_at(t)
        if p.kind == "outside":
            return seg.status is StretchStatus.UNKNOWN
        if seg.status is StretchStatus.UNKNOWN:
            return False
        pos = p.ep_start_s + (t - p.start_s) * p.speed
        truth = corpus.equivalents(p.source, pos)
        if seg.status is StretchStatus.AMBIGUOUS and len(truth) == 1:
            return False
        for m in seg.matches:
            c = m.candidate
            got = c.offset_s + (t - seg.start_s) * c.speed
            name = Path(c.episode.source_path).name
            if any(name == f and abs(got - q) <= POSITION_TOL_S for f, q in truth):
                return True
        return False

    ok_s = total_s = 0.0
    found = n_ep = 0
    outside_seconds_labelled = 0.0
    by_effect: dict[str, list[int]] = {}
    for p in built.pieces:
        ts = np.arange(p.start_s + STEP_S / 2, p.end_s, STEP_S)
        scored = [t for t in ts if not in_fade(t)]
        good = sum(correct(p, t) for t in scored)
        ok_s += good * STEP_S
        total_s += len(scored) * STEP_S
        if p.kind == "episode":
            n_ep += 1
            hit = bool(scored) and good >= 0.5 * len(scored)
            found += int(hit)
            by_effect.setdefault(p.effect.split()[0], []).append(int(hit))
        else:
            outside_seconds_labelled += STEP_S * sum(
                segment_at(t).status is not StretchStatus.UNKNOWN for t in scored)
    # A segment found that lies mostly in outside audio names an episode for it.
    false_segments = 0
    for s in segs:
        if s.status is StretchStatus.UNKNOWN:
            continue
        inside = sum(max(0.0, min(s.end_s, p.end_s) - max(s.start_s, p.start_s))
                     for p in built.pieces if p.kind == "outside")
        false_segments += int(inside > 0.5 * s.duration_s)
    # Boundaries: every true boundary between pieces against the nearest one found.
    found_bounds = np.array([s.start_s for s in segs[1:]])
    errors = []
    for a, b in zip(built.pieces, built.pieces[1:], strict=False):
        if a.kind == "outside" and b.kind == "outside":
            continue
        errors.append(float(np.min(np.abs(found_bounds - b.start_s))) if len(found_bounds)
                      else float("inf"))
    return {
        "input": built.name, "duration_s": built.duration_s, "pieces": len(built.pieces),
        "episode_segments": n_ep, "segments_found": found,
        "labelled_ok_s": ok_s, "scored_s": total_s,
        "boundary_errors_s": errors,
        "outside_seconds_labelled": outside_seconds_labelled,
        "false_segments": false_segments,
        "found_by_effect": by_effect,
        "segments_out": len(segs),
    }


# -- live -------------------------------------------------------------------------------


LivePlan = list[tuple[str, dict[str, Any], float, float]]


def live_plan(corpus: Corpus, rng: np.random.Generator) -> LivePlan:
    """An episode, a seek within it, a change to another: (change, episode, from, s)."""
    e1, e2 = rng.choice(len(corpus.episodes), size=2, replace=False)
    a, b = corpus.episodes[int(e1)], corpus.episodes[int(e2)]
    p1 = float(rng.uniform(60, a["duration_s"] / 2 - 30))
    p2 = float(rng.uniform(a["duration_s"] / 2 + 30, a["duration_s"] - 40))
    p3 = float(rng.uniform(30, b["duration_s"] - 40))
    return [("start", a, p1, 15.0), ("seek", a, p2, 15.0), ("episode", b, p3, 15.0)]


def live_case(corpus: Corpus, index: Index, plan: LivePlan, room: Distortion | None = None,
              room_rng: np.random.Generator | None = None) -> list[dict[str, Any]]:
    """Play the plan's three stretches one after another, fed in 0.25 s chunks (through
    ``room`` as one recording, where given): seconds until right again after each."""
    clips = [cut(corpus.root / "library" / ep["file"], pos, length)
             for _, ep, pos, length in plan]
    bounds = np.cumsum([0.0] + [len(c) / SR_IN for c in clips])
    if room is None:
        audio = np.concatenate([np.asarray(resample_poly(x, 1, 2), dtype=np.float32)
                                for x in clips])
    else:
        audio = room(np.concatenate(clips).astype(np.float32),
                     room_rng or np.random.default_rng(0))
    tracker = LiveTracker(index)
    step = int(0.25 * SR)
    by_name = {Path(ep.source_path).name: ep.episode_id for ep in index.episodes.values()}
    results: list[dict[str, Any]] = [
        {"change": what, "reacquired_s": None, "wrong": 0} for what, *_ in plan]
    for i in range(0, len(audio), step):
        for ev in tracker.feed(audio[i : i + step]):
            if not isinstance(ev, Found):
                continue
            k = int(np.searchsorted(bounds, ev.at_s, side="right")) - 1
            k = min(k, len(plan) - 1)
            _, ep, pos, _ = plan[k]
            truth = pos + ev.at_s - bounds[k]
            right = any(by_name.get(Path(c.episode.source_path).name) ==
                        by_name.get(f) and abs(c.offset_s - q) <= POSITION_TOL_S
                        for c in (ev.match, *ev.candidates)
                        for f, q in corpus.equivalents(ep["file"], truth))
            if right and results[k]["reacquired_s"] is None:
                results[k]["reacquired_s"] = ev.at_s - bounds[k]
            elif not right:
                results[k]["wrong"] += 1
    return results


def live_summary(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    first = [r[0]["reacquired_s"] for r in runs if r[0]["reacquired_s"] is not None]
    seek = [r[1]["reacquired_s"] for r in runs if r[1]["reacquired_s"] is not None]
    epi = [r[2]["reacquired_s"] for r in runs if r[2]["reacquired_s"] is not None]
    return {
        "cases": len(runs),
        "first_median_s": statistics.median(first) if first else float("nan"),
        "seek_median_s": statistics.median(seek) if seek else float("nan"),
        "seek_max_s": max(seek) if seek else float("nan"),
        "episode_median_s": statistics.median(epi) if epi else float("nan"),
        "episode_max_s": max(epi) if epi else float("nan"),
        "missed": sum(x["reacquired_s"] is None for r in runs for x in r),
        "wrong": sum(x["wrong"] for r in runs for x in r),
        "runs": runs,
    }


# -- main -------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    rows = ["| input | length | segments | found | labelled right | median boundary error "
            "| outside labelled as an episode | speed (x real time, 1 core) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["inputs"]:
        errs = r["boundary_errors_s"]
        rows.append(
            f"| {r['input']} | {r['duration_s'] / 60:.1f} min | {r['episode_segments']} | "
            f"{r['segments_found'] / max(1, r['episode_segments']):.0%} | "
            f"{r['labelled_ok_s'] / max(1e-9, r['scored_s']):.1%} | "
            f"{statistics.median(errs) if errs else float('nan'):.2f} s | "
            f"{r['false_segments']} segments ({r['outside_seconds_labelled']:.1f} s) | "
            f"{r['x_realtime_cpu']:.0f}x |")
    t = report["totals"]
    rows.append(
        f"| **all** | {t['duration_s'] / 60:.1f} min | {t['episode_segments']} | "
        f"**{t['found']:.1%}** | **{t['labelled']:.1%}** | **{t['median_boundary_s']:.2f} s** | "
        f"**{t['false_segments']}** ({t['outside_seconds_labelled']:.1f} s) | "
        f"**{t['x_realtime_cpu']:.0f}x** |")
    for key, what in (("live", "Live following"),
                      ("live_room", "Live following in the listen room (RT60 0.5 s, 2 m, "
                       "noise 15 dB below in band, the phone's high-pass, WebM Opus 32k)")):
        lv = report.get(key)
        if not lv:
            continue
        rows.append("")
        rows.append(f"{what}, {lv['cases']} cases: first answer in median "
                    f"{lv['first_median_s']:.2f} s; after a seek median {lv['seek_median_s']:.2f} s"
                    f" (max {lv['seek_max_s']:.2f} s); after a change of episode median "
                    f"{lv['episode_median_s']:.2f} s (max {lv['episode_max_s']:.2f} s); "
                    f"missed {lv['missed']}; wrong answers {lv['wrong']}.")
    return "\n".join(rows) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--out", type=Path, default=Path("bench/out-timeline"))
    ap.add_argument("--cases", type=int, default=3, help="compilations")
    ap.add_argument("--no-reaction", action="store_true")
    ap.add_argument("--live", type=int, default=10, help="live seek/change cases")
    ap.add_argument("--live-room", action="store_true",
                    help="also play every live case in the listen room (bench.run's "
                         "room_listen: RT60 0.5 s, 2 m, noise 15 dB below)")
    ap.add_argument("--index", type=Path, default=None,
                    help="an index of the corpus library to reuse (built when missing)")
    ap.add_argument("--seed", type=int, default=2027)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    index_dir = args.index or args.out / "index"
    if not (index_dir / "catalog.sqlite").exists():
        log(f"indexing {args.corpus / 'library'} into {index_dir} ...")
        with Index.open(index_dir, writable=True) as w:
            drive(index_paths(w, [args.corpus / "library"]))
    index = Index.open(index_dir)
    corpus = Corpus(args.corpus)
    rng = np.random.default_rng(args.seed)
    work = args.out / "inputs"
    work.mkdir(exist_ok=True)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
                   f"Python {platform.python_version()}",
        "inputs": [],
    }
    builds = [build_compilation(corpus, rng, work, f"compilation-{i + 1}")
              for i in range(args.cases)]
    if not args.no_reaction:
        builds.append(build_reaction(corpus, rng, work))
    for built in builds:
        c0, w0 = cpu_s(), time.perf_counter()
        tl = timeline_file(built.path, index)
        cpu, wall = cpu_s() - c0, time.perf_counter() - w0
        r = score(built, tl, corpus)
        r["x_realtime_cpu"] = built.duration_s / cpu
        r["x_realtime_wall"] = built.duration_s / wall
        r["searches"] = tl.searches
        report["inputs"].append(r)
        log(f"{built.name}: {r['segments_found']}/{r['episode_segments']} found, "
            f"{r['labelled_ok_s'] / r['scored_s']:.1%} labelled right, "
            f"boundary median {statistics.median(r['boundary_errors_s'] or [0]):.2f} s, "
            f"false {r['false_segments']}, {r['x_realtime_cpu']:.0f}x cpu "
            f"({r['x_realtime_wall']:.0f}x wall, {r['searches']:.0f} searches)")
        (args.out / f"{built.name}.json").write_text(json.dumps({
            "truth": [p.__dict__ for p in built.pieces], "fades": built.fades,
            "timeline": tl.to_json()}, indent=1))
    rs = report["inputs"]
    errs = [e for r in rs for e in r["boundary_errors_s"]]
    dur = sum(r["duration_s"] for r in rs)
    report["totals"] = {
        "duration_s": dur,
        "episode_segments": sum(r["episode_segments"] for r in rs),
        "found": sum(r["segments_found"] for r in rs) / max(1, sum(r["episode_segments"]
                                                               for r in rs)),
        "labelled": sum(r["labelled_ok_s"] for r in rs) / max(1e-9, sum(r["scored_s"]
                                                                     for r in rs)),
        "median_boundary_s": statistics.median(errs) if errs else float("nan"),
        "false_segments": sum(r["false_segments"] for r in rs),
        "outside_seconds_labelled": sum(r["outside_seconds_labelled"] for r in rs),
        "x_realtime_cpu": (dur / sum(r["duration_s"] / r["x_realtime_cpu"] for r in rs)
                           if rs else float("nan")),
    }
    if args.live:
        plans = [live_plan(corpus, rng) for _ in range(args.live)]
        report["live"] = live_summary([live_case(corpus, index, p) for p in plans])
        log(json.dumps({k: v for k, v in report["live"].items() if k != "runs"}))
        if args.live_room:
            # The same plans through the Listen button's test room (bench.run's
            # room_listen row), each case's room drawn from its own generator.
            band = (index.params.fmin_hz, index.params.fmax_hz)
            room = {d.name: d for d in issue_15_rows(Overlays([], []), band)}["room_listen"]
            report["live_room"] = live_summary([
                live_case(corpus, index, p, room, np.random.default_rng([args.seed, 15, i]))
                for i, p in enumerate(plans)])
            log(json.dumps({k: v for k, v in report["live_room"].items() if k != "runs"}))
    md = table(report)
    (args.out / "report.md").write_text(f"Measured {report['date']} on {report['machine']}.\n\n"
                                        + md)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
