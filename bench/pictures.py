"""How well pictures name the episode: clips, screenshots and outside video, scored.

    .venv/bin/python -m bench.pictures bench/out/video/score --outside bench/out/video/outside \\
        --out bench/out/pictures

reads a video corpus made by :mod:`bench.video_corpus` (its ``library/`` and
``video_manifest.json``), indexes it with :mod:`citywok.vision`, cuts 5 s clips at random
places, distorts them with ffmpeg the way re-uploads do, and scores the answers:

* **hit**: ``match``, the right episode, and the start within ±1 s;
* **wrong**: ``match`` anywhere else;
* rows of the shared title sequence expect ``ambiguous`` (and a ``match`` of the right
  time in any holder is no error);
* **outside**: clips and screenshots of video that is not in the library (other
  photographs, ffmpeg's synthetic footage): any ``match`` is a false hit.

It also measures the index's size per hour, the time to index against ffmpeg's own
decode of the same sampled frames, and a 5 s 720p clip's query time on one core (CPU
seconds of this process and its ffmpeg children; the wall time beside it). Writes
``pictures.md`` and ``pictures.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from bench.video_corpus import EpisodeVideo, load_manifest, load_photo
from citywok.errors import CityWokError
from citywok.result import IdentifyResult, Status
from citywok.vision.params import FrameParams, SearchParams
from citywok.vision.pipeline import identify_file, index_video
from citywok.vision.search import FrameSearcher, PictureAnswer
from citywok.vision.store import EpisodeFrames, build_index, load_index, save_index

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
CLIP_S = 5.0
TOLERANCE_S = 1.0
WORDS = ("no way", "wait for it", "this scene", "I can't", "LOL", "part 2", "the best",
         "watch till the end", "who else", "iconic")


@dataclass(frozen=True)
class Distortion:
    name: str
    #: Playback speed (the clip's 5 s cover ``5 x speed`` s of the episode).
    speed: float
    #: ffmpeg filter graph from ``[0:v]`` (and ``[1:v]``, a background picture) to ``[v]``.
    graph: Callable[[random.Random], str]
    needs_background: bool = False


def _captions(rng: random.Random) -> str:
    text = rng.choice(WORDS).replace("'", "")
    sx, sy = rng.uniform(0.05, 0.8), rng.uniform(0.05, 0.55)
    colour = rng.choice(["0xffcc00", "0xff3366", "0x33ccff", "0x66ff66"])
    return (f"drawtext=fontfile={FONT}:text='{text}':fontcolor=white:fontsize=h/12:"
            "box=1:boxcolor=black@0.6:boxborderw=8:x=(w-text_w)/2:y=h*0.82,"
            f"drawbox=x=iw*{sx:.2f}:y=ih*{sy:.2f}:w=iw*0.12:h=iw*0.12:color={colour}:t=fill,"
            f"drawtext=fontfile={FONT}:text='OMG':fontcolor=0xff00ff:fontsize=h/9:"
            f"x=w*{1 - sx - 0.1:.2f}:y=h*{sy + 0.1:.2f}")


def _crop916(rng: random.Random, *, centre: bool) -> str:
    x = "(iw-ow)/2" if centre else f"(iw-ow)*{rng.uniform(0.0, 1.0):.3f}"
    return f"crop=ih*9/16:ih:{x}:0"


def _reaction(rng: random.Random, share: float | None = None) -> str:
    """The episode at ``share`` of the frame's width (40-60 % when not given) over a
    photograph, beside a moving "face"."""
    share = rng.uniform(0.4, 0.6) if share is None else share
    w = int(1280 * share) // 2 * 2
    h = w * 9 // 16 // 2 * 2
    left = rng.random() < 0.5
    x = rng.randint(20, 40) if left else 1280 - w - rng.randint(20, 40)
    y = rng.randint(20, 720 - h - 20)
    face_x = 1280 - 260 if left else 60
    return (f"[1:v]scale=1280:720,setsar=1[bg];[0:v]scale={w}:{h},setsar=1[ep];"
            f"[bg][ep]overlay={x}:{y}:shortest=1,"
            f"drawbox=x='{face_x}+30*sin(2*t)':y='380+20*sin(3*t)':w=200:h=260:"
            "color=0xd8a47f:t=fill[v]")


def _v(chain: Callable[[random.Random], str]) -> Callable[[random.Random], str]:
    return lambda rng: f"[0:v]{chain(rng)}[v]"


DISTORTIONS: tuple[Distortion, ...] = (
    Distortion("clean_720p", 1.0, _v(lambda r: "scale=1280:720")),
    Distortion("scale_360p", 1.0, _v(lambda r: "scale=640:360,scale=-2:360")),
    Distortion("crop916_centre", 1.0, _v(lambda r: _crop916(r, centre=True) + ",scale=-2:720")),
    Distortion("crop916_offcentre", 1.0,
               _v(lambda r: _crop916(r, centre=False) + ",scale=-2:" + r.choice(["360", "720"]))),
    Distortion("mirror", 1.0, _v(lambda r: "hflip,scale=1280:720")),
    Distortion("captions_stickers", 1.0, _v(lambda r: "scale=1280:720," + _captions(r))),
    Distortion("colour_grade", 1.0, _v(lambda r: "scale=1280:720,eq=contrast=1.2:saturation=1.5:"
                                       "gamma=0.8,colorbalance=rs=0.15:bs=-0.15")),
    Distortion("brightness_+0.15", 1.0, _v(lambda r: "scale=1280:720,eq=brightness=0.15")),
    Distortion("brightness_-0.15", 1.0, _v(lambda r: "scale=1280:720,eq=brightness=-0.15")),
    Distortion("letterbox_9x16", 1.0, _v(lambda r: "scale=720:-2,pad=720:1280:0:(oh-ih)/2")),
    Distortion("fps_30", 1.0, _v(lambda r: "fps=30,scale=1280:720")),
    Distortion("fps_6", 1.0, _v(lambda r: "fps=6,scale=1280:720")),
    Distortion("speed_0.8", 0.8, _v(lambda r: "setpts=PTS/0.8,scale=1280:720")),
    Distortion("speed_1.25", 1.25, _v(lambda r: "setpts=PTS/1.25,scale=1280:720")),
    Distortion("speed_1.3", 1.3, _v(lambda r: "setpts=PTS/1.3,scale=1280:720")),
    Distortion("reaction_40-60%", 1.0, _reaction, needs_background=True),
    Distortion("crop916+captions+mirror+1.25x", 1.25, _v(
        lambda r: "setpts=PTS/1.25," + _crop916(r, centre=False) + ",hflip,scale=-2:720,"
        + _captions(r))),
)
OUTSIDE_DISTORTIONS = ("clean_720p", "crop916_offcentre", "mirror", "captions_stickers",
                       "reaction_40-60%")


def make_clip(src: Path, out: Path, *, start_s: float, distortion: Distortion,
              rng: random.Random, background: Path | None, fps: int = 30) -> None:
    """``CLIP_S`` s of ``src`` from ``start_s``, distorted, as an H.264 MP4 (no audio)."""
    cmd = ["ffmpeg", "-nostdin", "-y", "-v", "error", "-ss", f"{start_s:.3f}", "-t",
           f"{CLIP_S * distortion.speed + 0.5:.3f}", "-i", str(src)]
    if distortion.needs_background:
        assert background is not None
        cmd += ["-loop", "1", "-i", str(background)]
    graph = distortion.graph(rng)
    if "fps=" not in graph:  # platforms serve 30 fps whatever the source had
        graph = graph.removesuffix("[v]") + f",fps={fps}[v]"
    cmd += ["-filter_complex", graph, "-map", "[v]", "-t", f"{CLIP_S:.3f}", "-an",
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "24", "-pix_fmt", "yuv420p",
            str(out)]
    subprocess.run(cmd, check=True)


def make_screenshot(src: Path, out: Path, *, at_s: float) -> None:
    """The frame of ``src`` at ``at_s`` at 1280x720, in ``out``'s format (PNG, JPEG, WebP)."""
    quality = ["-q:v", "4"] if out.suffix == ".jpg" else (
        ["-quality", "75"] if out.suffix == ".webp" else [])
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-ss", f"{at_s:.3f}", "-i",
                    str(src), "-frames:v", "1", "-vf", "scale=1280:720", *quality, str(out)],
                   check=True)


