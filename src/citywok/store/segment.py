"""Segment files: immutable, memory-mapped, checksummed, never pickled.

A segment holds a batch of episodes: their postings (hash → values, in CSR form over the
hash's top ``dir_bits`` bits), their peaks, and their sketches. Layout (little-endian)::

    0   8 bytes  magic b"CWSEGMNT"
    8   u32      format version (SEGMENT_VERSION)
    12  u32      header length H
    16  H bytes  JSON header: analysis parameters, hash family and bits, directory bits,
                 episode keys, and for each array its offset, dtype and length
    ... arrays, each 64-byte aligned:
        directory             u32[2**dir_bits + 1]  CSR row starts (row = mixed hash's top bits)
        values                u32[n_postings]       the family's value layout
        check                 u8[n_postings]        the mixed hash's low byte
        peak_frame            i32[n_peaks]          frame of each peak, per episode from 0
        peak_pitch            u16[n_peaks]          pitch * PITCH_STORE_SCALE (semitones)
        episode_peak_start    i64[n_episodes + 1]   first peak of each episode
        sketch                u16[n_codes]          sketch codes (citywok.analysis.sketch)
        episode_sketch_start  i64[n_episodes + 1]   first code of each episode
        embedding             i8[n_windows * dim]   an embedding family's vectors, as
                                                    round(x * embedding_scale) (format 3)
        episode_embedding_start i64[n_episodes + 1] first window of each episode

A hash is first *mixed* (multiplied by an odd constant, modulo 2**32) so that rows fill
evenly however skewed the hashes are; its top ``dir_bits`` pick the row and its low
byte is stored beside each posting, so a lookup reads its row and keeps the postings
whose byte matches (all but 1 in 256 of the others go without touching the peaks). The
directory's width follows the segment's size (four to eight postings per row): a small
segment does not pay for a table sized for a thousand hours.

The SHA-256 of the whole file is recorded in the catalogue when the segment is
committed, and checked when the segment is opened: a damaged file is refused whole.
"""

from __future__ import annotations

import errno
import hashlib
import json
import mmap
import os
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import numpy.typing as npt

from citywok.analysis.peaks import Peaks
from citywok.errors import IndexFormatError, IndexStoreError, IndexWriteError
from citywok.params import AnalysisParams

MAGIC = b"CWSEGMNT"


class PostingsLayout(Protocol):
    """What the store needs of the evidence family whose postings it keeps: its name and
    hash width for the header, how many peaks a value can name, and how a recording's
    peaks become postings. The family module satisfies it; the store never imports one."""

    NAME: str
    HASH_BITS: int
    MAX_PEAK_INDEX: int

    def reference_hashes(self, peaks: Peaks, params: AnalysisParams, *, first_peak: int = 0
                         ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]: ...

    def check_params(self, params: AnalysisParams) -> list[str]: ...


#: 1: triplets over 18 bits with a full table (CityWok 0.1); 2: hash families, sized
#: directory, sketches; 3: embeddings beside them. Format 2 is still read (no embeddings).
SEGMENT_VERSION = 3
_READABLE = (2, 3)
PITCH_STORE_SCALE = 64
_ALIGN = 64
_ARRAYS = ("directory", "values", "check", "peak_frame", "peak_pitch", "episode_peak_start",
           "sketch", "episode_sketch_start", "embedding", "episode_embedding_start")
_V3_ARRAYS = ("embedding", "episode_embedding_start")
_INT8_LIMIT = 127
_DTYPES = {"directory": "<u4", "values": "<u4", "check": "u1", "peak_frame": "<i4",
           "peak_pitch": "<u2", "episode_peak_start": "<i8", "sketch": "<u2",
           "episode_sketch_start": "<i8", "embedding": "i1", "episode_embedding_start": "<i8"}
#: Odd multiplier (2**32 / golden ratio) that mixes a hash before it picks its row.
MIX = np.uint32(0x9E3779B1)
#: Smallest and largest directory (bits).
MIN_DIR_BITS = 10
MAX_DIR_BITS = 24
REBUILD_HINT = "run `citywok index --rebuild FOLDER` to rebuild it"


