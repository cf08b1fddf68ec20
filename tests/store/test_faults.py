"""Fault injection: what kills, damage, read-only mounts and full disks do to an index.

* ``kill -9`` (and SIGTERM) at random moments of ``citywok index -w 2``: the workers die
  with their parent, the next write gets the lock at once, and the index is whole;
* bytes damaged at random places in every part of a segment: never a traceback, never a
  wrong confident answer; the damaged segment is named and the others keep answering;
* a read-only mount: the index reads; writing says so plainly;
* a full disk (a small tmpfs): a clear error, no temporary file left, the previous index
  intact; readers still read;
* a reader opening while the index is being created never sees half a catalogue.

Mounts need root (or a user namespace); where they cannot be made the test says why and
skips.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from citywok.errors import (
    IndexNotFoundError,
    IndexWriteError,
    SnapshotCorruptError,
    SnapshotError,
)
from citywok.index import CATALOG_NAME, SEGMENT_DIR, Index, NewEpisode
from citywok.params import BuildParams
from citywok.pipeline import drive, identify_samples, index_paths
from citywok.result import Episode, Status
from citywok.store.segment import _ARRAYS
from citywok.store.snapshot import SnapshotStore, current_version
from tests.conftest import DemoLibrary, to_8k, write_clip
from tests.servers import S3Server

EXE = [sys.executable, "-m", "citywok.cli.main"]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=timeout)


# -- kills ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_library(demo_library: DemoLibrary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve episode files of 2 minutes (the demo's four, looped, three times over at
    other gains so that each is a new file): enough work for a kill to land in it."""
    folder = tmp_path_factory.mktemp("big") / "Demo Show"
    folder.mkdir()
    for copy in range(3):
        for n in range(4):
            raw = np.tile(demo_library.raw(n), 3)
            # A different gain per copy makes every file's content (and hash) its own.
            write_clip(raw * (0.9 - 0.1 * copy), folder / f"Demo Show - S0{copy + 1}E0{n + 1}.mp3",
                       audio_args=("-c:a", "libmp3lame", "-b:a", "64k"))
    return folder


