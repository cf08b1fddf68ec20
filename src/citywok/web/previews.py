"""The cache of stills and preview clips: each is cut once with :mod:`citywok.web.preview`.

A file's name is a digest of what it shows (the episode's content hash, the moment, the
kind, size and sound), never anything a request said, so no request can name a path.
Files are written whole under a temporary name and renamed into place; when the cache
outgrows its limit the least recently used files go.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from pathlib import Path

from citywok.result import Episode
from citywok.web.preview import Preview, PreviewKind, PreviewSize, make_preview

SUFFIX = {PreviewKind.IMAGE: ".jpg", PreviewKind.VIDEO: ".mp4"}
MEDIA_TYPE = {PreviewKind.IMAGE: "image/jpeg", PreviewKind.VIDEO: "video/mp4"}


class PreviewCache:
    def __init__(self, folder: Path, *, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            if len(self._locks) > 1024:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault(key, threading.Lock())

    @staticmethod
    def key(episode: Episode, *, kind: PreviewKind, at_s: float, size: PreviewSize,
            duration_s: float, sound: bool) -> str:
        what = (f"{episode.content_hash}|{kind.value}|{size.value}|{round(at_s, 1):.1f}|"
                f"{round(duration_s, 1):.1f}|{int(sound)}")
        return hashlib.sha256(what.encode()).hexdigest()[:40]

    def get(self, episode: Episode, *, kind: PreviewKind, at_s: float, size: PreviewSize,
            duration_s: float = 4.0, sound: bool = False) -> Path:
        """The cached file, cut now if it is not there yet (blocking: call on a thread)."""
        key = self.key(episode, kind=kind, at_s=at_s, size=size, duration_s=duration_s,
                       sound=sound)
        path = self.folder / f"{key}{SUFFIX[kind]}"
        with self._lock(key):
            if path.is_file():
                with contextlib.suppress(OSError):
                    os.utime(path)  # recently used
                return path
            self.folder.mkdir(parents=True, exist_ok=True)
            part = self.folder / f".{key}.{uuid.uuid4().hex}.part"
            try:
                made: Preview = make_preview(Path(episode.source_path), part, kind=kind,
                                             at_s=at_s, size=size, duration_s=duration_s,
                                             sound=sound)
                os.replace(made.path, path)
            finally:
                part.unlink(missing_ok=True)
        self._trim()
        return path

    def _trim(self) -> None:
        try:
            files = [(p.stat().st_mtime, p.stat().st_size, p) for p in self.folder.iterdir()
                     if p.is_file() and not p.name.startswith(".")]
        except OSError:
            return
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size
