"""Give every episode of a library a video track: the picture test corpus.

The corpus has real recordings but no real pictures. This makes them: each episode gets
a video whose scenes are real photographs from Debian packages (see
``video_corpus_licenses.md`` beside this file), shot with camera moves (a pan or a zoom
per shot), cut every 2-8 s, with the show's title sequence at the episode's intro (the
same pictures in every episode, like a real show's opening), muxed with the episode's
own audio. Everything is seeded: the same photos, seed and config give the same frames.

The photo pool is split (by a hash of each file's name, so adding a package does not
reshuffle the others) into ``tune`` (what the descriptor and thresholds were tuned on),
``score`` (the benchmark library's pictures) and ``outside`` (pictures that are in no
episode: the false-hit material). The packages the scores are checked on by others,
:data:`HELD_OUT_PACKAGES`, are refused outright.

    .venv/bin/python -m bench.video_corpus ../shared/corpus --out ../video-corpus

writes ``../video-corpus/library/<episode stem>.mkv`` (H.264 + the episode's audio
stream, copied) and ``../video-corpus/video_manifest.json`` (every shot of every
episode: its times, photo and move), and prints how long it took.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

#: Their pictures are what the scores are checked on: never read by this generator.
HELD_OUT_PACKAGES = ("plasma-workspace-wallpapers", "mate-backgrounds", "lomiri-wallpapers")
DEFAULT_PACKAGES = ("gnome-backgrounds", "ukui-wallpapers", "desktop-base")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
#: A photo smaller than this (either side) makes no scene: logos, icons, previews.
MIN_PHOTO_SIDE_PX = 900
#: How the pool is split; shares of 100 by a hash of the file name.
SPLIT = (("tune", 30), ("score", 50), ("outside", 20))
SHOW_TITLE = "HARBOR LIGHTS"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
#: Photos are held in memory at this width at most (zoom 3x still has detail at 640 px).
WORK_WIDTH_PX = 1280


@dataclass(frozen=True)
class Photo:
    path: Path
    package: str

    @property
    def key(self) -> str:
        return f"{self.package}:{'/'.join(self.path.parts[-3:])}"

    @property
    def family(self) -> str:
        """Variants of one design share a family, so they land in one part of the split.

        GNOME's dark/light pairs (``-d``/``-l``) and desktop-base's themes (the GRUB and
        Plymouth pictures of one theme are one artwork).
        """
        parts = self.path.parts
        for anchor in ("desktop-base", "themes"):
            if anchor in parts[:-2]:
                return f"{self.package}:{parts[parts.index(anchor) + 1].removesuffix('-theme')}"
        stem = self.path.stem.removesuffix("-d").removesuffix("-l")
        return f"{self.package}:{'/'.join(self.path.parts[-3:-1])}/{stem}"


@dataclass(frozen=True)
class VideoConfig:
    """How the video tracks are made. The defaults are the benchmark's."""

    width_px: int = 640
    height_px: int = 360
    fps: float = 10.0
    min_shot_s: float = 2.0
    max_shot_s: float = 8.0
    #: Zoom of a shot's box into its photo (1 = the photo's full width).
    min_zoom: float = 1.2
    max_zoom: float = 3.0
    #: Photos an episode draws its scenes from (drawn from its part of the pool).
    photos_per_episode: int = 6
    crf: int = 30
    seed: int = 0


@dataclass(frozen=True)
class Shot:
    start_s: float
    end_s: float
    #: ``title`` (the title card), ``intro`` (the shared opening), ``scene``.
    kind: str
    #: ``Photo.key`` of the scene's photo; ``title`` for the title card.
    photo: str
    move: str
    #: Box (centre x, centre y, width) in the photo's fractions at the shot's start / end.
    box0: tuple[float, float, float]
    box1: tuple[float, float, float]


@dataclass(frozen=True)
class EpisodeVideo:
    file: str
    duration_s: float
    shots: tuple[Shot, ...]
    photos: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- photos