@pytest.fixture(scope="module")
def full_run_s(big_library: Path, tmp_path_factory: pytest.TempPathFactory) -> float:
    """How long an uninterrupted ``index -w 2`` of the big library takes on this machine
    now: the kills below land at a share of it, so a fast machine cannot finish first."""
    started = time.monotonic()
    done = subprocess.run([*EXE, "index", str(big_library), "--index",
                           str(tmp_path_factory.mktemp("whole") / "index"), "-w", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def _descendants(pid: int) -> set[int]:
    kids: set[int] = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) == pid:
            kids.add(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(("sig", "seed"), [(signal.SIGKILL, 1), (signal.SIGKILL, 2),
                                           (signal.SIGKILL, 3), (signal.SIGTERM, 4)])
def test_killing_index_w2_leaves_a_whole_index_and_a_free_lock(
        big_library: Path, full_run_s: float, tmp_path: Path, sig: signal.Signals,
        seed: int) -> None:
    index_dir = tmp_path / "index"
    rng = np.random.default_rng(seed)
    proc = subprocess.Popen([*EXE, "index", str(big_library), "--index", str(index_dir),
                             "-w", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A random moment in the run, as a share of a whole run here (a fixed window of
    # seconds let a fast machine finish first): mostly after the workers started.
    time.sleep(float(rng.uniform(0.2, 0.6)) * full_run_s)
    assert proc.poll() is None, "the run ended before the kill: give it more work"
    workers = _descendants(proc.pid)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)], "workers outlived the killed indexer"
    # The next writer gets the lock at once, finds a whole index and finishes the job.
    started = time.monotonic()
    with Index.open(index_dir, writable=True) as idx:
        assert time.monotonic() - started < 2.0
        kept = len(idx.episodes)
        assert idx.damaged == []
        summary = drive(index_paths(idx, [big_library]))
        assert len(summary.added) + kept == 12 and not summary.failed
        # Killed after its last commit (finding shared material), the run left every
        # episode in; either way the shared material is now that of all twelve.
        assert not idx.shared_is_stale("Demo Show")
        assert {r.episode_key for r in idx.store.shared} == set(idx.episodes)
    assert not list((index_dir / SEGMENT_DIR).glob(".tmp-*"))


# -- damage --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_segments(demo_library: DemoLibrary, tmp_path_factory: pytest.TempPathFactory
                 ) -> Path:
    """The demo library in two segments: episodes 1-2, then 3-4."""
    root = tmp_path_factory.mktemp("dmg")
    files = sorted(p for p in demo_library.folder.iterdir() if p.name.startswith("Demo Show"))
    with Index.open(root / "index", writable=True) as idx:
        drive(index_paths(idx, files[:2]))
        drive(index_paths(idx, files[2:]))
        assert len(idx.segments) == 2
    return root / "index"


def _segment_parts(path: Path) -> dict[str, tuple[int, int]]:
    """Byte ranges of a segment's parts: its header, and each array."""
    data = path.read_bytes()
    hlen = int.from_bytes(data[12:16], "little")
    header = json.loads(data[16 : 16 + hlen])
    parts = {"magic+version": (0, 16), "header": (16, 16 + hlen)}
    for name in _ARRAYS:
        spec = header["arrays"][name]
        size = np.dtype(spec["dtype"]).itemsize * spec["count"]
        if size:
            parts[name] = (spec["offset"], spec["offset"] + size)
    return parts


@pytest.mark.parametrize("part", ["magic+version", "header", *_ARRAYS])
def test_damage_anywhere_in_a_segment_is_refused_and_the_rest_answers(
        two_segments: Path, demo_library: DemoLibrary, tmp_path: Path, part: str) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(two_segments, index_dir, ignore=shutil.ignore_patterns("LOCK"))
    with Index.open(index_dir) as idx:
        # The segment holding episode 1 (the first one written).
        seg_path = next(s.path for s in idx.segments
                        if any(idx.episodes[int(k)].episode_id == demo_library.episode_id(0)
                               for k in s.episode_keys))
    parts = _segment_parts(seg_path)
    if part not in parts:
        pytest.skip(f"the segment has no {part} bytes")
    lo, hi = parts[part]
    rng = np.random.default_rng(abs(hash(part)) % 2**32)
    data = bytearray(seg_path.read_bytes())
    for pos in rng.integers(lo, hi, size=min(8, hi - lo)):
        data[pos] ^= int(rng.integers(1, 256))
    seg_path.write_bytes(bytes(data))

    damaged_clip = write_clip(demo_library.clip(0, 15.0, 5.0), tmp_path / "one.wav")
    healthy_clip = write_clip(demo_library.clip(3, 15.0, 5.0), tmp_path / "four.wav")
    proc = cli("identify", str(damaged_clip), str(healthy_clip), "--index", str(index_dir),
               "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    one, four = (json.loads(line) for line in proc.stdout.splitlines())
    # Each answer says that part of the library was not searched (issue 18, A).
    assert one["episodes_not_searched"] == four["episodes_not_searched"] == 2
    assert proc.stderr.count("2 indexed episode(s) could not be searched") == 2, proc.stderr
    # Never a confident answer from damaged data: episode 1 is not answered at all...
    assert one["status"] != "match" or one["match"]["episode_id"] != demo_library.episode_id(0)
    assert all(c["episode_id"] not in (demo_library.episode_id(0), demo_library.episode_id(1))
               for c in one["candidates"])
    # ...and the healthy segment still answers.
    assert four["status"] == "match"
    assert four["match"]["episode_id"] == demo_library.episode_id(3)

    check = cli("check", "--index", str(index_dir))
    assert check.returncode == 74 and "Traceback" not in check.stderr
    assert "damaged" in check.stderr and demo_library.episode_id(0) in check.stderr
    stats = json.loads(cli("stats", "--index", str(index_dir), "--json").stdout)
    assert len(stats["damaged"]) == 1 and stats["episodes"] == 2


def test_a_segment_damaged_in_place_while_open_is_set_aside(
        two_segments: Path, demo_library: DemoLibrary, tmp_path: Path) -> None:
    """Issue 18, B: bytes changed under an open (memory-mapped) segment after its checksum
    was checked. No count read from it is trusted: the segment is set aside, the other
    answers, and the answers say how much was not searched."""
    index_dir = tmp_path / "index"
    shutil.copytree(two_segments, index_dir, ignore=shutil.ignore_patterns("LOCK"))
    with Index.open(index_dir) as idx:
        damaged = next(s for s in idx.segments
                       if any(idx.episodes[int(k)].episode_id == demo_library.episode_id(0)
                              for k in s.episode_keys))
        first = identify_samples(to_8k(demo_library.clip(0, 15.0, 5.0)), idx)
        assert first.match is not None and first.episodes_not_searched == 0
        lo, hi = _segment_parts(damaged.path)["directory"]
        with damaged.path.open("r+b") as fh:  # in place: the map sees it
            fh.seek(lo + (hi - lo) // 3)
            fh.write(b"\xff" * 400)

        healthy = identify_samples(to_8k(demo_library.clip(3, 15.0, 5.0)), idx)
        assert healthy.status is Status.MATCH and healthy.match is not None
        assert healthy.match.episode.episode_id == demo_library.episode_id(3)
        lost = identify_samples(to_8k(demo_library.clip(0, 15.0, 5.0)), idx)
        assert all(c.episode.episode_id not in (demo_library.episode_id(0),
                                                demo_library.episode_id(1))
                   for c in lost.candidates)
        assert lost.episodes_not_searched == healthy.episodes_not_searched == 2
        assert [d.file for d in idx.damaged] == [damaged.path.name]
        assert "directory" in idx.damaged[0].reason
        assert all(s is not damaged for s in idx.segments)
    # Opened afresh, the file fails its checksum (checked again, not remembered as whole).
    with Index.open(index_dir) as again:
        assert [d.file for d in again.damaged] == [damaged.path.name]
        assert "checksum" in again.damaged[0].reason


def test_check_passes_a_whole_index(two_segments: Path) -> None:
    proc = cli("check", "--index", str(two_segments))
    assert proc.returncode == 0, proc.stderr
    assert "all 2 segment(s) are whole" in proc.stdout


# -- read-only mounts and full disks ------------------------------------------------------------


@contextlib.contextmanager
def mounted(args: list[str], target: Path) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount here ({made.stderr.strip() or 'mount failed'}): "
                    "the test needs root or a user namespace")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def _read_only_view(src: Path, target: Path) -> contextlib.AbstractContextManager[None]:
    @contextlib.contextmanager
    def view() -> Iterator[None]:
        with mounted(["--bind", str(src)], target):
            remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)],
                                     capture_output=True, text=True)
            if remount.returncode != 0:
                pytest.skip(f"cannot remount read-only here ({remount.stderr.strip()})")
            yield

    return view()


