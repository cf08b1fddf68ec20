"""A still and a short clip of a moment of an episode, cut from its file with ffmpeg.

What a person sees next to an answer: the picture at the matched time, and a few seconds
of the scene (muted unless asked). An episode with no picture (an audio-only source) gets
a drawing of its sound instead: the waveform of the same moment, as a still or as a clip,
so every answer has something true to show.

Pure functions over paths: the caller chooses the source (from the catalogue, never from
a request) and where the result goes; nothing here prints, caches or reads settings.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from citywok.analysis.decode import ffmpeg_binary, input_url
from citywok.errors import CorruptMediaError, LibraryError


class PreviewKind(StrEnum):
    #: A JPEG still at the moment.
    IMAGE = "image"
    #: An MP4 (H.264) clip of the scene.
    VIDEO = "video"


class PreviewSize(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"

    @property
    def width_px(self) -> int:
        return 320 if self is PreviewSize.SMALL else 640


#: Colour of the drawn waveform (the page's accent) and of its background.
WAVE_COLOUR = "0xf5a524"
WAVE_BACKGROUND = "0x1d2433"


@dataclass(frozen=True)
class Preview:
    path: Path
    kind: PreviewKind
    #: True when the source has no picture and the sound was drawn instead.
    drawn: bool


def has_video(source: Path, *, timeout_s: float = 20.0) -> bool:
    """Whether ``source`` has a real picture (a video stream that is not cover art)."""
    cmd = [shutil.which("ffprobe") or "ffprobe", "-v", "error", "-protocol_whitelist", "file",
           "-show_entries", "stream=codec_type:stream_disposition=attached_pic",
           "-of", "json", input_url(source)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
        streams = json.loads(proc.stdout or b"{}").get("streams") or []
    except (subprocess.TimeoutExpired, OSError, ValueError):
        raise CorruptMediaError(f"{source.name}: could not be examined") from None
    return any(s.get("codec_type") == "video"
               and not (s.get("disposition") or {}).get("attached_pic") for s in streams)


def make_preview(source: Path, out: Path, *, kind: PreviewKind, at_s: float,
                 size: PreviewSize = PreviewSize.SMALL, duration_s: float = 4.0,
                 sound: bool = False, timeout_s: float = 60.0) -> Preview:
    """Cut a still (at ``at_s``) or a clip (``duration_s`` from ``at_s``) into ``out``.

    ``out``'s suffix is not looked at: a still is JPEG, a clip MP4. The clip is muted
    unless ``sound``. Raises :class:`LibraryError` when the source is gone and
    :class:`CorruptMediaError` when ffmpeg cannot cut it.
    """
    if not source.is_file():
        raise LibraryError(f"{source.name}: the episode's file is no longer in the library")
    at_s = max(0.0, at_s)
    width = size.width_px
    drawn = not has_video(source, timeout_s=timeout_s)
    cmd = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
           "-threads", "1", "-protocol_whitelist", "file"]
    # Seek before the input: fast, and exact to the frame with re-encoding.
    cmd += ["-ss", f"{at_s:.3f}"]
    if kind is PreviewKind.IMAGE:
        if drawn:
            height = width * 9 // 16
            cmd += ["-t", "4", "-i", input_url(source), "-filter_complex",
                    f"[0:a:0]aformat=channel_layouts=mono,showwavespic=s={width}x{height}:"
                    f"colors={WAVE_COLOUR}:scale=sqrt,pad=iw:ih:0:0:color={WAVE_BACKGROUND},"
                    f"format=yuvj420p[v]", "-map", "[v]"]
        else:
            cmd += ["-i", input_url(source), "-map", "0:v:0", "-vf",
                    f"scale={width}:-2:flags=bicubic,format=yuvj420p"]
        cmd += ["-frames:v", "1", "-q:v", "4", "-f", "mjpeg", str(out)]
    else:
        cmd += ["-t", f"{max(0.5, duration_s):.3f}", "-i", input_url(source)]
        if drawn:
            height = width * 9 // 16
            cmd += ["-filter_complex",
                    f"[0:a:0]aformat=channel_layouts=mono,showwaves=s={width}x{height}:"
                    f"mode=cline:rate=15:colors={WAVE_COLOUR}:scale=sqrt,"
                    f"format=yuv420p[v]", "-map", "[v]"]
        else:
            cmd += ["-map", "0:v:0", "-vf", f"scale={width}:-2,format=yuv420p", "-r", "24"]
        if sound:
            cmd += ["-map", "0:a:0?", "-c:a", "aac", "-b:a", "64k", "-ac", "1"]
        else:
            cmd += ["-an"]
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "30",
                "-movflags", "+faststart", "-f", "mp4", str(out)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        out.unlink(missing_ok=True)
        raise CorruptMediaError(f"{source.name}: the preview took longer than "
                                f"{timeout_s:g} s") from None
    if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        out.unlink(missing_ok=True)
        first = next((ln for ln in proc.stderr.decode("utf-8", "replace").splitlines()
                      if ln.strip()), "ffmpeg failed")
        raise CorruptMediaError(f"{source.name}: no preview at {at_s:.1f} s ({first[:160]})")
    return Preview(path=out, kind=kind, drawn=drawn)
