"""The on-disk index: immutable, memory-mapped segment files and a SQLite catalogue.

Layout of an index directory::

    catalog.sqlite        episodes, live segments, format version, analysis parameters
    segments/seg-*.cws    one file per batch of episodes (immutable once written)
    LOCK                  held by the one writer at a time

Segment file (little-endian), never pickled::

    0   8 bytes  magic b"CWSEGMNT"
    8   u32      format version (SEGMENT_VERSION)
    12  u32      header length H
    16  H bytes  JSON header: analysis parameters, hash layout, episode keys, and for
                 each array its offset, dtype and length
    ... arrays, each 64-byte aligned:
        offsets            u32[2**HASH_BITS + 1]  CSR row starts (see postings.py)
        values             u32[n_hashes]          hashes.pack_value layout
        peak_frame         i32[n_peaks]           frame of each peak, per episode from 0
        peak_pitch         u16[n_peaks]           pitch * PITCH_STORE_SCALE (semitones)
        episode_peak_start i64[n_episodes + 1]    first peak of each episode

Adding episodes writes a new segment and then commits its name and the episodes in one
SQLite transaction; a crash before that commit leaves a stray file that the next writer
deletes. Removing an episode deletes its catalogue row (its hashes are skipped at query
time and dropped at the next compaction, which rebuilds hashes from the stored peaks
without decoding anything again).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import mmap
import os
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from citywok.catalog import Catalog, EpisodeRow
from citywok.errors import (
    IndexFormatError,
    IndexLockedError,
    IndexNotFoundError,
    IndexStoreError,
)
from citywok.hashes import HASH_BITS, hash_triplets, make_triplets, pack_value
from citywok.match import Hit, match_peaks
from citywok.params import AnalysisParams, MatchParams
from citywok.peaks import Peaks
from citywok.postings import build_csr
from citywok.result import Episode, IndexStats

MAGIC = b"CWSEGMNT"
SEGMENT_VERSION = 1
PITCH_STORE_SCALE = 64
CATALOG_NAME = "catalog.sqlite"
SEGMENT_DIR = "segments"
_ALIGN = 64
_ARRAYS = ("offsets", "values", "peak_frame", "peak_pitch", "episode_peak_start")


def episode_hashes(peaks: Peaks, params: AnalysisParams, *, first_peak: int = 0) -> tuple[
    npt.NDArray[np.uint32], npt.NDArray[np.uint32]
]:
    """Reference hashes and values of one episode whose peaks start at ``first_peak``."""
    trip = make_triplets(peaks, fanout=params.index_fanout,
                         max_span_frames=params.max_span_frames,
                         band_semitones=params.partner_band_semitones)
    hashes, fits = hash_triplets(peaks, trip, params)
    i = trip.i[fits]
    return hashes, pack_value(i + first_peak, trip.j[fits] - i, trip.k[fits] - i)


@dataclass
class Segment:
    """A memory-mapped segment (satisfies ``match.SegmentView``)."""

    path: Path
    offsets: npt.NDArray[np.uint32]
    values: npt.NDArray[np.uint32]
    peak_frame: npt.NDArray[np.int32]
    peak_pitch: npt.NDArray[np.uint16]
    episode_peak_start: npt.NDArray[np.int64]
    episode_keys: npt.NDArray[np.int64]
    pitch_unit: float = 1.0 / PITCH_STORE_SCALE
    _mmap: mmap.mmap | None = None

    def episode_peaks(self, local: int) -> Peaks:
        lo, hi = int(self.episode_peak_start[local]), int(self.episode_peak_start[local + 1])
        return Peaks(
            frame=np.asarray(self.peak_frame[lo:hi], dtype=np.int32),
            pitch=self.peak_pitch[lo:hi].astype(np.float32) / np.float32(PITCH_STORE_SCALE),
        )

    @property
    def nbytes(self) -> int:
        return self.path.stat().st_size


def write_segment(path: Path, *, params: AnalysisParams, episode_keys: Sequence[int],
                  peaks: Sequence[Peaks]) -> str:
    """Write a segment for these episodes atomically; returns its SHA-256."""
    hashes_parts, values_parts, starts = [], [], [0]
    for p in peaks:
        h, v = episode_hashes(p, params, first_peak=starts[-1])
        hashes_parts.append(h)
        values_parts.append(v)
        starts.append(starts[-1] + len(p))
    all_hashes = np.concatenate(hashes_parts) if hashes_parts else np.empty(0, np.uint32)
    all_values = np.concatenate(values_parts) if values_parts else np.empty(0, np.uint32)
    offsets, values = build_csr(all_hashes, all_values)
    frames = np.concatenate([p.frame for p in peaks]) if peaks else np.empty(0, np.int32)
    pitches = np.concatenate([p.pitch for p in peaks]) if peaks else np.empty(0, np.float32)
    arrays: dict[str, npt.NDArray[Any]] = {
        "offsets": offsets,
        "values": values.astype(np.uint32),
        "peak_frame": frames.astype(np.int32),
        "peak_pitch": np.clip(np.round(pitches * PITCH_STORE_SCALE), 0, 65535).astype(np.uint16),
        "episode_peak_start": np.asarray(starts, dtype=np.int64),
    }
    layout: dict[str, dict[str, Any]] = {}
    header = {
        "format_version": SEGMENT_VERSION,
        "params": params.to_dict(),
        "hash_bits": HASH_BITS,
        "pitch_store_scale": PITCH_STORE_SCALE,
        "episode_keys": [int(k) for k in episode_keys],
        "arrays": layout,
    }
    # Two passes: the header's length depends on the offsets it records.
    for _ in range(2):
        blob = json.dumps(header, sort_keys=True).encode()
        pos = _align(16 + len(blob) + 256)
        for name in _ARRAYS:
            arr = arrays[name]
            layout[name] = {"offset": pos, "dtype": arr.dtype.str, "count": int(arr.size)}
            pos = _align(pos + arr.nbytes)
    blob = json.dumps(header, sort_keys=True).encode()
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
    digest = hashlib.sha256()
    with open(tmp, "wb") as fh:
        _write(fh, digest, MAGIC + struct.pack("<II", SEGMENT_VERSION, len(blob)) + blob)
        for name in _ARRAYS:
            _write(fh, digest, b"\0" * (layout[name]["offset"] - fh.tell()))
            _write(fh, digest, arrays[name].tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return digest.hexdigest()


def _write(fh: IO[bytes], digest: Any, data: bytes) -> None:
    fh.write(data)
    digest.update(data)


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_segment(path: Path, *, params: AnalysisParams) -> Segment:
    """Memory-map a segment, checking magic, version, parameters and sizes."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed just below
    except OSError as exc:
        raise IndexFormatError(f"segment {path.name} cannot be opened ({exc.strerror})") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 16:
            raise IndexFormatError(f"segment {path.name} is truncated")
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if mm[:8] != MAGIC:
        raise IndexFormatError(f"{path.name} is not a CityWok segment")
    version, hlen = struct.unpack("<II", mm[8:16])
    if version != SEGMENT_VERSION:
        raise IndexFormatError(
            f"segment {path.name} has format {version}; this CityWok reads {SEGMENT_VERSION}")
    try:
        header = json.loads(bytes(mm[16 : 16 + hlen]))
    except ValueError:
        raise IndexFormatError(f"segment {path.name} has a damaged header") from None
    params.require_same(AnalysisParams.from_dict(header["params"]))
    if header.get("hash_bits") != HASH_BITS:
        raise IndexFormatError(f"segment {path.name} uses another hash layout")
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name in _ARRAYS:
        spec = header["arrays"][name]
        dtype = np.dtype(spec["dtype"])
        end = spec["offset"] + dtype.itemsize * spec["count"]
        if end > size:
            raise IndexFormatError(f"segment {path.name} is truncated")
        arrays[name] = np.frombuffer(mm, dtype=dtype, count=spec["count"], offset=spec["offset"])
    n_eps = len(header["episode_keys"])
    if (len(arrays["offsets"]) != (1 << HASH_BITS) + 1
            or len(arrays["episode_peak_start"]) != n_eps + 1
            or int(arrays["offsets"][-1]) != len(arrays["values"])
            or len(arrays["peak_frame"]) != len(arrays["peak_pitch"])):
        raise IndexFormatError(f"segment {path.name} is inconsistent")
    return Segment(
        path=path,
        offsets=arrays["offsets"],
        values=arrays["values"],
        peak_frame=arrays["peak_frame"],
        peak_pitch=arrays["peak_pitch"],
        episode_peak_start=arrays["episode_peak_start"],
        episode_keys=np.asarray(header["episode_keys"], dtype=np.int64),
        _mmap=mm,
    )