def package_photos(packages: Sequence[str] = DEFAULT_PACKAGES) -> list[Photo]:
    """The usable photographs that the installed Debian ``packages`` ship, sorted."""
    out: list[Photo] = []
    for package in packages:
        if package in HELD_OUT_PACKAGES:
            raise ValueError(f"{package} is held out for scoring: its pictures are not used")
        listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
        if listing.returncode != 0:
            raise FileNotFoundError(f"{package} is not installed (apt-get install {package})")
        for line in listing.stdout.splitlines():
            path = Path(line)
            if (path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file()
                    or "previews" in path.parts):  # screenshots of a desktop, not scenes
                continue
            with Image.open(path) as im:
                if min(im.size) >= MIN_PHOTO_SIDE_PX:
                    out.append(Photo(path, package))
    return sorted(set(out), key=lambda p: p.key)


def split_photos(photos: Sequence[Photo]) -> dict[str, list[Photo]]:
    """``tune`` / ``score`` / ``outside``, by a hash of each photo's family (stable)."""
    parts: dict[str, list[Photo]] = {name: [] for name, _ in SPLIT}
    for photo in photos:
        bucket = int(hashlib.sha256(photo.family.encode()).hexdigest(), 16) % 100
        edge = 0
        for name, share in SPLIT:
            edge += share
            if bucket < edge:
                parts[name].append(photo)
                break
    return parts