def mix(hashes: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """The mixed hash: a bijection of 32-bit values that spreads skewed hashes evenly."""
    with np.errstate(over="ignore"):
        return np.asarray(hashes.astype(np.uint32) * MIX, dtype=np.uint32)


def row_and_check(hashes: npt.NDArray[np.uint32], dir_bits: int
                  ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """Directory row and check byte of each hash."""
    m = mix(hashes)
    return ((m >> np.uint32(32 - dir_bits)).astype(np.int64),
            (m & np.uint32(0xFF)).astype(np.uint8))


def dir_bits_for(n_postings: int) -> int:
    """Directory width for a segment of ``n_postings``: four to eight postings per row
    (a row costs 4 bytes, a posting 5; the check byte keeps the reading cheap)."""
    want = int(np.floor(np.log2(max(n_postings, 1) / 4.0))) if n_postings > 4 else 0
    return int(min(MAX_DIR_BITS, max(MIN_DIR_BITS, want)))


@dataclass(frozen=True)
class EpisodeData:
    """What a segment stores of one episode."""

    peaks: Peaks
    sketch: npt.NDArray[np.uint16]
    #: ``(windows, dim)`` float32; ``(0, 0)`` when the episode has none.
    embedding: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros((0, 0), dtype=np.float32))


@dataclass
class Segment:
    """A memory-mapped segment (satisfies ``hashes.PeakTable``)."""

    path: Path
    dir_bits: int
    directory: npt.NDArray[np.uint32]
    values: npt.NDArray[np.uint32]
    check: npt.NDArray[np.uint8]
    peak_frame: npt.NDArray[np.int32]
    peak_pitch: npt.NDArray[np.uint16]
    episode_peak_start: npt.NDArray[np.int64]
    sketch: npt.NDArray[np.uint16]
    episode_sketch_start: npt.NDArray[np.int64]
    episode_keys: npt.NDArray[np.int64]
    nbytes: int
    #: ``(windows, embedding_dim)`` int8 codes; x = code / embedding_scale.
    embedding: npt.NDArray[np.int8] = field(
        default_factory=lambda: np.zeros((0, 0), dtype=np.int8))
    episode_embedding_start: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(1, dtype=np.int64))
    embedding_scale: float = 1.0
    pitch_unit: float = 1.0 / PITCH_STORE_SCALE
    _mmap: mmap.mmap | None = None

    def local(self, episode_key: int) -> int | None:
        """Position of an episode in this segment, or None."""
        where = np.flatnonzero(self.episode_keys == episode_key)
        return int(where[0]) if len(where) else None

    def episode_peaks(self, local: int) -> Peaks:
        lo, hi = int(self.episode_peak_start[local]), int(self.episode_peak_start[local + 1])
        return Peaks(
            frame=np.asarray(self.peak_frame[lo:hi], dtype=np.int32),
            pitch=self.peak_pitch[lo:hi].astype(np.float32) / np.float32(PITCH_STORE_SCALE),
        )

    def episode_sketch(self, local: int) -> npt.NDArray[np.uint16]:
        lo = int(self.episode_sketch_start[local])
        hi = int(self.episode_sketch_start[local + 1])
        return self.sketch[lo:hi]

    def episode_embedding(self, local: int) -> npt.NDArray[np.float32]:
        """An episode's embeddings ``(windows, dim)`` (empty when it has none)."""
        if len(self.episode_embedding_start) != len(self.episode_keys) + 1:
            return np.zeros((0, 0), dtype=np.float32)
        lo = int(self.episode_embedding_start[local])
        hi = int(self.episode_embedding_start[local + 1])
        return self.embedding[lo:hi].astype(np.float32) / np.float32(self.embedding_scale)

    def episode_data(self, local: int) -> EpisodeData:
        return EpisodeData(self.episode_peaks(local), np.array(self.episode_sketch(local)),
                           self.episode_embedding(local))

    def close(self) -> None:
        # Arrays may still view the map; dropping our reference lets it go with them.
        self._mmap = None


