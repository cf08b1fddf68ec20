"""Where ingest jobs run: adapters behind one small interface.

An ingest job turns one media file into a :class:`~citywok.analysis.fingerprint.Fingerprint`; the
caller (``pipeline.index_paths``) commits the results to the index itself, on its own
machine, so every adapter gives the same index byte for byte. Adapters:

* :mod:`citywok.ingest.local`: in this process, or a pool of worker processes;
* :mod:`citywok.ingest.dask`: workers of a Dask cluster (optional extra).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from citywok.analysis.fingerprint import Fingerprint
from citywok.errors import CityWokError
from citywok.params import AnalysisParams

#: A decoder that has not finished a file in this long is killed (hour-long episodes
#: decode in well under a minute).
JOB_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class FingerprintJob:
    """One file to fingerprint, with everything the worker needs (picklable)."""

    path: Path
    params: AnalysisParams
    timeout_s: float = JOB_TIMEOUT_S
    #: The index's embedding family, whose sink hears the same decode (None: none).
    embedder: str | None = None
    #: The index's picture family, which reads the file's video stream beside the sound
    #: (None: the index keeps no pictures).
    pictures: str | None = None


#: What a job gives back: its fingerprint, or the error that explains why it has none.
JobOutcome = Fingerprint | CityWokError


class Fingerprinter(Protocol):
    """Runs ingest jobs somewhere and hands back their outcomes."""

    def run(self, jobs: Sequence[FingerprintJob]) -> Iterator[tuple[int, JobOutcome]]:
        """Yield ``(position in jobs, outcome)`` for every job, in completion order.

        Closing the iterator early abandons the jobs not yet done.
        """
        ...

    def close(self) -> None:
        """Release workers; jobs still running are stopped."""
        ...


def run_job(job: FingerprintJob) -> JobOutcome:
    """Run one job here; errors CityWok raises on purpose become the outcome."""
    from concurrent.futures import Future, ThreadPoolExecutor
    from dataclasses import replace

    from citywok import families
    from citywok.analysis.fingerprint import fingerprint_file

    with ThreadPoolExecutor(max_workers=1) as pool:
        # The pictures decode in their own ffmpeg process while the sound decodes here.
        seen: Future[bytes | None] | None = None
        if job.pictures is not None:
            fam = families.pictures(job.pictures)
            if fam.may_have_pictures(job.path):
                seen = pool.submit(fam.analyse_file, job.path)
        try:
            if job.embedder is None:
                fp = fingerprint_file(job.path, job.params, timeout_s=job.timeout_s)
            else:
                sink = families.embedder(job.embedder).reference_sink()
                fp = fingerprint_file(job.path, job.params, timeout_s=job.timeout_s,
                                      listeners=(sink.feed,))
                fp = replace(fp, embedding=sink.finish())
        except CityWokError as exc:
            return exc
        if seen is not None:
            fp = replace(fp, pictures=seen.result() or b"")
        return fp


__all__ = ["JOB_TIMEOUT_S", "FingerprintJob", "Fingerprinter", "JobOutcome", "run_job"]
