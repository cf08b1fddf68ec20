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
    from dataclasses import replace

    from citywok import families
    from citywok.analysis.fingerprint import fingerprint_file

    try:
        if job.embedder is None:
            return fingerprint_file(job.path, job.params, timeout_s=job.timeout_s)
        sink = families.embedder(job.embedder).reference_sink()
        fp = fingerprint_file(job.path, job.params, timeout_s=job.timeout_s,
                              listeners=(sink.feed,))
        return replace(fp, embedding=sink.finish())
    except CityWokError as exc:
        return exc


__all__ = ["JOB_TIMEOUT_S", "FingerprintJob", "Fingerprinter", "JobOutcome", "run_job"]