@dataclass(frozen=True)
class NewEpisode:
    """An episode fingerprinted and ready to be committed."""

    episode: Episode
    peaks: Peaks
    file_size: int
    file_mtime_ns: int


class Index:
    """An index directory, open for queries (and for writing when ``writable``)."""

    def __init__(self, path: Path, *, params: AnalysisParams, catalog: Catalog,
                 lock: IO[bytes] | None) -> None:
        self.path = path
        self.params = params
        self.catalog = catalog
        self._lock = lock
        self.segments: list[Segment] = []
        self.episodes: dict[int, Episode] = {}
        self.reload()

    # -- opening ---------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, writable: bool = False,
             params: AnalysisParams | None = None) -> Index:
        """Open an index; ``writable`` creates it if missing and takes the writer lock.

        ``params`` must match the stored ones when given; a new index takes them (or the
        defaults).
        """
        root = Path(path).expanduser()
        db_path = root / CATALOG_NAME
        if not writable:
            if not db_path.is_file():
                raise IndexNotFoundError(
                    f"no index at {root} (build one with 'citywok index FOLDER')")
            catalog = Catalog(db_path, readonly=True)
            return cls(root, params=cls._stored_params(catalog, params), catalog=catalog,
                       lock=None)
        (root / SEGMENT_DIR).mkdir(parents=True, exist_ok=True)
        lock = open(root / "LOCK", "wb")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise IndexLockedError(f"another process is writing the index at {root}") from None
        catalog = Catalog(db_path)
        if catalog.get_meta("params") is None:
            chosen = params or AnalysisParams()
            catalog.set_meta("params", json.dumps(chosen.to_dict(), sort_keys=True))
            catalog.set_meta("segment_format", str(SEGMENT_VERSION))
        index = cls(root, params=cls._stored_params(catalog, params), catalog=catalog,
                    lock=lock)
        index._remove_strays()
        return index

    @staticmethod
    def _stored_params(catalog: Catalog, wanted: AnalysisParams | None) -> AnalysisParams:
        raw = catalog.get_json("params")
        if not isinstance(raw, dict):
            raise IndexFormatError("the index does not record its analysis parameters")
        stored = AnalysisParams.from_dict(raw)
        if wanted is not None:
            stored.require_same(wanted)
        return stored

    def close(self) -> None:
        self.catalog.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reload(self) -> None:
        """Re-read the catalogue and map the live segments (after another writer)."""
        self.segments = [
            read_segment(self.path / SEGMENT_DIR / row.file, params=self.params)
            for row in self.catalog.segments()
        ]
        self.episodes = {row.key: row.episode for row in self.catalog.episodes()}

    def _remove_strays(self) -> None:
        live = {row.file for row in self.catalog.segments()}
        for f in (self.path / SEGMENT_DIR).iterdir():
            if f.name not in live:
                f.unlink(missing_ok=True)

    def _require_writer(self) -> None:
        if self._lock is None:
            raise IndexStoreError("the index is open read-only")

    # -- queries ---------------------------------------------------------------------

    def match(self, peaks: Peaks, match_params: MatchParams) -> list[Hit]:
        hits = match_peaks(peaks, self.segments, params=self.params, match_params=match_params)
        return [h for h in hits if h.episode_key in self.episodes]

    def episode(self, key: int) -> Episode:
        return self.episodes[key]

    def stats(self) -> IndexStats:
        eps = list(self.episodes.values())
        return IndexStats(
            episodes=len(eps),
            shows=len({e.show for e in eps}),
            hours=sum(e.duration_s for e in eps) / 3600.0,
            peaks=sum(len(s.peak_frame) for s in self.segments),
            hashes=sum(len(s.values) for s in self.segments),
            segments=len(self.segments),
            index_bytes=sum(s.nbytes for s in self.segments)
            + (self.path / CATALOG_NAME).stat().st_size,
            format_version=SEGMENT_VERSION,
            path=str(self.path),
        )

    # -- writing ---------------------------------------------------------------------

    def unique_episode_id(self, wanted: str) -> str:
        candidate, n = wanted, 2
        while self.catalog.episode_id_taken(candidate):
            candidate, n = f"{wanted}-{n}", n + 1
        return candidate

    def add(self, items: Sequence[NewEpisode], *, replace_keys: Sequence[int] = ()) -> None:
        """Commit new episodes (and drop ``replace_keys``) in one atomic step."""
        self._require_writer()
        if not items and not replace_keys:
            return
        name = f"seg-{uuid.uuid4().hex}.cws"
        seg_path = self.path / SEGMENT_DIR / name
        with self.catalog.transaction() as db:
            for key in replace_keys:
                db.execute("DELETE FROM episodes WHERE key=?", (key,))
            first_key = self.catalog.next_episode_key(db)
            keys = list(range(first_key, first_key + len(items)))
            if items:
                digest = write_segment(seg_path, params=self.params, episode_keys=keys,
                                       peaks=[it.peaks for it in items])
                seg_id = self.catalog.add_segment(db, file=name, size=seg_path.stat().st_size,
                                                  sha256=digest)
                for key, it in zip(keys, items, strict=True):
                    self.catalog.add_episode(db, key=key, ep=it.episode, file_size=it.file_size,
                                             file_mtime_ns=it.file_mtime_ns, seg_id=seg_id)
            self._drop_empty_segments(db)
        self.reload()
        self._remove_strays()

    def update_source(self, row: EpisodeRow, *, source_path: str, file_size: int,
                      file_mtime_ns: int) -> None:
        """Record that an indexed file moved or was touched without changing."""
        self._require_writer()
        with self.catalog.transaction() as db:
            db.execute("UPDATE episodes SET source_path=?, file_size=?, file_mtime_ns=? "
                       "WHERE key=?", (source_path, file_size, file_mtime_ns, row.key))
        self.reload()

    def remove(self, episode_id: str) -> Episode:
        self._require_writer()
        row = self.catalog.by_id(episode_id)
        with self.catalog.transaction() as db:
            db.execute("DELETE FROM episodes WHERE key=?", (row.key,))
            self._drop_empty_segments(db)
        self.reload()
        self._remove_strays()
        return row.episode

    def _drop_empty_segments(self, db: Any) -> None:
        db.execute("DELETE FROM segments WHERE seg_id NOT IN (SELECT seg_id FROM episodes)")

    def compact(self) -> None:
        """Merge all segments into one, dropping the hashes of removed episodes."""
        self._require_writer()
        removed_inside = any(int(k) not in self.episodes
                             for s in self.segments for k in s.episode_keys)
        if len(self.segments) <= 1 and not removed_inside:
            return  # already one segment holding only live episodes
        keys: list[int] = []
        peaks: list[Peaks] = []
        for seg in self.segments:
            for local, key in enumerate(seg.episode_keys):
                if int(key) in self.episodes:
                    keys.append(int(key))
                    peaks.append(seg.episode_peaks(local))
        if not keys:
            return
        name = f"seg-{uuid.uuid4().hex}.cws"
        seg_path = self.path / SEGMENT_DIR / name
        digest = write_segment(seg_path, params=self.params, episode_keys=keys, peaks=peaks)
        with self.catalog.transaction() as db:
            seg_id = self.catalog.add_segment(db, file=name, size=seg_path.stat().st_size,
                                              sha256=digest)
            db.executemany("UPDATE episodes SET seg_id=? WHERE key=?",
                           [(seg_id, k) for k in keys])
            self._drop_empty_segments(db)
        self.reload()
        self._remove_strays()
