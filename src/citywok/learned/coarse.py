"""An inverted-file index over a large reference of learned embeddings (FAISS IVF).

Exact search multiplies every query window with every reference window: 9 ms at 4 h,
0.43 s at 100 h and 2.4 s at 1,000 h (one core). Past a size the reference is
clustered instead (k-means on a sample, one list of rows per centroid) and a query
window reads only the ``nprobe`` lists whose centroids it is nearest: the cost then grows
with the square root of the reference. The clustering is built from the reference's
own codes, so it is the same wherever the index is opened; it is saved beside the index
(a cache: losing it costs only the time to build it again) under the digest of what it
was built from.

FAISS is a well-kept library for exactly this (Facebook's; the picture family uses it
too); it is imported on first use, since small indexes never need it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from citywok.learned.search import Reference

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

#: Rows a chunk dequantises at a time while the lists are filled (64 MB of float32).
CHUNK_ROWS = 262_144
#: Version of the saved file's layout; a different one is rebuilt, never misread.
FORMAT = 1


@dataclass(frozen=True)
class CoarseSpec:
    """How the lists are made: ``lists`` centroids (0: ``lists_per_sqrt`` times the
    square root of the reference's rows), trained on ``train_per_list`` rows each, drawn
    with ``seed``."""

    lists: int
    train_per_list: int
    seed: int

    @classmethod
    def for_rows(cls, rows: int, *, lists_per_sqrt: float, train_per_list: int,
                 seed: int) -> CoarseSpec:
        lists = max(16, int(lists_per_sqrt * math.sqrt(max(rows, 1))))
        return cls(lists=lists, train_per_list=train_per_list, seed=seed)


class Coarse:
    """The reference's rows in ``spec.lists`` lists; :meth:`neighbours` reads a few."""

    def __init__(self, ivf: Any, spec: CoarseSpec, digest: str) -> None:
        self._ivf = ivf
        self.spec = spec
        #: What it was built from (:func:`reference_digest`).
        self.digest = digest

    @property
    def rows(self) -> int:
        return int(self._ivf.ntotal)

    def neighbours(self, query: FloatArray, k: int, *, nprobe: int
                   ) -> tuple[FloatArray, IntArray]:
        """Each query window's ``k`` best reference rows by inner product, as found in
        its ``nprobe`` nearest lists: ``(similarities, rows)``, both ``(m, k)``, best
        first. A window whose lists hold fewer than ``k`` rows repeats its best."""
        self._ivf.nprobe = max(1, min(nprobe, self.spec.lists))
        sims, rows = self._ivf.search(np.ascontiguousarray(query, dtype=np.float32), k)
        missing = rows < 0
        if missing.any():
            rows = np.where(missing, rows[:, :1], rows)
            sims = np.where(missing, sims[:, :1], sims)
        return np.asarray(sims, dtype=np.float32), np.asarray(rows, dtype=np.int64)


def reference_digest(reference: Reference, spec: CoarseSpec) -> str:
    """A name for the lists of this reference made this way (its codes, its episodes'
    bounds and the spec)."""
    h = hashlib.sha256()
    h.update(json.dumps([FORMAT, spec.lists, spec.train_per_list, spec.seed,
                         reference.scale]).encode())
    h.update(np.ascontiguousarray(reference.episode_start).tobytes())
    h.update(np.ascontiguousarray(reference.codes).data)
    return h.hexdigest()


def build_coarse(reference: Reference, spec: CoarseSpec, *, digest: str | None = None
                 ) -> Coarse:
    """Cluster the reference (k-means on a seeded sample) and fill the lists."""
    import faiss  # first use only: small indexes never need it

    codes = reference.codes
    n, dim = codes.shape
    # FAISS warns (on stderr) below 39 training rows a centroid: a tiny reference gets
    # fewer lists rather than a printing core.
    lists = min(spec.lists, max(1, n // 39))
    quantizer = faiss.IndexFlatIP(dim)
    # Rows kept at one byte a dimension, as the reference keeps them: the lists only
    # nominate rows; the search scores them again from the reference's own codes.
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, lists, faiss.ScalarQuantizer.QT_8bit,
                                        faiss.METRIC_INNER_PRODUCT)
    ivf.cp.seed = spec.seed
    ivf.cp.max_points_per_centroid = spec.train_per_list
    rng = np.random.default_rng(spec.seed)
    sample = np.sort(rng.choice(n, size=min(n, lists * spec.train_per_list), replace=False))
    ivf.train(_dequantised(codes[sample], reference.scale))
    for lo in range(0, n, CHUNK_ROWS):
        ivf.add(_dequantised(codes[lo : lo + CHUNK_ROWS], reference.scale))
    return Coarse(ivf, replace(spec, lists=lists),
                  digest if digest is not None else reference_digest(reference, spec))


def _dequantised(codes: npt.NDArray[np.int8], scale: float) -> FloatArray:
    return np.ascontiguousarray(codes, dtype=np.float32) / np.float32(scale)


def save_coarse(coarse: Coarse, folder: Path) -> None:
    """Best effort (a read-only or full disk only means building it again next time):
    the lists under their digest, written aside and renamed in whole."""
    import faiss

    path = folder / f"coarse-{coarse.digest[:32]}.faiss"
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(coarse._ivf, str(tmp))
        os.replace(tmp, path)
        for old in folder.glob("coarse-*.faiss"):
            if old != path:
                old.unlink(missing_ok=True)
    except (OSError, RuntimeError):
        with contextlib.suppress(OSError):
            tmp.unlink()


def load_coarse(folder: Path, spec: CoarseSpec, digest: str, *, rows: int) -> Coarse | None:
    """The saved lists of this digest, if they are there and whole (else None: build)."""
    import faiss

    path = folder / f"coarse-{digest[:32]}.faiss"
    if not path.is_file():
        return None
    try:
        ivf = faiss.read_index(str(path))
    except RuntimeError:  # cut short or not FAISS's: it checks what it reads
        return None
    # Damage FAISS does not notice can only cost answers, never give a wrong one: the
    # lists nominate rows, and every nominated alignment is scored from the reference.
    if int(ivf.ntotal) != rows or not hasattr(ivf, "nlist"):
        return None
    return Coarse(ivf, replace(spec, lists=int(ivf.nlist)), digest)