def synthetic_footage(out: Path, *, kind: str, seconds: float) -> None:
    """ffmpeg's own moving pictures: footage that is in no library."""
    src = {"mandelbrot": "mandelbrot=s=640x360:rate=10",
           "life": "life=s=640x360:rate=10:mold=10:ratio=0.2:death_color=#332211",
           "testsrc2": "testsrc2=s=640x360:rate=10",
           "cellauto": "cellauto=s=640x360:rate=10:rule=30"}[kind]
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", src, "-t",
                    f"{seconds}", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                    "yuv420p", str(out)], check=True)


@dataclass
class Row:
    name: str
    n: int = 0
    hit: int = 0
    wrong: int = 0
    ambiguous: int = 0
    no_match: int = 0

    def add(self, outcome: str) -> None:
        self.n += 1
        setattr(self, outcome, getattr(self, outcome) + 1)


def outcome(answer: PictureAnswer, *, episode: str | None, start_s: float | None,
            shared: bool = False) -> str:
    """``hit`` / ``wrong`` / ``ambiguous`` / ``no_match`` (see the module doc)."""
    if answer.status is Status.NO_MATCH:
        return "no_match"
    if answer.status is Status.AMBIGUOUS:
        return "hit" if shared else "ambiguous"
    place = answer.place
    assert place is not None
    if episode is None:
        return "wrong"
    right = place.episode == episode and start_s is not None and \
        abs(place.start_s - start_s) <= TOLERANCE_S
    if shared:  # a match on the title sequence is right only if the time fits
        return "ambiguous" if start_s is not None and abs(place.start_s - start_s) <= 2 \
            else "wrong"
    return "hit" if right else "wrong"


def cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def ffmpeg_decode_s(path: Path, params: FrameParams) -> float:
    """CPU seconds ffmpeg alone takes to decode ``path``'s sampled frames to the grid."""
    t0 = cpu_s()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-skip_frame",
                    "noref", "-skip_loop_filter", "all", "-i", str(path), "-map", "0:v:0",
                    "-vf", f"fps={params.sample_rate_hz:g}:round=down,scale="
                    f"{params.grid_width_px}:{params.grid_height_px}:flags=area,format=gray",
                    "-f", "null", "-"], check=True)
    return cpu_s() - t0


def intro_span(video: EpisodeVideo) -> tuple[float, float] | None:
    shared = [s for s in video.shots if s.kind in ("title", "intro")]
    return (shared[0].start_s, shared[-1].end_s) if shared else None


def _screenshot(rng: random.Random, videos: Sequence[EpisodeVideo], lib: Path, work: Path,
                n: int) -> tuple[EpisodeVideo, float, str, Path]:
    """Screenshot ``n`` of a random place away from the title sequence (PNG, JPEG or WebP
    in turn): its video, time, format and file."""
    v = rng.choice(videos)
    span = intro_span(v)
    at = rng.uniform(5, v.duration_s - 5)
    if span and span[0] - 1 <= at <= span[1] + 1:
        at = span[1] + 3
    fmt = ("png", "jpg", "webp")[n % 3]
    shot = work / f"shot_{n}.{fmt}"
    make_screenshot(lib / v.file, shot, at_s=at)
    return v, at, fmt, shot


def _workspace(corpus: Path, out: Path) -> tuple[list[EpisodeVideo], Path, Path]:
    """The corpus's videos, its library folder and this run's work folder (made)."""
    faiss.omp_set_num_threads(1)
    _, videos = load_manifest(corpus / "video_manifest.json")
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    return list(videos), corpus / "library", work


def _index_pictures(videos: Sequence[EpisodeVideo], lib: Path, fparams: FrameParams
                    ) -> tuple[list[tuple[str, EpisodeFrames]], dict[str, float]]:
    """Each video's pictures, and what that cost against ffmpeg's own decode of the
    frames it samples (CPU seconds, one process each)."""
    items: list[tuple[str, EpisodeFrames]] = []
    idx_cpu, dec_cpu, wall = 0.0, 0.0, 0.0
    for v in videos:
        t0, w0 = cpu_s(), time.perf_counter()
        items.append((Path(v.file).stem, index_video(lib / v.file, params=fparams)))
        idx_cpu += cpu_s() - t0
        wall += time.perf_counter() - w0
        dec_cpu += ffmpeg_decode_s(lib / v.file, fparams)
    return items, {"cpu_s": round(idx_cpu, 1), "ffmpeg_decode_cpu_s": round(dec_cpu, 1),
                   "ratio": round(idx_cpu / dec_cpu, 2), "wall_s": round(wall, 1)}


def _backgrounds(backgrounds: Sequence[Path], work: Path, rng: random.Random
                 ) -> Callable[[], Path]:
    """A random photograph of ``backgrounds`` as a PNG in ``work`` (made once each)."""
    bgs = list(backgrounds)

    def background() -> Path:
        j = rng.randrange(len(bgs))
        path = work / f"bg{j}.png"
        if not path.exists():
            load_photo(bgs[j]).save(path)
        return path

    return background


