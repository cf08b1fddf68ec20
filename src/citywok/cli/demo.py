"""A small library made from generated audio: for ``citywok demo`` and the tests.

Each episode opens with the same synthetic theme (so shared material exists), then has
scenes of espeak-ng speech over a synthetic melody bed. Everything comes from one seeded
generator, so the same seed gives the same files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from citywok.analysis.decode import decode, ffmpeg_binary
from citywok.display import plural
from citywok.errors import ConfigError

if TYPE_CHECKING:
    from citywok.result import IdentifyResult

RATE_HZ = 16000
THEME_S = 8.0
_WORDS = (
    "harbor", "light", "signal", "anchor", "river", "engine", "captain", "morning", "station",
    "winter", "garden", "orange", "silver", "thunder", "window", "market", "bridge", "letter",
    "island", "forest", "lantern", "pocket", "shadow", "copper", "violet", "mirror", "ticket",
    "candle", "basket", "rocket", "meadow", "planet",
)
#: (extension, ffmpeg audio arguments, add a video track)
CONTAINERS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    (".mp3", ("-c:a", "libmp3lame", "-b:a", "128k"), False),
    (".ogg", ("-c:a", "libvorbis", "-q:a", "4"), False),
    (".m4a", ("-c:a", "aac", "-b:a", "96k"), False),
    (".mkv", ("-c:a", "libopus", "-b:a", "64k"), True),
    (".flac", ("-c:a", "flac"), False),
    (".webm", ("-c:a", "libopus", "-b:a", "48k"), False),
    (".mp4", ("-c:a", "aac", "-b:a", "96k"), True),
    (".wav", ("-c:a", "pcm_s16le"), False),
)


def melody(rng: np.random.Generator, seconds: float, *, rate_hz: int = RATE_HZ,
           level: float = 0.2) -> npt.NDArray[np.float32]:
    """Notes of a pentatonic scale with a few harmonics and soft envelopes."""
    out = np.zeros(int(seconds * rate_hz), dtype=np.float32)
    pos = 0
    scale = np.array([0, 2, 4, 7, 9, 12, 14, 16, 19, 21])
    base = 196.0 * 2 ** (rng.integers(0, 6) / 12)
    while pos < len(out):
        dur = int(rng.uniform(0.15, 0.5) * rate_hz)
        n = min(dur, len(out) - pos)
        t = np.arange(n) / rate_hz
        f0 = base * 2 ** (rng.choice(scale) / 12)
        note = sum((0.6**h) * np.sin(2 * np.pi * f0 * (h + 1) * t + rng.uniform(0, 6.28))
                   for h in range(4))
        env = np.minimum(1.0, t / 0.02) * np.exp(-t * rng.uniform(1.5, 5.0))
        out[pos : pos + n] += (note * env).astype(np.float32)
        pos += dur
    scaled: npt.NDArray[np.float32] = (out / (np.abs(out).max() + 1e-9) * level).astype(np.float32)
    return scaled


def speech(text: str, *, voice: str = "en", speed_wpm: int = 160,
           rate_hz: int = RATE_HZ) -> npt.NDArray[np.float32]:
    """``text`` spoken by espeak-ng, as float32 at ``rate_hz``."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ConfigError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run([exe, "-v", voice, "-s", str(speed_wpm), "-w", str(wav), text],
                       check=True, capture_output=True)
        return decode(wav, sample_rate_hz=rate_hz, min_duration_s=0.05)


def _sentence(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(_WORDS, size=int(rng.integers(4, 9))))


def episode_audio(rng: np.random.Generator, theme: npt.NDArray[np.float32], *,
                  seconds: float) -> npt.NDArray[np.float32]:
    """Theme, then speech over a melody bed, to ``seconds`` long."""
    body_s = seconds - len(theme) / RATE_HZ
    bed = melody(rng, body_s, level=0.12)
    voices = ("en", "en-us", "en-gb-x-rp", "fr", "es", "de")
    pos = int(rng.uniform(0.3, 1.0) * RATE_HZ)
    while pos < len(bed) - RATE_HZ:
        words = speech(_sentence(rng), voice=str(rng.choice(voices)),
                       speed_wpm=int(rng.integers(130, 190)))
        words = words / (np.abs(words).max() + 1e-9) * 0.35
        n = min(len(words), len(bed) - pos)
        bed[pos : pos + n] += words[:n]
        pos += n + int(rng.uniform(0.3, 1.5) * RATE_HZ)
    audio = np.concatenate([theme, bed])
    return (audio / max(1.0, float(np.abs(audio).max()) / 0.95)).astype(np.float32)


