"""Library hours that match nothing, made of peaks, for the scale benchmark.

Each synthetic episode has the length of a real one and is built of 30 s blocks of
real peaks taken from random library episodes, each block **time-reversed** and either
**pitch-mirrored** inside the analysed band or shifted by a random fraction of a
semitone (half the blocks each). The peaks keep the library's density, pitch spread and
local structure, so hash buckets fill as real hours would fill them, but no real clip
can line up with them: a clip would have to play backwards (and upside down in pitch).

The sketch (one 16-bit band-energy code per ``sketch_frames`` frames) is scrambled
alike: the donor block's codes in reverse order, bit-complemented where the peaks were
pitch-mirrored.

This is the one place that knows the shape of the engine's peaks (``Peaks(frame,
pitch)``, pitch in semitones above ``PITCH_REF_HZ``), of its sketch, and of a store
entry (``NewEpisode``); a new fingerprint format changes :func:`scramble` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from citywok.analysis.fingerprint import Fingerprint, fingerprint_file
from citywok.analysis.peaks import PITCH_REF_HZ, Peaks
from citywok.index import NewEpisode
from citywok.params import AnalysisParams
from citywok.result import Episode

BLOCK_S = 30.0


def library_peaks(files: Sequence[Path], params: AnalysisParams, cache: Path
                  ) -> list[Fingerprint]:
    """Reference fingerprint of each library file (cached in ``cache``)."""
    if cache.is_file():
        data = np.load(cache)
        n = int(data["n"])
        return [Fingerprint(Peaks(data[f"frame{i}"], data[f"pitch{i}"]), data[f"sketch{i}"],
                            float(data[f"dur{i}"])) for i in range(n)]
    out = []
    arrays: dict[str, np.ndarray] = {}
    for i, f in enumerate(files):
        fp = fingerprint_file(f, params)
        out.append(fp)
        arrays[f"frame{i}"], arrays[f"pitch{i}"] = fp.peaks.frame, fp.peaks.pitch
        arrays[f"sketch{i}"] = fp.sketch
        arrays[f"dur{i}"] = np.asarray(fp.duration_s)
    arrays["n"] = np.asarray(len(files))
    savez: Any = np.savez  # its stubs take **arrays for keyword options
    savez(cache, **arrays)
    return out


def scramble(duration_s: float, sources: Sequence[Fingerprint], params: AnalysisParams,
             rng: np.random.Generator) -> tuple[Peaks, npt.NDArray[np.uint16]]:
    """``duration_s`` of peaks and sketch made of reversed, mirrored or shifted blocks of
    ``sources``."""
    frame_s = params.frame_s
    per_code = params.sketch_frames
    block = int(BLOCK_S / frame_s) // per_code * per_code
    total = int(duration_s / frame_s)
    mirror = np.float32(12 * np.log2(params.fmin_hz / PITCH_REF_HZ)
                        + 12 * np.log2(params.fmax_hz / PITCH_REF_HZ))
    frames, pitches, codes = [], [], []
    for pos in range(0, total, block):
        donor = sources[int(rng.integers(len(sources)))]
        peaks = donor.peaks
        span = min(int(peaks.frame[-1]), len(donor.sketch) * per_code) - block
        start = int(rng.integers(0, max(1, span // per_code))) * per_code
        sel = (peaks.frame >= start) & (peaks.frame < start + block)
        frames.append((start + block - 1 - peaks.frame[sel]) + pos)
        block_codes = donor.sketch[start // per_code : (start + block) // per_code][::-1]
        if rng.random() < 0.5:
            pitches.append(mirror - peaks.pitch[sel])
            codes.append(~block_codes)
        else:
            pitches.append(peaks.pitch[sel] + np.float32(rng.uniform(-0.5, 0.5)))
            codes.append(block_codes)
    fr = np.concatenate(frames).astype(np.int32)
    pi = np.concatenate(pitches).astype(np.float32)
    keep = fr < total
    fr, pi = fr[keep], pi[keep]
    order = np.lexsort((pi, fr))
    sketch = np.zeros(total // per_code, dtype=np.uint16)
    joined = np.concatenate(codes).astype(np.uint16)[: len(sketch)]
    sketch[: len(joined)] = joined
    return Peaks(fr[order], pi[order]), sketch


def synthetic_copy(copy: int, library: Sequence[Fingerprint], params: AnalysisParams,
                   seed: int) -> list[NewEpisode]:
    """Copy number ``copy`` (1, 2, ...) of the library: one synthetic episode per real
    one, the same length; the same ``copy`` and ``seed`` always give the same peaks."""
    rng = np.random.default_rng([seed, copy])
    items = []
    for e, fp in enumerate(library):
        key = f"synthetic-{copy}-{e}"
        duration_s = fp.duration_s
        peaks, sketch = scramble(duration_s, library, params, rng)
        items.append(NewEpisode(
            episode=Episode(episode_id=key, show="Synthetic", season=None, episode=None,
                            title=None, duration_s=round(duration_s, 3),
                            source_path=f"synthetic/{key}", content_hash=key),
            peaks=peaks, sketch=sketch, file_size=0, file_mtime_ns=0))
    return items