def synthetic_photos(n: int, *, seed: int,
                     size_px: tuple[int, int] = (960, 600)) -> list[Image.Image]:
    """``n`` photo-like images (smooth colour fields with shapes) for tests without packages."""
    rng = np.random.default_rng(seed)
    w, h = size_px
    out = []
    for _ in range(n):
        coarse = rng.uniform(0, 255, (6, 10, 3)).astype(np.uint8)
        im = Image.fromarray(coarse, "RGB").resize((w, h), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(6, 14))):
            x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
            x1, y1 = x0 + int(rng.integers(30, w // 3)), y0 + int(rng.integers(30, h // 3))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            if rng.random() < 0.5:
                draw.ellipse((x0, y0, x1, y1), fill=colour)
            else:
                draw.rectangle((x0, y0, x1, y1), fill=colour)
        im = im.filter(ImageFilter.GaussianBlur(1.5))
        noise = rng.normal(0, 6, (h, w, 3))
        arr = np.clip(np.asarray(im, np.float32) + noise, 0, 255).astype(np.uint8)
        out.append(Image.fromarray(arr, "RGB"))
    return out


def load_photo(path: Path) -> Image.Image:
    with Image.open(path) as raw:
        im = raw.convert("RGB")
    if im.width > WORK_WIDTH_PX:
        im = im.resize((WORK_WIDTH_PX, round(im.height * WORK_WIDTH_PX / im.width)),
                       Image.Resampling.LANCZOS)
    return im


def title_card(*, width_px: int = 1280, height_px: int = 720) -> Image.Image:
    """The show's title card: the same picture in every episode (no randomness)."""
    y = np.linspace(0, 1, height_px, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width_px, dtype=np.float32)[None, :]
    r = 20 + 60 * y + 30 * x
    g = 40 + 90 * y * (1 - x) + 20
    b = 90 + 120 * (1 - y) + 20 * np.sin(6 * x)
    arr = np.stack(np.broadcast_arrays(r, g, b), axis=-1).clip(0, 255).astype(np.uint8)
    im = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(im)
    for i in range(9):  # a lighthouse's beams
        a = -0.9 + i * 0.22
        draw.line((width_px * 0.18, height_px * 0.35,
                   width_px * 0.18 + width_px * np.cos(a), height_px * 0.35 + width_px * np.sin(a)),
                  fill=(230, 210, 140), width=3)
    draw.rectangle((width_px * 0.16, height_px * 0.35, width_px * 0.2, height_px * 0.9),
                   fill=(235, 235, 225))
    font = (ImageFont.truetype(str(FONT), height_px // 7) if FONT.exists()
            else ImageFont.load_default())
    draw.text((width_px * 0.3, height_px * 0.4), SHOW_TITLE, fill=(250, 245, 220), font=font)
    return im


# --------------------------------------------------------------------------- shots


def _box(rng: np.random.Generator, zoom: float, aspect: float) -> tuple[float, float, float]:
    """A box of width ``1/zoom`` (fraction of the photo) placed at random inside it."""
    w = 1.0 / zoom
    h = w * aspect  # in fractions of the photo's height, aspect = photo_w/photo_h * 9/16
    h = min(h, 1.0)
    w = h / aspect
    cx = float(rng.uniform(w / 2, 1 - w / 2))
    cy = float(rng.uniform(h / 2, 1 - h / 2))
    return (cx, cy, w)


def _moved(rng: np.random.Generator, box: tuple[float, float, float], aspect: float,
           move: str) -> tuple[float, float, float]:
    cx, cy, w = box
    h = w * aspect
    if move == "zoom":
        w2 = w / float(rng.uniform(1.15, 1.5)) if rng.random() < 0.5 else w
        if w2 == w:  # zoom out: the start is the tighter box
            w2 = min(w * float(rng.uniform(1.15, 1.5)), 1.0, 1.0 / aspect)
        h2 = w2 * aspect
        return (float(np.clip(cx, w2 / 2, 1 - w2 / 2)), float(np.clip(cy, h2 / 2, 1 - h2 / 2)), w2)
    # pan: travel up to 60 % of the box's width in a random direction, inside the photo
    angle = float(rng.uniform(0, 2 * np.pi))
    dist = float(rng.uniform(0.2, 0.6)) * w
    return (float(np.clip(cx + dist * np.cos(angle), w / 2, 1 - w / 2)),
            float(np.clip(cy + dist * np.sin(angle) * 0.5, h / 2, 1 - h / 2)), w)


def plan_shots(*, duration_s: float, photos: Sequence[str], aspects: dict[str, float],
               intro: tuple[float, float] | None, config: VideoConfig,
               rng: np.random.Generator, intro_shots: Sequence[Shot] = ()) -> list[Shot]:
    """The episode's shots: its scenes, with the shared ``intro_shots`` put at ``intro``.

    ``aspects`` maps each photo to its width/height ratio times 9/16 (a 16:9 box of
    width ``w`` is ``w * aspect`` of the photo's height). ``intro_shots`` run from 0 and
    are shifted to ``intro[0]`` (and cut at ``intro[1]``).
    """
    shots: list[Shot] = []
    t = 0.0
    spans = []
    if intro is not None:
        spans = [(intro[0], intro[1])]
    def scenes(t0: float, t1: float) -> None:
        t = t0
        while t < t1 - 1e-6:
            length = float(rng.uniform(config.min_shot_s, config.max_shot_s))
            end = min(t + length, t1)
            if t1 - end < config.min_shot_s:
                end = t1
            photo = photos[int(rng.integers(len(photos)))]
            move = "pan" if rng.random() < 0.6 else "zoom"
            zoom = float(rng.uniform(config.min_zoom, config.max_zoom))
            b0 = _box(rng, zoom, aspects[photo])
            b1 = _moved(rng, b0, aspects[photo], move)
            if move == "zoom" and rng.random() < 0.5:
                b0, b1 = b1, b0
            shots.append(Shot(round(t, 3), round(end, 3), "scene", photo, move, b0, b1))
            t = end
    for a, b in spans:
        scenes(t, a)
        for s in intro_shots:
            if a + s.start_s >= b:
                break
            shots.append(Shot(round(a + s.start_s, 3), round(min(a + s.end_s, b), 3), s.kind,
                              s.photo, s.move, s.box0, s.box1))
        t = b
    scenes(t, duration_s)
    return shots


def plan_intro(*, length_s: float, photos: Sequence[str], aspects: dict[str, float],
               config: VideoConfig) -> list[Shot]:
    """The show's opening: the title card (slow zoom), then a fixed montage. Same for all."""
    rng = np.random.default_rng([config.seed, 7919])
    shots = [Shot(0.0, min(5.0, length_s), "title", "title", "zoom",
                  (0.5, 0.5, 1.0), (0.5, 0.5, 0.9))]
    t = shots[0].end_s
    while t < length_s - 1e-6:
        end = min(t + 3.0, length_s)
        photo = photos[int(rng.integers(len(photos)))]
        b0 = _box(rng, 1.5, aspects[photo])
        b1 = _moved(rng, b0, aspects[photo], "pan")
        shots.append(Shot(t, end, "intro", photo, "pan", b0, b1))
        t = end
    return shots


# --------------------------------------------------------------------------- rendering


def frames(shots: Sequence[Shot], images: dict[str, Image.Image], *, duration_s: float,
           config: VideoConfig) -> Iterator[bytes]:
    """RGB24 frames of the whole episode, ``ceil(duration_s * fps)`` of them."""
    n = int(np.ceil(duration_s * config.fps))
    size = (config.width_px, config.height_px)
    i_shot = 0
    for i in range(n):
        t = i / config.fps
        while i_shot + 1 < len(shots) and t >= shots[i_shot].end_s:
            i_shot += 1
        s = shots[i_shot]
        im = images[s.photo]
        u = 0.0 if s.end_s <= s.start_s else min(max((t - s.start_s) / (s.end_s - s.start_s), 0), 1)
        cx, cy, w = (a + (b - a) * u for a, b in zip(s.box0, s.box1, strict=True))
        bw = w * im.width
        bh = bw * 9 / 16
        x0, y0 = cx * im.width - bw / 2, cy * im.height - bh / 2
        # Nearest at twice the size, then a 2x2 mean: anti-aliased and sub-pixel smooth at
        # a third of a bilinear resize's cost (this loop is the generator's hot spot).
        yield im.resize((2 * size[0], 2 * size[1]), Image.Resampling.NEAREST,
                        box=(x0, y0, x0 + bw, y0 + bh)).reduce(2).tobytes()


def render(out: Path, frame_bytes: Iterator[bytes], *, audio: Path | None,
           duration_s: float, config: VideoConfig) -> None:
    """Encode ``frame_bytes`` (H.264, ultrafast) into ``out``, with ``audio``'s stream copied."""
    cmd = ["ffmpeg", "-nostdin", "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{config.width_px}x{config.height_px}", "-r", f"{config.fps}", "-i", "pipe:0"]
    if audio is not None:
        cmd += ["-i", str(audio), "-map", "0:v", "-map", "1:a:0", "-c:a", "copy"]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", str(config.crf),
            "-pix_fmt", "yuv420p", "-g", str(int(config.fps * 4)), "-t", f"{duration_s:.3f}",
            str(out)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    try:
        for chunk in frame_bytes:
            proc.stdin.write(chunk)
    finally:
        proc.stdin.close()
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg could not write {out.name}: {err.strip()[-300:]}")


def episode_video(out: Path, *, duration_s: float, images: dict[str, Image.Image],
                  episode_photos: Sequence[str], intro: tuple[float, float] | None,
                  intro_shots: Sequence[Shot], audio: Path | None, config: VideoConfig,
                  rng: np.random.Generator) -> EpisodeVideo:
    """Plan and render one episode's video track into ``out``; its shots."""
    aspects = {k: im.width / im.height * 9 / 16 for k, im in images.items()}
    shots = plan_shots(duration_s=duration_s, photos=episode_photos, aspects=aspects,
                       intro=intro, config=config, rng=rng, intro_shots=intro_shots)
    render(out, frames(shots, images, duration_s=duration_s, config=config), audio=audio,
           duration_s=duration_s, config=config)
    return EpisodeVideo(out.name, duration_s, tuple(shots), tuple(episode_photos))


def build_library(episodes: Sequence[tuple[str, float, Path | None, tuple[float, float] | None]],
                  out_dir: Path, *, images: dict[str, Image.Image], config: VideoConfig,
                  ) -> list[EpisodeVideo]:
    """Video for each ``(stem, duration_s, audio, intro span)`` into ``out_dir``.

    ``images`` maps photo keys to pictures; ``title`` is added. Each episode draws
    ``config.photos_per_episode`` of them (seeded by ``config.seed`` and its position);
    the intro montage draws from all of them, the same for every episode.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    keys = sorted(images)
    images = {**images, "title": title_card()}
    aspects = {k: im.width / im.height * 9 / 16 for k, im in images.items()}
    intro_len = max((b - a for _, _, _, span in episodes if span for a, b in [span]), default=0)
    intro_shots = plan_intro(length_s=intro_len, photos=keys, aspects=aspects, config=config)
    made = []
    for i, (stem, duration_s, audio, intro) in enumerate(episodes):
        rng = np.random.default_rng([config.seed, i])
        chosen = [keys[j] for j in rng.choice(len(keys), min(config.photos_per_episode,
                                                             len(keys)), replace=False)]
        made.append(episode_video(out_dir / f"{stem}.mkv", duration_s=duration_s,
                                  images=images, episode_photos=chosen, intro=intro,
                                  intro_shots=intro_shots, audio=audio, config=config, rng=rng))
    return made


def write_manifest(path: Path, videos: Sequence[EpisodeVideo], *, config: VideoConfig,
                   photos: Sequence[str]) -> None:
    path.write_text(json.dumps({
        "config": asdict(config), "photos": list(photos),
        "episodes": [asdict(v) for v in videos]}, indent=1))


def load_manifest(path: Path) -> tuple[VideoConfig, list[EpisodeVideo]]:
    raw = json.loads(path.read_text())
    videos = [EpisodeVideo(e["file"], e["duration_s"], tuple(
        Shot(s["start_s"], s["end_s"], s["kind"], s["photo"], s["move"], tuple(s["box0"]),
             tuple(s["box1"])) for s in e["shots"]), tuple(e["photos"]))
        for e in raw["episodes"]]
    return VideoConfig(**raw["config"]), videos


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.video_corpus", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path, help="the audio corpus (its library/ and manifest.json)")
    ap.add_argument("--out", type=Path, required=True, help="folder to write (never the corpus)")
    ap.add_argument("--part", default="score", choices=[n for n, _ in SPLIT],
                    help="which part of the photo pool the episodes are made of")
    ap.add_argument("--packages", nargs="+", default=list(DEFAULT_PACKAGES))
    ap.add_argument("--photos", type=Path, nargs="*", default=None,
                    help="use these image files instead of the packages' (e.g. held-out ones)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N episodes")
    ap.add_argument("--fps", type=float, default=VideoConfig.fps)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-audio", action="store_true", help="a video track only")
    ap.add_argument("--no-intro", action="store_true",
                    help="no title sequence (outside video: nothing of the show in it)")
    ap.add_argument("--max-duration-s", type=float, default=0.0,
                    help="cut every episode to this length (0: whole episodes)")
    args = ap.parse_args(argv)
    corpus = args.corpus.resolve()
    out = args.out.resolve()
    if out == corpus or corpus in out.parents:
        ap.error("--out must lie beside the corpus, not inside it")
    config = VideoConfig(fps=args.fps, seed=args.seed)
    if args.photos:
        photos = [Photo(p, "given") for p in args.photos]
    else:
        photos = split_photos(package_photos(args.packages))[args.part]
    images = {p.key: load_photo(p.path) for p in photos}
    manifest = json.loads((corpus / "manifest.json").read_text())
    episodes = []
    for e in manifest["episodes"][: args.limit or None]:
        intro = next(((s["start_s"], s["end_s"]) for s in e["segments"] if s["kind"] == "intro"),
                     None)
        duration_s = float(e["duration_s"])
        if args.max_duration_s:
            duration_s = min(duration_s, args.max_duration_s)
        if args.no_intro or (intro and intro[1] > duration_s):
            intro = None
        audio = None if args.no_audio else corpus / "library" / e["file"]
        episodes.append((Path(e["file"]).stem, duration_s, audio, intro))
    t0 = time.perf_counter()
    videos = build_library(episodes, out / "library", images=images, config=config)
    took = time.perf_counter() - t0
    write_manifest(out / "video_manifest.json", videos, config=config, photos=sorted(images))
    hours = sum(v.duration_s for v in videos) / 3600
    print(f"{len(videos)} episodes, {hours:.2f} h of video from {len(images)} photos "
          f"in {took:.0f} s ({took / max(hours, 1e-9) / 60:.1f} min per hour)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