def test_an_index_on_a_read_only_mount_reads(two_segments: Path, demo_library: DemoLibrary,
                                             tmp_path: Path) -> None:
    # A fresh copy that was never opened by a reader: no -wal or -shm file beside it.
    src = tmp_path / "src"
    shutil.copytree(two_segments, src, ignore=shutil.ignore_patterns("LOCK", "*-wal",
                                                                      "*-shm"))
    ro = tmp_path / "ro"
    with _read_only_view(src, ro):
        with Index.open(ro) as idx:
            assert len(idx.episodes) == 4
            res = identify_samples(to_8k(demo_library.clip(2, 20.0, 5.0)), idx)
            assert res.status is Status.MATCH
        with pytest.raises(IndexWriteError, match="read-only"):
            Index.open(ro, writable=True)
        proc = cli("stats", "--index", str(ro), "--json")
        assert proc.returncode == 0, proc.stderr


def _episode(n: int, seconds: float = 1200.0) -> NewEpisode:
    """A long episode of random peaks and sketch (about 1 MB of segment)."""
    from citywok.analysis.peaks import Peaks

    rng = np.random.default_rng(n)
    frames = int(seconds / 0.016)
    count = int(seconds * 15)
    f = np.sort(rng.integers(0, frames, count)).astype(np.int32)
    p = rng.uniform(10, 55, count).astype(np.float32)
    order = np.lexsort((p, f))
    ep = Episode(f"e{n}", "Show", 1, n, None, seconds, f"/x/{n}", f"h{n}")
    sketch = rng.integers(0, 1 << 16, int(seconds / 0.048)).astype(np.uint16)
    return NewEpisode(ep, Peaks(f[order], p[order]), 1, 1, sketch=sketch)


