"""A whole media file → its reference peaks, decoded in a stream (the ingest stage).

This is the work one ingest job does; it runs wherever an ingest adapter puts it (this
process, a pool of processes, a Dask worker), so it takes only picklable parameters and
returns plain arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from citywok.analysis import sketch
from citywok.analysis.decode import SILENCE_PEAK, MediaInfo, duration_shortfall, iter_decode, probe
from citywok.analysis.peaks import Peaks, PeakStream
from citywok.errors import CorruptMediaError, EmptyMediaError, MediaError, SilentMediaError
from citywok.params import AnalysisParams


@dataclass(frozen=True)
class Fingerprint:
    """What the index keeps of one recording: its peaks, its sketch, its length, and
    the embeddings of an embedding family when the index has one."""

    peaks: Peaks
    #: One sketch code per ``params.sketch_frames`` frames (see :mod:`citywok.analysis.sketch`).
    sketch: npt.NDArray[np.uint16]
    duration_s: float
    #: ``(windows, dim)`` reference embeddings; ``(0, 0)`` when none were made.
    embedding: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    #: The picture family's file of the recording's video (empty: none).
    pictures: bytes = b""


def fingerprint_file(path: str | Path, params: AnalysisParams, *,
                     timeout_s: float | None = None,
                     listeners: Sequence[Callable[[npt.NDArray[np.float32]], None]] = (),
                     ) -> Fingerprint:
    """Decode a (long) file in a stream and return its reference peaks.

    Memory stays bounded by the stream's block and what is kept: peaks and sketch
    energies, a few hundred bytes per second of audio. Audio that ends well before the
    duration the file's container states is refused: an episode stored cut short would
    never be found past the cut, and would look whole.
    """
    stream = PeakStream(params=params, peak_params=params.index_peaks)
    parts: list[Peaks] = []
    loudest = 0.0
    # The container is read while the audio decodes (ffprobe's start costs as much as a
    # short file's decode).
    with ThreadPoolExecutor(max_workers=1) as pool:
        probed = pool.submit(_probe_or_none, path)
        for chunk in iter_decode(path, sample_rate_hz=params.sample_rate_hz, chunk_s=8.0,
                                 timeout_s=timeout_s):
            if len(chunk):
                loudest = max(loudest, float(np.max(np.abs(chunk))))
            parts.append(stream.feed(chunk))
            for listen in listeners:
                listen(chunk)
        parts.append(stream.finish())
        info = probed.result()
    n = stream.samples_seen
    name = Path(path).name
    if n == 0:
        raise EmptyMediaError(f"{name}: contains no audio")
    if loudest < SILENCE_PEAK:
        raise SilentMediaError(f"{name}: the audio is silent")
    short = None if info is None else duration_shortfall(n / params.sample_rate_hz, info)
    if short is not None:
        raise CorruptMediaError(f"{name}: the audio ends early ({short})")
    codes = sketch.codes_from_energies(stream.band_energies(),
                                       frames_per_code=params.sketch_frames)
    return Fingerprint(peaks=Peaks.concat(parts), sketch=codes,
                       duration_s=n / params.sample_rate_hz)


def _probe_or_none(path: str | Path) -> MediaInfo | None:
    """The container's description; ``None`` when ffprobe cannot say (the decode, which
    read the file, is then taken at its word)."""
    try:
        return probe(path)
    except MediaError:
        return None