def run(corpus: Path, *, outside: Path | None, out: Path, clips: int, seed: int,
        params: SearchParams, backgrounds: Sequence[Path], rebuild: bool) -> dict[str, object]:
    videos, lib, work = _workspace(corpus, out)
    fparams = FrameParams()
    index_dir = out / "index"
    report: dict[str, object] = {"corpus": str(corpus), "search_params": asdict(params),
                                 "frame_params": asdict(fparams)}
    if rebuild or not (index_dir / "header.json").exists():
        items, cost = _index_pictures(videos, lib, fparams)
        save_index(build_index(items, params=fparams), index_dir)
        report["indexing"] = cost
        print(f"indexed in {cost['cpu_s']:.0f} CPU s (ffmpeg's decode alone "
              f"{cost['ffmpeg_decode_cpu_s']:.0f})", file=sys.stderr)
    index = load_index(index_dir, params=fparams)
    hours = sum(v.duration_s for v in videos) / 3600
    mb = index.nbytes / 1e6
    report["index"] = {"frames": len(index.times_s), "mb": round(mb, 3), "hours": round(hours, 3),
                       "mb_per_hour": round(mb / hours, 3),
                       "kept_frames_per_s": round(len(index.times_s) / (hours * 3600), 2)}
    searcher = FrameSearcher(index)
    rng = random.Random(seed)
    rows: dict[str, Row] = {}
    background = _backgrounds(backgrounds, work, rng)

    misses: list[dict[str, object]] = []

    def ask(row: str, clip: Path, **truth: object) -> None:
        answer = identify_file(searcher, clip, params=params)
        result = outcome(answer, **truth)  # type: ignore[arg-type]
        rows.setdefault(row, Row(row)).add(result)
        if result != "hit" and not (truth.get("episode") is None and result == "no_match"):
            p = answer.place
            misses.append({"row": row, "outcome": result, "truth": truth,
                           "answer": None if p is None else [p.episode, round(p.start_s, 2),
                                                             p.score, p.speed, p.box.kind],
                           "scores": [c.score for c in answer.candidates]})

    # clips of the library, away from the title sequence
    for d in DISTORTIONS:
        for i in range(clips):
            v = rng.choice(videos)
            span = intro_span(v)
            lo = (span[1] + 2) if span and span[0] < 60 else 5.0
            start = rng.uniform(lo, v.duration_s - CLIP_S * 1.4 - 2)
            if span and start < span[1] + 2 and start + CLIP_S * 1.4 > span[0] - 2:
                start = span[1] + 2
            clip = work / f"clip_{d.name}_{i}.mp4"
            make_clip(lib / v.file, clip, start_s=start, distortion=d, rng=rng,
                      background=background() if d.needs_background else None)
            ask(d.name, clip, episode=Path(v.file).stem, start_s=start)
            clip.unlink()
        print(f"{d.name}: {asdict(rows[d.name])}", file=sys.stderr)
    # the title sequence: the same pictures in every episode
    for i in range(max(4, clips // 4)):
        v = rng.choice(videos)
        span = intro_span(v)
        if span is None:
            continue
        start = rng.uniform(span[0], span[1] - CLIP_S - 1)
        clip = work / f"intro_{i}.mp4"
        make_clip(lib / v.file, clip, start_s=start, distortion=DISTORTIONS[0], rng=rng,
                  background=None)
        ask("title_sequence_clip (expect ambiguous)", clip, episode=Path(v.file).stem,
            start_s=start, shared=True)
        shot = work / f"title_{i}.{('png', 'jpg', 'webp')[i % 3]}"
        make_screenshot(lib / v.file, shot, at_s=span[0] + rng.uniform(0.5, 4.5))
        ask("title_card_screenshot (expect ambiguous)", shot, episode=Path(v.file).stem,
            start_s=None, shared=True)
    # screenshots of distinctive frames
    for i in range(clips * 2):
        v, at, fmt, shot = _screenshot(rng, videos, lib, work, i)
        ask(f"screenshot_{fmt}", shot, episode=Path(v.file).stem, start_s=at)
        shot.unlink()
    # outside video: other photographs, and synthetic footage
    sources: list[Path] = []
    if outside is not None:
        sources += sorted((outside / "library").glob("*.mkv"))
    for kind in ("mandelbrot", "life", "testsrc2", "cellauto"):
        path = work / f"footage_{kind}.mp4"
        if not path.exists():
            synthetic_footage(path, kind=kind, seconds=60)
        sources.append(path)
    by_name = {d.name: d for d in DISTORTIONS}
    for i in range(clips * 2):
        src = sources[i % len(sources)]
        dur = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                                    "-of", "csv=p=0", str(src)], capture_output=True,
                                   text=True).stdout.strip() or 60)
        d = by_name[OUTSIDE_DISTORTIONS[i % len(OUTSIDE_DISTORTIONS)]]
        start = rng.uniform(0, dur - CLIP_S - 1)
        clip = work / f"outside_{i}.mp4"
        make_clip(src, clip, start_s=start, distortion=d, rng=rng,
                  background=background() if d.needs_background else None)
        ask("outside_clip (any match is false)", clip, episode=None, start_s=None)
        clip.unlink()
        shot = work / f"outside_{i}.{('png', 'jpg', 'webp')[i % 3]}"
        make_screenshot(src, shot, at_s=start)
        ask("outside_screenshot (any match is false)", shot, episode=None, start_s=None)
        shot.unlink()
    # query time: 5 s of 720p 30 fps H.264 (x264 medium, as platforms serve it)
    times_cpu, times_wall = [], []
    for i in range(10):
        v = videos[i % len(videos)]
        clip = work / f"timing_{i}.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-ss", f"{100 + 37 * i}",
                        "-t", "5", "-i", str(lib / v.file), "-vf", "scale=1280:720,fps=30",
                        "-an", "-c:v", "libx264", "-preset", "medium", str(clip)], check=True)
        t0, w0 = cpu_s(), time.perf_counter()
        identify_file(searcher, clip, params=params)
        times_cpu.append(cpu_s() - t0)
        times_wall.append(time.perf_counter() - w0)
    report["query_720p_5s"] = {"cpu_ms_median": round(1000 * float(np.median(times_cpu)), 1),
                               "cpu_ms_max": round(1000 * max(times_cpu), 1),
                               "wall_ms_median": round(1000 * float(np.median(times_wall)), 1)}
    report["rows"] = [asdict(r) for r in rows.values()]
    report["misses"] = misses
    out.mkdir(parents=True, exist_ok=True)
    (out / "pictures.json").write_text(json.dumps(report, indent=1))
    (out / "pictures.md").write_text(markdown(report))
    return report