def test_a_full_disk_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    disk = tmp_path / "small"
    with mounted(["-t", "tmpfs", "-o", "size=3m", "tmpfs"], disk):
        index_dir = disk / "index"
        with Index.open(index_dir, writable=True) as idx:
            idx.add([_episode(1)])
            before = dict(idx.episodes)
            with pytest.raises(IndexWriteError, match="disk is full"):
                for n in range(2, 8):
                    idx.add([_episode(n)])
            kept = dict(idx.episodes)
        assert set(before) <= set(kept)
        assert not list((index_dir / SEGMENT_DIR).glob(".tmp-*"))
        with Index.open(index_dir) as ro:
            assert set(ro.episodes) == set(kept) and ro.damaged == []
        # The index stays usable: a later writer opens it and changes the catalogue.
        with Index.open(index_dir, writable=True) as idx:
            idx.remove(next(iter(kept.values())).episode_id)
            assert len(idx.episodes) == len(kept) - 1


# -- creation ----------------------------------------------------------------------------------


def test_a_reader_never_sees_half_a_catalogue(tmp_path: Path) -> None:
    stop = threading.Event()
    errors: list[str] = []

    def read(root: Path) -> None:
        while not stop.is_set():
            try:
                Index.open(root).close()
            except IndexNotFoundError:
                pass
            except Exception as exc:
                errors.append(repr(exc))

    for n in range(20):
        root = tmp_path / f"i{n}"
        reader = threading.Thread(target=read, args=(root,))
        reader.start()
        try:
            Index.open(root, writable=True).close()
        finally:
            time.sleep(0.01)
            stop.set()
            reader.join()
            stop.clear()
    assert errors == []


def test_commits_keep_finished_files_when_a_run_is_interrupted(
        demo_library: DemoLibrary, tmp_path: Path) -> None:
    """With a commit after every file, an interrupted first index keeps what it did."""
    from citywok.ingest import FingerprintJob, JobOutcome
    from citywok.ingest.local import InlineFingerprinter

    class Interrupted(InlineFingerprinter):
        def run(self, jobs: Sequence[FingerprintJob]) -> Iterator[tuple[int, JobOutcome]]:
            for n, outcome in super().run(jobs):
                if n == 2:
                    raise KeyboardInterrupt
                yield n, outcome

    with Index.open(tmp_path / "index", writable=True) as idx, pytest.raises(KeyboardInterrupt):
        drive(index_paths(idx, [demo_library.folder], fingerprinter=Interrupted(),
                          build_params=BuildParams(commit_every_s=0.0)))
    with Index.open(tmp_path / "index") as ro:
        assert len(ro.episodes) == 2



# -- snapshots -----------------------------------------------------------------------------


def _snapshot_store(s3: S3Server, demo: DemoLibrary, tmp: Path
                    ) -> tuple[SnapshotStore, Any, str, Path]:
    """A store in a fresh bucket with the demo index pushed; the client, the bucket and
    the pushed index's folder."""
    client = s3.client()
    bucket = s3.bucket("faults-" + uuid.uuid4().hex[:12])
    store = SnapshotStore(f"s3://{bucket}/cw", client=client)
    source = tmp / "built"
    shutil.copytree(demo.index_dir, source, ignore=shutil.ignore_patterns("LOCK"))
    store.push(source)
    return store, client, bucket, source


