"""Library hours that match nothing, made of peaks, for the scale benchmark.

Each synthetic episode has the length of a real one and is built of 30 s blocks of
real peaks taken from random library episodes, each block **time-reversed** and either
**pitch-mirrored** inside the analysed band or shifted by a random fraction of a
semitone (half the blocks each). The peaks keep the library's density, pitch spread and
local structure, so hash buckets fill as real hours would fill them, but no real clip
can line up with them: a clip would have to play backwards (and upside down in pitch).

This is the one place that knows the shape of the engine's peaks (``Peaks(frame,
pitch)``, pitch in semitones above ``PITCH_REF_HZ``) and of a store entry
(``NewEpisode``); a new peak format changes :func:`scramble` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from citywok.fingerprint import fingerprint_file
from citywok.index import NewEpisode
from citywok.params import AnalysisParams
from citywok.peaks import PITCH_REF_HZ, Peaks
from citywok.result import Episode

BLOCK_S = 30.0


def library_peaks(files: Sequence[Path], params: AnalysisParams, cache: Path
                  ) -> list[tuple[Peaks, float]]:
    """Reference peaks and duration of each library file (cached in ``cache``)."""
    if cache.is_file():
        data = np.load(cache)
        n = int(data["n"])
        return [(Peaks(data[f"frame{i}"], data[f"pitch{i}"]), float(data[f"dur{i}"]))
                for i in range(n)]
    out = []
    arrays: dict[str, np.ndarray] = {}
    for i, f in enumerate(files):
        fp = fingerprint_file(f, params)
        out.append((fp.peaks, fp.duration_s))
        arrays[f"frame{i}"], arrays[f"pitch{i}"] = fp.peaks.frame, fp.peaks.pitch
        arrays[f"dur{i}"] = np.asarray(fp.duration_s)
    arrays["n"] = np.asarray(len(files))
    savez: Any = np.savez  # its stubs take **arrays for keyword options
    savez(cache, **arrays)
    return out


def scramble(duration_s: float, sources: Sequence[Peaks], params: AnalysisParams,
             rng: np.random.Generator) -> Peaks:
    """``duration_s`` of peaks made of reversed, mirrored or shifted blocks of ``sources``."""
    frame_s = params.frame_s
    block = int(BLOCK_S / frame_s)
    total = int(duration_s / frame_s)
    mirror = np.float32(12 * np.log2(params.fmin_hz / PITCH_REF_HZ)
                        + 12 * np.log2(params.fmax_hz / PITCH_REF_HZ))
    frames, pitches = [], []
    for pos in range(0, total, block):
        donor = sources[int(rng.integers(len(sources)))]
        start = int(rng.integers(0, max(1, int(donor.frame[-1]) - block)))
        sel = (donor.frame >= start) & (donor.frame < start + block)
        frames.append((start + block - 1 - donor.frame[sel]) + pos)
        pitches.append(mirror - donor.pitch[sel] if rng.random() < 0.5
                       else donor.pitch[sel] + np.float32(rng.uniform(-0.5, 0.5)))
    fr = np.concatenate(frames).astype(np.int32)
    pi = np.concatenate(pitches).astype(np.float32)
    keep = fr < total
    fr, pi = fr[keep], pi[keep]
    order = np.lexsort((pi, fr))
    return Peaks(fr[order], pi[order])


def synthetic_copy(copy: int, library: Sequence[tuple[Peaks, float]], params: AnalysisParams,
                   seed: int) -> list[NewEpisode]:
    """Copy number ``copy`` (1, 2, ...) of the library: one synthetic episode per real
    one, the same length; the same ``copy`` and ``seed`` always give the same peaks."""
    rng = np.random.default_rng([seed, copy])
    sources = [p for p, _ in library]
    items = []
    for e, (_, duration_s) in enumerate(library):
        key = f"synthetic-{copy}-{e}"
        items.append(NewEpisode(
            episode=Episode(episode_id=key, show="Synthetic", season=None, episode=None,
                            title=None, duration_s=round(duration_s, 3),
                            source_path=f"synthetic/{key}", content_hash=key),
            peaks=scramble(duration_s, sources, params, rng), file_size=0, file_mtime_ns=0))
    return items
