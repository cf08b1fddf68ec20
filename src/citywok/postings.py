"""Hash → values lookup table in CSR form (the in-memory and on-disk shape of an index
segment's postings).

``offsets[h] : offsets[h + 1]`` is the slice of ``values`` holding hash ``h``. Storing the
hash implicitly in the position costs 4 bytes per possible hash once, and saves 4 bytes
per posting.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from citywok.hashes import HASH_BITS


def build_csr(hashes: npt.NDArray[np.uint32], values: npt.NDArray[np.uint32]) -> tuple[
    npt.NDArray[np.uint32], npt.NDArray[np.uint32]
]:
    """Group ``values`` by ``hashes``; returns ``(offsets, values_sorted)``."""
    order = np.argsort(hashes, kind="stable")
    counts = np.bincount(hashes, minlength=1 << HASH_BITS)
    offsets = np.zeros((1 << HASH_BITS) + 1, dtype=np.uint32)
    np.cumsum(counts, out=offsets[1:])
    return offsets, values[order]


def lookup(offsets: npt.NDArray[np.uint32], values: npt.NDArray[np.uint32],
           hashes: npt.NDArray[np.uint32]) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]:
    """All values stored under each of ``hashes``.

    Returns the values and, for each, the position in ``hashes`` it answered.
    """
    starts = offsets[hashes].astype(np.int64)
    counts = offsets[hashes + 1].astype(np.int64) - starts
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.uint32), np.empty(0, np.int64)
    owner = np.repeat(np.arange(len(hashes), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    pos = np.arange(total, dtype=np.int64) - np.repeat(first - starts, counts)
    return values[pos], owner