def _publish(client: Any, bucket: str, manifest: dict[str, Any]) -> str:
    """Put ``manifest`` up as a new snapshot and point CURRENT at it; its id."""
    snapshot_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    manifest = {**manifest, "snapshot": snapshot_id}
    body = json.dumps(manifest).encode()
    client.put_object(Bucket=bucket, Key=f"cw/snapshots/{snapshot_id}.json", Body=body)
    client.put_object(Bucket=bucket, Key="cw/CURRENT", Body=json.dumps({
        "snapshot": snapshot_id, "manifest_sha256": hashlib.sha256(body).hexdigest()}).encode())
    return snapshot_id


def test_a_manifest_missing_a_segment_is_refused(
        s3_server: S3Server, demo_library: DemoLibrary, tmp_path: Path) -> None:
    store, client, bucket, _ = _snapshot_store(s3_server, demo_library, tmp_path)
    serving = tmp_path / "index"
    good = store.pull(serving)
    pointer = json.loads(client.get_object(Bucket=bucket, Key="cw/CURRENT")["Body"].read())
    manifest = json.loads(client.get_object(
        Bucket=bucket, Key=f"cw/snapshots/{pointer['snapshot']}.json")["Body"].read())
    # Every file checks out, but the catalogue names a segment the manifest left out.
    manifest["files"] = [f for f in manifest["files"] if f["path"] == CATALOG_NAME]
    bad = _publish(client, bucket, manifest)

    with pytest.raises(SnapshotCorruptError, match=f"snapshot {bad} is not a usable index"):
        store.pull(serving)
    assert current_version(serving) == good.snapshot_id
    with Index.open(serving) as idx:
        assert len(idx.episodes) == len(demo_library.truth) and not idx.damaged
    proc = subprocess.run([*EXE, "snapshot", "pull", f"s3://{bucket}/cw", "--index",
                           str(serving)], env={**os.environ, **s3_server.env},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 65 and "not a usable index" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


_SLOW_PULL = """
import sys, time
from pathlib import Path
from citywok.store import snapshot
from tests.servers import S3Server

fetch = snapshot.SnapshotStore._fetch_verified
def slow(self, entry, dest, snapshot_id):
    fetch(self, entry, dest, snapshot_id)
    print("fetched", entry.path, flush=True)
    time.sleep(300)  # killed here, part-way through the download
snapshot.SnapshotStore._fetch_verified = slow
s3 = S3Server(endpoint_url=sys.argv[1], env={})
snapshot.SnapshotStore(sys.argv[2], client=s3.client()).pull(Path(sys.argv[3]))
"""


def test_a_killed_pull_leaves_nothing_for_good(
        s3_server: S3Server, demo_library: DemoLibrary, tmp_path: Path) -> None:
    store, _, bucket, _ = _snapshot_store(s3_server, demo_library, tmp_path)
    serving = tmp_path / "index"
    versions = tmp_path / "index.versions"
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-c", _SLOW_PULL, s3_server.endpoint_url,
                                 f"s3://{bucket}/cw", str(serving)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("fetched"), "the pull did not start"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # Each killed pull left its download folder (nothing of it runs to clean up)...
    assert len(list(versions.glob(".pull-*"))) >= 1
    # ...and the next pull, holding the lock every pull holds, removes them all.
    pulled = store.pull(serving)
    assert pulled.changed and current_version(serving) == pulled.snapshot_id
    assert list(versions.glob(".pull-*")) == []
    assert list(tmp_path.glob(".index.link-*")) == []


def test_a_push_to_a_missing_bucket_is_a_clear_error(
        s3_server: S3Server, demo_library: DemoLibrary, tmp_path: Path) -> None:
    source = tmp_path / "built"
    shutil.copytree(demo_library.index_dir, source, ignore=shutil.ignore_patterns("LOCK"))
    missing = "no-such-bucket-" + uuid.uuid4().hex[:8]
    store = SnapshotStore(f"s3://{missing}/cw", client=s3_server.client())
    with pytest.raises(SnapshotError, match=r"NoSuchBucket|does not exist"):
        store.push(source)
    proc = subprocess.run([*EXE, "snapshot", "push", f"s3://{missing}/cw", "--index",
                           str(source)], env={**os.environ, **s3_server.env},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 69, proc.stderr
    assert "Traceback" not in proc.stderr and "bucket" in proc.stderr.lower()