def build_postings(hashes: npt.NDArray[np.uint32], values: npt.NDArray[np.uint32],
                   dir_bits: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32],
                                           npt.NDArray[np.uint8]]:
    """Group ``values`` by directory row: ``(directory, values, check)``, where
    ``directory[r] : directory[r + 1]`` are the values (and check bytes) of row ``r``."""
    rows, check = row_and_check(hashes, dir_bits)
    order = np.argsort(rows, kind="stable")
    counts = np.bincount(rows, minlength=1 << dir_bits)
    directory = np.zeros((1 << dir_bits) + 1, dtype=np.uint32)
    np.cumsum(counts, out=directory[1:])
    return directory, values[order], check[order]


def write_segment(path: Path, *, params: AnalysisParams, layout: PostingsLayout,
                  episode_keys: Sequence[int], episodes: Sequence[EpisodeData]) -> str:
    """Write a segment for these episodes atomically; returns its SHA-256.

    On any write failure (a full disk, a read-only folder) the temporary file is removed
    and :class:`IndexWriteError` says what happened; nothing else changes.
    """
    hashes_parts, values_parts, starts, sk_starts = [], [], [0], [0]
    for ep in episodes:
        h, v = layout.reference_hashes(ep.peaks, params, first_peak=starts[-1])
        hashes_parts.append(h)
        values_parts.append(v)
        starts.append(starts[-1] + len(ep.peaks))
        sk_starts.append(sk_starts[-1] + len(ep.sketch))
    if starts[-1] > layout.MAX_PEAK_INDEX:
        raise ValueError("too many peaks for one segment")
    all_hashes = np.concatenate(hashes_parts) if hashes_parts else np.empty(0, np.uint32)
    all_values = np.concatenate(values_parts) if values_parts else np.empty(0, np.uint32)
    dir_bits = dir_bits_for(len(all_values))
    directory, values, check = build_postings(all_hashes, all_values, dir_bits)

    def cat(parts: list[npt.NDArray[Any]], dtype: str) -> npt.NDArray[Any]:
        return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype)

    embedding, emb_starts, emb_scale, emb_dim = _quantised_embeddings(episodes)

    arrays: dict[str, npt.NDArray[Any]] = {
        "directory": directory,
        "values": values.astype("<u4"),
        "check": check,
        "peak_frame": cat([e.peaks.frame for e in episodes], "<i4"),
        "peak_pitch": np.clip(np.round(cat([e.peaks.pitch for e in episodes], "<f4")
                                       * PITCH_STORE_SCALE), 0, 65535).astype("<u2"),
        "episode_peak_start": np.asarray(starts, dtype="<i8"),
        "sketch": cat([e.sketch for e in episodes], "<u2"),
        "episode_sketch_start": np.asarray(sk_starts, dtype="<i8"),
        "embedding": embedding.reshape(-1),
        "episode_embedding_start": emb_starts,
    }
    array_specs: dict[str, dict[str, Any]] = {}
    header = {
        "format_version": SEGMENT_VERSION,
        "params": params.to_dict(),
        "hash_family": layout.NAME,
        "hash_bits": layout.HASH_BITS,
        "dir_bits": dir_bits,
        "pitch_store_scale": PITCH_STORE_SCALE,
        "episode_keys": [int(k) for k in episode_keys],
        "embedding_dim": emb_dim,
        "embedding_scale": emb_scale,
        "arrays": array_specs,
    }
    # Two passes: the header's length depends on the offsets it records.
    for _ in range(2):
        blob = json.dumps(header, sort_keys=True).encode()
        pos = _align(16 + len(blob) + 256)
        for name in _ARRAYS:
            arr = arrays[name]
            array_specs[name] = {"offset": pos, "dtype": _DTYPES[name], "count": int(arr.size)}
            pos = _align(pos + arr.nbytes)
    blob = json.dumps(header, sort_keys=True).encode()
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as fh:
            _write(fh, digest, MAGIC + struct.pack("<II", SEGMENT_VERSION, len(blob)) + blob)
            for name in _ARRAYS:
                _write(fh, digest, b"\0" * (array_specs[name]["offset"] - fh.tell()))
                _write(fh, digest, arrays[name].tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(exc, path.parent.parent) from None
    return digest.hexdigest()


def _quantised_embeddings(episodes: Sequence[EpisodeData]) -> tuple[
        npt.NDArray[np.int8], npt.NDArray[np.int64], float, int]:
    """The episodes' embeddings as one int8 table (the largest component maps to 127),
    each episode's first row, the scale and the width. Episodes without embeddings
    own no rows; embeddings of different widths cannot share a segment."""
    dims = {e.embedding.shape[1] for e in episodes if e.embedding.size}
    if len(dims) > 1:
        raise ValueError("embeddings of different widths in one segment")
    dim = dims.pop() if dims else 0
    rows = [e.embedding if e.embedding.size else np.zeros((0, dim), np.float32)
            for e in episodes]
    starts = np.zeros(len(episodes) + 1, dtype="<i8")
    starts[1:] = np.cumsum([len(r) for r in rows])
    if not dim:
        return np.zeros((0, 0), np.int8), starts, 1.0, 0
    stacked = np.concatenate(rows).astype(np.float32)
    scale = _INT8_LIMIT / max(float(np.abs(stacked).max()), 1e-6)
    codes = np.clip(np.rint(stacked * scale), -_INT8_LIMIT, _INT8_LIMIT).astype(np.int8)
    return codes, starts, float(scale), dim


def write_error(exc: OSError, where: Path) -> IndexWriteError:
    """A plain sentence for an OS error met while writing the index at ``where``."""
    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }.get(exc.errno or 0, exc.strerror or "write failed")
    return IndexWriteError(f"cannot write the index at {where}: {reason}; the index is "
                           "unchanged")