def markdown(report: dict[str, object]) -> str:
    lines = ["| row | clips | hit | wrong | ambiguous | no match |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:  # type: ignore[attr-defined]
        n = max(1, r["n"])
        lines.append(f"| {r['name']} | {r['n']} | {100 * r['hit'] / n:.0f}% | "
                     f"{100 * r['wrong'] / n:.0f}% | {100 * r['ambiguous'] / n:.0f}% | "
                     f"{100 * r['no_match'] / n:.0f}% |")
    extra = {k: v for k, v in report.items() if k not in ("rows", "misses")}
    return "\n".join(lines) + "\n\n```\n" + json.dumps(extra, indent=1) + "\n```\n"


# -- --fused: the product's pipeline, sound and pictures of one clip -------------------------


@dataclass
class FusedRow:
    """One benchmark row scored three ways: the sound alone, the pictures alone, fused."""

    name: str
    sound: Row
    picture: Row
    fused: Row
    #: How the fused hits were decided (``sound`` / ``picture`` / ``both``).
    decided: dict[str, int]


def av_outcome(res: IdentifyResult, *, stem: str | None, start_s: float | None,
               expect_ambiguous: bool = False) -> str:
    """``hit`` / ``wrong`` / ``ambiguous`` / ``no_match`` of a product answer."""
    if res.status is Status.NO_MATCH or res.match is None:
        return "no_match"
    if res.status is Status.AMBIGUOUS:
        return "hit" if expect_ambiguous else "ambiguous"
    m = res.match
    if stem is None:
        return "wrong"
    near = start_s is not None and abs(m.offset_s - start_s) <= TOLERANCE_S
    if expect_ambiguous:  # the title card: a match of the right place is no error
        return "ambiguous" if Path(m.episode.source_path).stem == stem and near else "wrong"
    return "hit" if Path(m.episode.source_path).stem == stem and near else "wrong"


def make_av_clip(src: Path, out: Path, *, start_s: float, speed: float, vgraph: str,
                 agraph: str, background: Path | None = None,
                 other_audio: Path | None = None, other_start_s: float = 0.0,
                 fps: int = 30, preset: str = "ultrafast") -> None:
    """``CLIP_S`` s of ``src`` from ``start_s`` with sound, as a platform serves it
    (H.264 at ``fps`` and AAC in MP4). Inputs of the graphs: ``[0]`` the episode, ``[1]``
    a background picture (looped), ``[2]`` other sound (from ``other_start_s``)."""
    cmd = ["ffmpeg", "-nostdin", "-y", "-v", "error", "-ss", f"{start_s:.3f}", "-t",
           f"{CLIP_S * speed + 0.5:.3f}", "-i", str(src)]
    if background is not None:
        cmd += ["-loop", "1", "-i", str(background)]
    else:
        cmd += ["-f", "lavfi", "-i", "color=c=black:s=16x16:d=1"]
    if other_audio is not None:
        cmd += ["-ss", f"{other_start_s:.3f}", "-i", str(other_audio)]
    vg = vgraph if "fps=" in vgraph else vgraph.removesuffix("[v]") + f",fps={fps}[v]"
    cmd += ["-filter_complex", f"{vg};{agraph}", "-map", "[v]", "-map", "[a]",
            "-t", f"{CLIP_S:.3f}", "-c:v", "libx264", "-preset", preset, "-crf", "24",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ac", "2", str(out)]
    subprocess.run(cmd, check=True)


def _split(clip: Path) -> tuple[Path, Path]:
    """The clip's sound alone (M4A) and its pictures alone (MP4 without audio)."""
    sound, mute = clip.with_suffix(".m4a"), clip.with_name(clip.stem + "-mute.mp4")
    for out, args in ((sound, ["-vn"]), (mute, ["-an"])):
        subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(clip), *args,
                        "-c", "copy", str(out)], check=True)
    return sound, mute


