"""Index snapshots in S3-compatible object storage (AWS S3, Cloudflare R2, MinIO).

Objects under ``s3://bucket/prefix/``::

    objects/<sha256>        every file of every snapshot, named by its content: segments
                            never change once written, so a push uploads only new ones
    snapshots/<id>.json     a snapshot's manifest: each file's path, size and SHA-256
    CURRENT                 the pointer: ``{"snapshot": id, "manifest_sha256": ...}``

A push uploads the objects, then the manifest, then replaces ``CURRENT``. One PUT
replaces an object whole on every S3-compatible store, so a reader that starts from
``CURRENT`` never sees a half-written snapshot.

A pull reads ``CURRENT`` and the manifest, downloads every file into a temporary folder
beside the index, checks each size and SHA-256, opens the result as an index, and only
then points the index path at it with one ``rename(2)`` of a symlink::

    /data/index -> index.versions/<id>/      catalog.sqlite, segments/..., pictures/...

A snapshot that is incomplete or fails a check raises
:class:`~citywok.errors.SnapshotCorruptError`; the symlink keeps pointing at the previous
version, which goes on serving. The previous version is kept on disk (``keep``), so a
request that opened it before the swap finishes on it.

The index directory is treated generically: the catalogue (copied with SQLite's backup
API, so a writer may be active) plus whatever segment files that copy lists.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from citywok.errors import CityWokError, SnapshotCorruptError, SnapshotError
from citywok.store.catalog import Catalog
from citywok.store.local import CATALOG_NAME, PICTURE_DIR, SEGMENT_DIR, LocalStore

MANIFEST_FORMAT = 1
POINTER_NAME = "CURRENT"
_CHUNK = 1 << 20
_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket/some/prefix`` (the prefix may be empty)."""
        if not url.startswith("s3://"):
            raise SnapshotError(f"not an s3:// URL: {url!r} (e.g. s3://bucket/citywok)")
        bucket, _, prefix = url[5:].partition("/")
        if not bucket:
            raise SnapshotError(f"no bucket in {url!r}")
        return cls(bucket=bucket, prefix=prefix.strip("/"))

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class S3Config:
    """Where and how to reach the store; ``None`` leaves it to boto3's usual chain
    (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, profiles, roles)."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None


@dataclass(frozen=True)
class FileEntry:
    #: Path inside the index directory, with ``/`` separators.
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    snapshot_id: str
    created_at: float
    files: tuple[FileEntry, ...]

    def to_json(self) -> bytes:
        return json.dumps({
            "format": MANIFEST_FORMAT, "snapshot": self.snapshot_id,
            "created_at": self.created_at,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            raw = json.loads(data)
            if raw.get("format") != MANIFEST_FORMAT:
                raise SnapshotError(f"snapshot manifest format {raw.get('format')!r} is not "
                                    f"supported (this CityWok reads {MANIFEST_FORMAT})")
            files = tuple(FileEntry(path=str(f["path"]), size=int(f["size"]),
                                    sha256=str(f["sha256"])) for f in raw["files"])
            manifest = cls(snapshot_id=str(raw["snapshot"]),
                           created_at=float(raw["created_at"]), files=files)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SnapshotCorruptError("the snapshot manifest is unreadable") from None
        for f in files:
            _safe_relative(f.path)
            if not _HEX64.fullmatch(f.sha256) or f.size < 0:
                raise SnapshotCorruptError(f"the manifest entry for {f.path} is malformed")
        if CATALOG_NAME not in {f.path for f in files}:
            raise SnapshotCorruptError("the snapshot manifest lists no catalogue")
        return manifest


@dataclass(frozen=True)
class PushResult:
    snapshot_id: str
    location: str
    files: int
    bytes_total: int
    #: Bytes actually sent: files already in the store (same content) are not sent again.
    bytes_uploaded: int


@dataclass(frozen=True)
class PullResult:
    snapshot_id: str
    #: The version folder now behind the index path.
    path: Path
    files: int
    bytes_total: int
    #: False when the index path already pointed at this snapshot (nothing downloaded).
    changed: bool


def _safe_relative(path: str) -> PurePosixPath:
    p = PurePosixPath(path)
    if p.is_absolute() or not p.parts or any(part in ("", ".", "..") for part in p.parts):
        raise SnapshotCorruptError(f"the snapshot names an unsafe path: {path!r}")
    return p


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def copy_catalog(src: Path, dest: Path) -> None:
    """A consistent copy of a live catalogue (SQLite's online backup), in rollback-journal
    mode so that it can also be read from a read-only folder."""
    try:
        source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise SnapshotError(f"cannot read the catalogue at {src} ({exc})") from None
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise SnapshotError(f"cannot copy the catalogue at {src} ({exc})") from None
    finally:
        target.close()
        source.close()


def _new_snapshot_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SnapshotStore:
    """Push and pull index snapshots at one ``s3://bucket/prefix`` location."""

    def __init__(self, url: str, config: S3Config | None = None, *, client: Any = None) -> None:
        self.location = S3Location.parse(url)
        self._client = client if client is not None else make_client(config or S3Config())

    # -- remote objects ----------------------------------------------------------------

    def _get(self, key: str) -> bytes | None:
        """The object's bytes, ``None`` when it does not exist."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body: bytes = self._client.get_object(Bucket=self.location.bucket,
                                                  Key=key)["Body"].read()
        except ClientError as exc:
            if _missing(exc):
                return None
            raise SnapshotError(f"cannot read {self.location.bucket}/{key}: {_why(exc)}") from None
        except BotoCoreError as exc:
            raise SnapshotError(f"cannot reach the object store: {exc}") from None
        return body

    def _exists(self, key: str, size: int) -> bool:
        from botocore.exceptions import ClientError

        try:
            head = self._client.head_object(Bucket=self.location.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return int(head.get("ContentLength", -1)) == size

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            raise SnapshotError(f"{what}: {_why(exc)}") from None
        except (BotoCoreError, Boto3Error) as exc:
            # Boto3Error: upload_file's own (S3UploadFailedError wraps the ClientError).
            raise SnapshotError(f"{what}: {_upload_why(exc)}") from None

    def current(self) -> str | None:
        """The id of the snapshot ``CURRENT`` points at, ``None`` when nothing was pushed."""
        pointer = self._pointer()
        return None if pointer is None else pointer[0]

    def _pointer(self) -> tuple[str, str] | None:
        raw = self._get(self.location.key(POINTER_NAME))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            snapshot, digest = str(data["snapshot"]), str(data["manifest_sha256"])
        except (ValueError, KeyError, TypeError):
            raise SnapshotCorruptError(f"{self.location}/{POINTER_NAME} is unreadable") from None
        if not _ID.fullmatch(snapshot) or not _HEX64.fullmatch(digest):
            raise SnapshotCorruptError(f"{self.location}/{POINTER_NAME} is malformed")
        return snapshot, digest

    # -- push ------------------------------------------------------------------------

    def push(self, index_dir: Path, *, attempts: int = 3) -> PushResult:
        """Upload the index at ``index_dir`` as a new snapshot and make it current.

        A writer may be working on the index: the catalogue is copied consistently, and
        if a segment it lists disappears (a compaction) before it is read, the push
        starts again from a fresh copy, up to ``attempts`` times.
        """
        if not (index_dir / CATALOG_NAME).is_file():
            raise SnapshotError(f"no index at {index_dir} (build one with 'citywok index')")
        for attempt in range(attempts):
            try:
                return self._push_once(index_dir)
            except FileNotFoundError:
                if attempt == attempts - 1:
                    raise SnapshotError(f"the index at {index_dir} kept changing while it "
                                        "was pushed; try again") from None
        raise AssertionError("unreachable")

    def _push_once(self, index_dir: Path) -> PushResult:
        with tempfile.TemporaryDirectory(prefix="citywok-push-") as tmp:
            catalog_copy = Path(tmp) / CATALOG_NAME
            copy_catalog(index_dir / CATALOG_NAME, catalog_copy)
            try:
                catalog = Catalog(catalog_copy, readonly=True)
            except CityWokError as exc:
                raise SnapshotError(f"the index at {index_dir} is unusable: {exc.message}"
                                    ) from None
            try:
                segment_files = [row.file for row in catalog.segments()]
                picture_files = [row.file for row in catalog.pictures()]
            finally:
                catalog.close()
            sources = [(CATALOG_NAME, catalog_copy)] + [
                (f"{SEGMENT_DIR}/{name}", index_dir / SEGMENT_DIR / name)
                for name in segment_files] + [
                (f"{PICTURE_DIR}/{name}", index_dir / PICTURE_DIR / name)
                for name in picture_files]
            entries: list[FileEntry] = []
            sent = 0
            for rel, path in sources:
                digest, size = _sha256_file(path)
                entries.append(FileEntry(path=rel, size=size, sha256=digest))
                key = self.location.key("objects", digest)
                with self._errors(f"cannot upload {rel}"):
                    if not self._exists(key, size):
                        self._client.upload_file(str(path), self.location.bucket, key)
                        sent += size
            manifest = Manifest(snapshot_id=_new_snapshot_id(), created_at=time.time(),
                                files=tuple(entries))
            body = manifest.to_json()
            pointer = json.dumps({"snapshot": manifest.snapshot_id,
                                  "manifest_sha256": hashlib.sha256(body).hexdigest()}).encode()
            with self._errors("cannot publish the snapshot"):
                self._client.put_object(
                    Bucket=self.location.bucket,
                    Key=self.location.key("snapshots", manifest.snapshot_id + ".json"),
                    Body=body, ContentType="application/json")
                # Last: readers follow CURRENT, so until now they saw the previous snapshot.
                self._client.put_object(Bucket=self.location.bucket,
                                        Key=self.location.key(POINTER_NAME), Body=pointer,
                                        ContentType="application/json",
                                        CacheControl="no-cache")
        return PushResult(snapshot_id=manifest.snapshot_id, location=str(self.location),
                          files=len(entries), bytes_total=sum(e.size for e in entries),
                          bytes_uploaded=sent)

    # -- pull ------------------------------------------------------------------------

    def pull(self, index_dir: Path, *, keep: int = 2) -> PullResult:
        """Make ``index_dir`` the current snapshot, verified, swapped in atomically.

        ``index_dir`` becomes a symlink into ``<index_dir>.versions/``; an existing plain
        directory there is moved into that folder first (kept, never deleted). The
        ``keep`` newest versions stay on disk, the current one always.
        """
        pointer = self._pointer()
        if pointer is None:
            raise SnapshotError(f"no snapshot at {self.location} (push one first)")
        snapshot_id, manifest_digest = pointer
        versions = index_dir.parent / (index_dir.name + ".versions")
        versions.mkdir(parents=True, exist_ok=True)
        target = versions / snapshot_id
        with _locked(versions / ".lock"):
            _remove_leftovers(index_dir, versions)
            if index_dir.is_symlink() and index_dir.resolve() == target.resolve() and (
                    target / CATALOG_NAME).is_file():
                manifest = self._manifest(snapshot_id, manifest_digest)
                return PullResult(snapshot_id=snapshot_id, path=target,
                                  files=len(manifest.files),
                                  bytes_total=sum(f.size for f in manifest.files),
                                  changed=False)
            manifest = self._manifest(snapshot_id, manifest_digest)
            if not (target / CATALOG_NAME).is_file():
                self._download(manifest, versions, target)
            _point(index_dir, target)
            _prune(versions, keep=keep, current=target)
        return PullResult(snapshot_id=snapshot_id, path=target, files=len(manifest.files),
                          bytes_total=sum(f.size for f in manifest.files), changed=True)

    def _manifest(self, snapshot_id: str, digest: str) -> Manifest:
        body = self._get(self.location.key("snapshots", snapshot_id + ".json"))
        if body is None:
            raise SnapshotCorruptError(f"snapshot {snapshot_id} is incomplete: its manifest "
                                       "is missing")
        if hashlib.sha256(body).hexdigest() != digest:
            raise SnapshotCorruptError(f"snapshot {snapshot_id}: the manifest does not match "
                                       "its checksum")
        manifest = Manifest.from_json(body)
        if manifest.snapshot_id != snapshot_id:
            raise SnapshotCorruptError(f"snapshot {snapshot_id}: the manifest names "
                                       f"{manifest.snapshot_id}")
        return manifest

    def _download(self, manifest: Manifest, versions: Path, target: Path) -> None:
        tmp = versions / f".pull-{manifest.snapshot_id}-{secrets.token_hex(4)}"
        tmp.mkdir()
        try:
            for entry in manifest.files:
                dest = tmp.joinpath(*_safe_relative(entry.path).parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                self._fetch_verified(entry, dest, manifest.snapshot_id)
            for folder in {p.parent for p in tmp.rglob("*") if p.is_file()}:
                _fsync_dir(folder)
            try:  # a snapshot that verifies but is no usable index is refused too
                with LocalStore.open(tmp) as store:  # structure and checksums; no family
                    # Every segment its catalogue names, whole: a manifest that leaves
                    # one out would swap in a library with episodes missing.
                    if store.damaged:
                        raise SnapshotCorruptError("; ".join(d.reason for d in store.damaged))
                    for row in store.pictures():  # and every picture file, whole
                        store.read_picture(row)
            except CityWokError as exc:
                raise SnapshotCorruptError(f"snapshot {manifest.snapshot_id} is not a usable "
                                           f"index: {exc.message}") from None
            os.replace(tmp, target)
            _fsync_dir(versions)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _fetch_verified(self, entry: FileEntry, dest: Path, snapshot_id: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.location.key("objects", entry.sha256)
        digest = hashlib.sha256()
        size = 0
        try:
            response = self._client.get_object(Bucket=self.location.bucket, Key=key)
            with dest.open("wb") as out:
                for chunk in response["Body"].iter_chunks(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    if size > entry.size:
                        break
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except ClientError as exc:
            if _missing(exc):
                raise SnapshotCorruptError(f"snapshot {snapshot_id} is incomplete: "
                                           f"{entry.path} is missing from the store") from None
            raise SnapshotError(f"cannot download {entry.path}: {_why(exc)}") from None
        except BotoCoreError as exc:
            raise SnapshotError(f"cannot download {entry.path}: {exc}") from None
        if size != entry.size or digest.hexdigest() != entry.sha256:
            raise SnapshotCorruptError(
                f"snapshot {snapshot_id} is corrupt: {entry.path} does not match its "
                f"manifest (size {size} for {entry.size}, or a different SHA-256)")


def current_version(index_dir: Path) -> str | None:
    """The snapshot id ``index_dir`` points at, ``None`` when it is no pulled snapshot."""
    if not index_dir.is_symlink():
        return None
    name = index_dir.resolve().name
    return name if _ID.fullmatch(name) else None


def poll(store: SnapshotStore, index_dir: Path, *, interval_s: float,
         stop: Callable[[float], bool], on_pull: Callable[[PullResult], None],
         on_error: Callable[[CityWokError], None]) -> None:
    """Pull whenever ``CURRENT`` moves, until ``stop(interval_s)`` says so (it waits,
    e.g. ``threading.Event().wait``). Errors are handed to ``on_error``; the index path
    keeps its previous version."""
    while not stop(interval_s):
        try:
            wanted = store.current()
            if wanted is not None and wanted != current_version(index_dir):
                on_pull(store.pull(index_dir))
        except CityWokError as exc:
            on_error(exc)


def make_client(config: S3Config) -> Any:
    """A boto3 S3 client that works with S3, R2 and MinIO."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise SnapshotError("snapshots need boto3: pip install 'citywok[s3]'") from None
    options: dict[str, Any] = {
        "retries": {"max_attempts": 5, "mode": "standard"},
        # Checksums only where the API requires them: R2 and older MinIO refuse the
        # CRC trailers newer boto3 sends by default. Integrity is the manifest's job.
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    if config.endpoint_url:
        # Self-hosted stores (MinIO, moto) rarely have per-bucket DNS names.
        options["s3"] = {"addressing_style": "path"}
    session = boto3.session.Session()
    return session.client(
        "s3", endpoint_url=config.endpoint_url or None, region_name=config.region or None,
        aws_access_key_id=config.access_key_id or None,
        aws_secret_access_key=config.secret_access_key or None,
        config=Config(**options))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[IO[bytes]]:
    with path.open("wb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield fh


def _point(index_dir: Path, target: Path) -> None:
    """Swap the symlink ``index_dir`` to ``target`` with one rename."""
    if index_dir.exists() and not index_dir.is_symlink():
        # A plain index that was there before snapshots: keep it, out of the way.
        aside = target.parent / f"local-{time.strftime('%Y%m%dT%H%M%S')}"
        os.replace(index_dir, aside)
    link = index_dir.parent / f".{index_dir.name}.link-{secrets.token_hex(4)}"
    os.symlink(os.path.relpath(target, index_dir.parent), link)
    os.replace(link, index_dir)
    _fsync_dir(index_dir.parent)


def _remove_leftovers(index_dir: Path, versions: Path) -> None:
    """Remove what pulls that died part-way left: their download folders and unrenamed
    links. Called with the versions lock held, and every pull holds it from its first
    file to its swap, so none of these can belong to a pull still running."""
    for tmp in versions.glob(".pull-*"):
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
    for link in index_dir.parent.glob(f".{index_dir.name}.link-*"):
        if link.is_symlink():
            link.unlink(missing_ok=True)


def _prune(versions: Path, *, keep: int, current: Path) -> None:
    done = sorted((p for p in versions.iterdir() if p.is_dir() and _ID.fullmatch(p.name)),
                  key=lambda p: p.name, reverse=True)
    kept = 0
    for path in done:
        if path == current or kept < keep:
            kept += 1
            continue
        shutil.rmtree(path, ignore_errors=True)


def _missing(exc: Any) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")


def _upload_why(exc: Exception) -> str:
    """The store's own words from a wrapped error (``... operation: The specified bucket
    does not exist``), without boto3's preamble naming local paths."""
    cause = exc.__context__
    if cause is not None and hasattr(cause, "response"):
        return _why(cause)
    return str(exc).rpartition(": ")[2] or type(exc).__name__


def _why(exc: Any) -> str:
    err = exc.response.get("Error", {})
    return f"{err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": ")