def _write(fh: IO[bytes], digest: Any, data: bytes) -> None:
    fh.write(data)
    digest.update(data)


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_segment(path: Path, *, params: AnalysisParams, layout: PostingsLayout | None,
                 sha256: str | None = None) -> Segment:
    """Memory-map a segment, checking its checksum (when given), magic, version,
    parameters, postings layout (unless ``layout`` is None: a structural check only) and
    the consistency of its arrays. Any fault is an
    :class:`IndexFormatError` naming the file; no damaged array is ever returned."""
    name = path.name
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed just below
    except OSError as exc:
        raise IndexFormatError(f"segment {name} cannot be opened ({exc.strerror})") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 16:
            raise IndexFormatError(f"segment {name} is truncated")
        if sha256 is not None:
            got = hashlib.file_digest(fh, "sha256").hexdigest()
            if got != sha256:
                raise IndexFormatError(f"segment {name} is damaged (its checksum does not "
                                       "match the catalogue)")
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if mm[:8] != MAGIC:
        raise IndexFormatError(f"{name} is not a CityWok segment")
    version, hlen = struct.unpack("<II", mm[8:16])
    if version not in _READABLE:
        raise IndexFormatError(f"segment {name} has format {version}; this CityWok reads "
                               f"{', '.join(map(str, _READABLE))}: {REBUILD_HINT}")
    try:
        header = json.loads(bytes(mm[16 : 16 + hlen]))
        stored = AnalysisParams.from_dict(header["params"])
        keys = np.asarray(header["episode_keys"], dtype=np.int64)
        dir_bits = int(header["dir_bits"])
        specs = {n: header["arrays"][n] for n in _ARRAYS
                 if version >= 3 or n not in _V3_ARRAYS}
        emb_dim = int(header.get("embedding_dim", 0))
        emb_scale = float(header.get("embedding_scale", 1.0))
        family_ok = layout is None or (header["hash_family"] == layout.NAME
                                       and header["hash_bits"] == layout.HASH_BITS)
    except (ValueError, KeyError, TypeError, IndexFormatError):
        raise IndexFormatError(f"segment {name} has a damaged header") from None
    params.require_same(stored)
    if not family_ok or not MIN_DIR_BITS <= dir_bits <= MAX_DIR_BITS:
        raise IndexFormatError(f"segment {name} uses another hash layout: {REBUILD_HINT}")
    arrays: dict[str, npt.NDArray[Any]] = {}
    for arr_name, spec in specs.items():
        try:
            dtype = np.dtype(spec["dtype"])
            offset, count = int(spec["offset"]), int(spec["count"])
        except (KeyError, TypeError, ValueError):
            raise IndexFormatError(f"segment {name} has a damaged header") from None
        if dtype.str != np.dtype(_DTYPES[arr_name]).str or offset < 16 + hlen or count < 0:
            raise IndexFormatError(f"segment {name} has a damaged header")
        if offset + dtype.itemsize * count > size:
            raise IndexFormatError(f"segment {name} is truncated")
        arrays[arr_name] = np.frombuffer(mm, dtype=dtype, count=count, offset=offset)
    if version < 3:
        arrays["embedding"] = np.zeros(0, dtype=np.int8)
        arrays["episode_embedding_start"] = np.zeros(len(keys) + 1, dtype=np.int64)
    _check_consistent(name, arrays, dir_bits, len(keys))
    if emb_dim < 0 or not np.isfinite(emb_scale) or emb_scale <= 0 or (
            emb_dim == 0 and len(arrays["embedding"])) or (
            emb_dim and len(arrays["embedding"]) % emb_dim) or int(
            arrays["episode_embedding_start"][-1]) != len(arrays["embedding"]) // max(emb_dim, 1):
        raise IndexFormatError(f"segment {name} is inconsistent")
    return Segment(
        path=path, dir_bits=dir_bits,
        directory=arrays["directory"], values=arrays["values"], check=arrays["check"],
        peak_frame=arrays["peak_frame"], peak_pitch=arrays["peak_pitch"],
        episode_peak_start=arrays["episode_peak_start"], sketch=arrays["sketch"],
        episode_sketch_start=arrays["episode_sketch_start"], episode_keys=keys,
        nbytes=size, _mmap=mm,
        embedding=(arrays["embedding"].reshape(-1, emb_dim) if emb_dim
                   else np.zeros((0, 0), dtype=np.int8)),
        episode_embedding_start=arrays["episode_embedding_start"],
        embedding_scale=emb_scale,
    )