def _reaction50(rng: random.Random) -> str:
    return _reaction(rng, share=0.5)  # 640 x 360, as the reaction row


_LEVEL = "loudnorm=I=-23:TP=-2:LRA=11,aresample=44100"


def run_fused(corpus: Path, *, outside: Path | None, sounds: Path, out: Path, clips: int,
              seed: int, backgrounds: Sequence[Path], rebuild: bool) -> dict[str, object]:
    """The ``--fused`` report: each row's clips answered by the product three ways."""
    import shutil

    from citywok import families
    from citywok.index import Index
    from citywok.pipeline import drive, identify_file, index_paths

    videos, lib, work = _workspace(corpus, out)
    index_dir = out / "citywok-index"
    report: dict[str, object] = {"corpus": str(corpus), "mode": "fused"}
    fparams = FrameParams()
    if rebuild and index_dir.exists():
        shutil.rmtree(index_dir)
    if not index_dir.exists():
        t0, w0 = cpu_s(), time.perf_counter()
        with Index.open(index_dir, writable=True) as idx:
            drive(index_paths(idx, [lib]))
        report["citywok_index"] = {"cpu_s": round(cpu_s() - t0, 1),
                                   "wall_s": round(time.perf_counter() - w0, 1)}
        report["picture_indexing"] = _index_pictures(videos, lib, fparams)[1]
        print(json.dumps({k: report[k] for k in ("citywok_index", "picture_indexing")}),
              file=sys.stderr)
    idx = Index.open(index_dir)
    hours = sum(v.duration_s for v in videos) / 3600
    pic_bytes = sum(r.bytes for r in idx.picture_rows())
    report["index"] = {"hours_of_video": round(hours, 3),
                       "picture_mb": round(pic_bytes / 1e6, 3),
                       "picture_mb_per_hour": round(pic_bytes / 1e6 / hours, 3),
                       "episodes_with_pictures": len(idx.picture_rows()),
                       "whole_index_mb": round(idx.stats().index_bytes / 1e6, 2)}
    assert families.DEFAULT_PICTURES == "frames"
    rng = random.Random(seed)
    music = sorted(sounds.glob("music_*"))
    speech = sorted(sounds.glob("speech_*"))
    rows: dict[str, FusedRow] = {}
    misses: list[dict[str, object]] = []

    background = _backgrounds(backgrounds, work, rng)

    def answer(clip: Path) -> IdentifyResult | None:
        """The product's answer; None where it refuses the input (a video with blank
        pictures and no sound: nothing to hear or see)."""
        try:
            return identify_file(clip, idx)
        except CityWokError as exc:
            print(f"{clip.name}: {exc.message}", file=sys.stderr)
            return None

    def row(name: str) -> FusedRow:
        return rows.setdefault(name, FusedRow(name, Row(name), Row(name), Row(name), {}))

    def ask(name: str, clip: Path, *, stem: str | None, start_s: float | None,
            still: bool = False, expect_ambiguous: bool = False) -> None:
        r = row(name)
        truth = {"stem": stem, "start_s": start_s, "expect_ambiguous": expect_ambiguous}
        fused = answer(clip)
        got = av_outcome(fused, **truth) if fused else "no_match"  # type: ignore[arg-type]
        r.fused.add(got)
        if got == "hit" and fused and fused.match is not None:
            key = fused.match.decided_by.value
            r.decided[key] = r.decided.get(key, 0) + 1
        if got not in ("hit",) and not (stem is None and got == "no_match"):
            m = fused.match if fused else None
            misses.append({"row": name, "outcome": got, "truth": truth, "clip": clip.name,
                           "answer": None if m is None else [
                               m.episode.episode_id, round(m.offset_s, 2), m.score,
                               m.decided_by.value],
                           "disagreement": bool(fused and fused.disagreement is not None)})
        if still:
            r.picture.add(got)
            return
        sound, mute = _split(clip)
        for part, tally in ((sound, r.sound), (mute, r.picture)):
            res = answer(part)
            tally.add(av_outcome(res, **truth) if res else "no_match")  # type: ignore[arg-type]
        sound.unlink()
        mute.unlink()

    def place(v: EpisodeVideo, speed: float) -> float:
        span = intro_span(v)
        lo = (span[1] + 2) if span and span[0] < 60 else 5.0
        start = rng.uniform(lo, v.duration_s - CLIP_S * 1.4 - 2)
        if span and start < span[1] + 2 and start + CLIP_S * speed > span[0] - 2:
            start = span[1] + 2
        return start

    own = "[0:a]anull[a]"
    kinds: list[tuple[str, float, Callable[[random.Random], str], str, str]] = [
        # name, speed, video graph, audio graph, other sound (none / music / speech)
        ("own sound, clean 720p", 1.0, _v(lambda r: "scale=1280:720"), own, ""),
        ("sound replaced by a song", 1.0, _v(lambda r: "scale=1280:720"),
         f"[2:a]{_LEVEL}[a]", "music"),
        ("9:16 crop+captions+mirror+1.25x", 1.25, _v(
            lambda r: "setpts=PTS/1.25," + _crop916(r, centre=False) + ",hflip,scale=-2:720,"
            + _captions(r)), "[0:a]atempo=1.25[a]", ""),
        ("reaction 50 %, a voice over its sound", 1.0, _reaction50,
         f"[0:a]{_LEVEL}[a0];[2:a]{_LEVEL}[a1];[a0][a1]amix=inputs=2:normalize=0[a]",
         "speech"),
        ("reaction 50 %, a song instead of its sound", 1.0, _reaction50,
         f"[2:a]{_LEVEL}[a]", "music"),
    ]
    for name, speed, vgraph, agraph, other in kinds:
        for i in range(clips):
            v = rng.choice(videos)
            start = place(v, speed)
            pool = music if other == "music" else speech
            extra = rng.choice(pool) if other else None
            clip = work / f"av_{i}.mp4"
            g = vgraph(rng)
            make_av_clip(lib / v.file, clip, start_s=start, speed=speed, vgraph=g,
                         agraph=agraph, background=background() if "[1:v]" in g else None,
                         other_audio=extra, other_start_s=rng.uniform(0, 60))
            ask(name, clip, stem=Path(v.file).stem, start_s=start)
            clip.unlink()
        r = rows[name]
        print(f"{name}: sound {asdict(r.sound)} picture {asdict(r.picture)} "
              f"fused {asdict(r.fused)}", file=sys.stderr)
    for i in range(clips):
        v, at, fmt, shot = _screenshot(rng, videos, lib, work, i)
        ask("screenshot (PNG/JPEG/WebP)", shot, stem=Path(v.file).stem, start_s=at, still=True)
        shot.unlink()
        span = intro_span(v)
        if span is not None:
            title = work / f"title_{i}.{fmt}"
            make_screenshot(lib / v.file, title, at_s=span[0] + rng.uniform(0.5, 4.5))
            ask("title card screenshot (expect ambiguous)", title, stem=Path(v.file).stem,
                start_s=None, still=True, expect_ambiguous=True)
            title.unlink()
    sources: list[Path] = sorted((outside / "library").glob("*.mkv")) if outside else []
    for kind in ("mandelbrot", "life", "testsrc2", "cellauto"):
        path = work / f"footage_{kind}.mp4"
        if not path.exists():
            synthetic_footage(path, kind=kind, seconds=60)
        sources.append(path)
    for i in range(clips * 2):
        src = sources[i % len(sources)]
        dur = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                                    "-of", "csv=p=0", str(src)], capture_output=True,
                                   text=True).stdout.strip() or 60)
        start = rng.uniform(0, dur - CLIP_S - 1)
        vg = (_v(lambda r: "scale=1280:720"), _v(lambda r: _crop916(r, centre=False)
                                                  + ",scale=-2:720"), _reaction50)[i % 3]
        g = vg(rng)
        clip = work / f"outside_{i}.mp4"
        make_av_clip(src, clip, start_s=start, speed=1.0, vgraph=g,
                     agraph=f"[2:a]{_LEVEL}[a]",
                     background=background() if "[1:v]" in g else None,
                     other_audio=rng.choice(music + speech), other_start_s=rng.uniform(0, 60))
        ask("outside video and sound (any match is false)", clip, stem=None, start_s=None)
        clip.unlink()
    # time: 5 s of 720p 30 fps H.264 (x264 medium) with AAC, end to end, decoding included
    times_cpu, times_wall = [], []
    for i in range(10):
        v = videos[i % len(videos)]
        clip = work / f"timing_{i}.mp4"
        make_av_clip(lib / v.file, clip, start_s=(100 + 37 * i) % (v.duration_s - 10),
                     speed=1.0,
                     vgraph="[0:v]scale=1280:720[v]", agraph=own, preset="medium")
        t0, w0 = cpu_s(), time.perf_counter()
        identify_file(clip, idx)
        times_cpu.append(cpu_s() - t0)
        times_wall.append(time.perf_counter() - w0)
        clip.unlink()
    report["clip_720p_5s_fused"] = {
        "cpu_ms_median": round(1000 * float(np.median(times_cpu)), 1),
        "cpu_ms_max": round(1000 * max(times_cpu), 1),
        "wall_ms_median": round(1000 * float(np.median(times_wall)), 1)}
    report["rows"] = [{"name": r.name, "sound": asdict(r.sound), "picture": asdict(r.picture),
                       "fused": asdict(r.fused), "fused_decided_by": r.decided}
                      for r in rows.values()]
    report["misses"] = misses
    idx.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / "fused.json").write_text(json.dumps(report, indent=1))
    (out / "fused.md").write_text(fused_markdown(report))
    return report