def encode(samples: npt.NDArray[np.float32], path: Path, *, rate_hz: int = RATE_HZ,
           audio_args: tuple[str, ...] = ("-c:a", "pcm_s16le"), video: bool = False,
           filters: str | None = None, metadata: dict[str, str] | None = None) -> Path:
    """Write float32 mono samples to ``path`` with ffmpeg (optionally with a black video)."""
    cmd = [ffmpeg_binary(), "-nostdin", "-y", "-loglevel", "error", "-f", "f32le", "-ar",
           str(rate_hz), "-ac", "1", "-i", "pipe:0"]
    if video:
        dur = len(samples) / rate_hz
        cmd += ["-f", "lavfi", "-i", f"color=c=black:s=64x36:r=5:d={dur:.3f}", "-c:v",
                "libx264" if path.suffix in (".mp4", ".mov") else "libvpx"
                if path.suffix == ".webm" else "mpeg4", "-shortest"]
    if filters:
        cmd += ["-af", filters]
    for k, v in (metadata or {}).items():
        cmd += ["-metadata", f"{k}={v}"]
    cmd += [*audio_args, str(path)]
    subprocess.run(cmd, input=np.ascontiguousarray(samples, np.float32).tobytes(),
                   check=True, capture_output=True)
    return path


@dataclass(frozen=True)
class DemoEpisode:
    path: Path
    season: int
    episode: int
    title: str
    theme_s: float


def make_library(folder: Path, *, episodes: int = 4, seconds: float = 45.0,
                 seed: int = 7, show: str = "Demo Show") -> list[DemoEpisode]:
    """Write ``episodes`` files named ``Show - S01E0n - Title.ext`` into ``folder``.

    Also writes ``truth.json`` with the raw audio's ground truth for tests.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    theme = melody(np.random.default_rng(seed + 1000), THEME_S, level=0.3)
    made: list[DemoEpisode] = []
    truth: list[dict[str, Any]] = []
    for n in range(episodes):
        ext, args, video = CONTAINERS[n % len(CONTAINERS)]
        title = " ".join(w.capitalize() for w in rng.choice(_WORDS, size=2))
        path = folder / f"{show} - S01E{n + 1:02d} - {title}{ext}"
        audio = episode_audio(rng, theme, seconds=seconds)
        encode(audio, path, audio_args=args, video=video)
        np.save(folder / f".raw-{n + 1:02d}.npy", audio)
        made.append(DemoEpisode(path, 1, n + 1, title, THEME_S))
        truth.append({"file": path.name, "season": 1, "episode": n + 1, "title": title,
                      "raw": f".raw-{n + 1:02d}.npy", "theme_s": THEME_S})
    (folder / "truth.json").write_text(json.dumps(truth, indent=1))
    return made


def run_demo(workdir: Path, emit: Callable[[str], None]) -> IdentifyResult:
    """The README's first command: generate, index, identify a distorted clip.

    Says what it does through ``emit`` (a line at a time) and returns the answer.
    """
    from citywok.index import Index
    from citywok.pipeline import drive, identify_file, index_paths

    library = workdir / "library"
    index_dir = workdir / "index"
    if not (library / "truth.json").is_file():
        emit(f"generating a demo library in {library} ...")
        make_library(library)
    with Index.open(index_dir, writable=True) as idx:
        summary = drive(index_paths(idx, [library]))
        emit(f"indexed: {len(summary.added)} added, {len(summary.skipped)} unchanged; "
                      f"{plural(idx.stats().episodes, 'episode')} in {index_dir}")
    truth = json.loads((library / "truth.json").read_text())
    raw = np.load(library / truth[2]["raw"])
    start_s = 21.3
    clip = raw[int(start_s * RATE_HZ) : int((start_s + 5) * RATE_HZ)]
    noisy = clip + np.random.default_rng(1).normal(0, 0.02, len(clip)).astype(np.float32)
    clip_path = workdir / "clip.mp3"
    encode(noisy.astype(np.float32), clip_path, audio_args=("-c:a", "libmp3lame", "-b:a", "32k"),
           filters=f"asetrate={int(RATE_HZ * 1.15)},aresample={RATE_HZ}")
    emit(f"clip: 5 s of {truth[2]['file']} from {start_s} s, played 1.15x fast "
                  "with noise, as a 32 kb/s MP3")
    with Index.open(index_dir) as idx:
        res = identify_file(clip_path, idx)
    if res.match is None:
        emit(f"result: {res.status.value}")
        return res
    m = res.match
    emit(f"result: {res.status.value}: {m.episode.label} at {m.offset_s:.2f} s "
                  f"(confidence {m.confidence:.2f}, speed {m.speed:.2f}x) "
                  f"in {res.elapsed_ms:.0f} ms")
    emit(json.dumps(res.to_json(file=str(clip_path))))
    return res