def _check_consistent(name: str, a: dict[str, npt.NDArray[Any]], dir_bits: int,
                      n_eps: int) -> None:
    """Cheap structural checks (no pass over the postings): what a reader relies on to
    index safely."""
    d, eps, sks = a["directory"], a["episode_peak_start"], a["episode_sketch_start"]
    ems = a["episode_embedding_start"]
    ok = (len(d) == (1 << dir_bits) + 1 and int(d[0]) == 0
          and int(d[-1]) == len(a["values"]) == len(a["check"])
          and len(a["peak_frame"]) == len(a["peak_pitch"])
          and len(eps) == n_eps + 1 and len(sks) == n_eps + 1
          and int(eps[0]) == 0 and int(eps[-1]) == len(a["peak_frame"])
          and int(sks[0]) == 0 and int(sks[-1]) == len(a["sketch"])
          and bool(np.all(np.diff(eps) >= 0)) and bool(np.all(np.diff(sks) >= 0))
          and len(ems) == n_eps + 1 and int(ems[0]) == 0
          and bool(np.all(np.diff(ems) >= 0)))
    if ok and len(d) > 1:
        ok = bool(np.all(d[1:] >= d[:-1]))
    if not ok:
        raise IndexFormatError(f"segment {name} is inconsistent")


def new_segment_name() -> str:
    return f"seg-{uuid.uuid4().hex}.cws"


def is_read_only_error(exc: OSError) -> bool:
    return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)


__all__ = ["MAGIC", "PITCH_STORE_SCALE", "SEGMENT_VERSION", "EpisodeData", "IndexStoreError",
           "Segment", "dir_bits_for", "read_segment", "write_segment"]