def fused_markdown(report: dict[str, object]) -> str:
    def cell(r: dict[str, int]) -> str:
        if r["n"] == 0:
            return "n/a"
        n = r["n"]
        if "outside" in str(r["name"]):
            return f"{r['wrong']} false hits of {n}"
        return (f"{100 * r['hit'] / n:.0f} % ({r['wrong']} wrong, {r['ambiguous']} amb., "
                f"{r['no_match']} none)")

    lines = ["| row | clips | sound alone | picture alone | fused | fused hits decided by |",
             "|---|---:|---|---|---|---|"]
    for r in report["rows"]:  # type: ignore[attr-defined]
        decided = ", ".join(f"{k} {v}" for k, v in sorted(r["fused_decided_by"].items()))
        lines.append(f"| {r['name']} | {r['fused']['n']} | {cell(r['sound'])} | "
                     f"{cell(r['picture'])} | {cell(r['fused'])} | {decided or '-'} |")
    extra = {k: v for k, v in report.items() if k not in ("rows", "misses")}
    return "\n".join(lines) + "\n\n```\n" + json.dumps(extra, indent=1) + "\n```\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pictures", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path, help="a video corpus (bench.video_corpus --out)")
    ap.add_argument("--outside", type=Path, help="a video corpus of outside pictures")
    ap.add_argument("--out", type=Path, default=Path("bench/out/pictures"))
    ap.add_argument("--clips", type=int, default=20, help="clips a distortion")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--backgrounds", type=Path, nargs="*", default=[],
                    help="pictures behind the reaction videos (not the library's)")
    ap.add_argument("--radius-bits", type=int, default=SearchParams.radius_bits)
    ap.add_argument("--min-score-clip", type=float, default=SearchParams.min_score_clip)
    ap.add_argument("--min-score-still", type=float, default=SearchParams.min_score_still)
    ap.add_argument("--rebuild", action="store_true", help="index the library again")
    ap.add_argument("--fused", action="store_true",
                    help="score the product (`citywok index` / `identify`) on clips with sound: "
                    "sound alone, pictures alone and fused, per row")
    ap.add_argument("--sounds", type=Path, default=Path("../shared/corpus/outside"),
                    help="--fused: music_* and speech_* files that are not in the library")
    args = ap.parse_args(argv)
    params = SearchParams(radius_bits=args.radius_bits, min_score_clip=args.min_score_clip,
                          min_score_still=args.min_score_still)
    bgs = args.backgrounds
    if not bgs and args.outside is not None:
        raw = json.loads((args.outside / "video_manifest.json").read_text())
        from bench.video_corpus import package_photos
        keys = set(raw["photos"])
        bgs = [p.path for p in package_photos() if p.key in keys]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.fused:
        fused = run_fused(args.corpus, outside=args.outside, sounds=args.sounds, out=args.out,
                          clips=args.clips, seed=args.seed, backgrounds=bgs,
                          rebuild=args.rebuild)
        print(fused_markdown(fused))
        return 0
    report = run(args.corpus, outside=args.outside, out=args.out, clips=args.clips,
                 seed=args.seed, params=params, backgrounds=bgs, rebuild=args.rebuild)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
