"""Real servers the deployment tests run against, started once per session: moto's S3
server and PostgreSQL. Each skips with a message where it cannot start."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path,
               timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.skip(f"{what} exited at start: {log.read_text()[-500:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    proc.kill()
    pytest.skip(f"{what} did not start within {timeout_s:.0f} s")


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    #: The variables a CityWok process (and boto3) reads to reach it.
    env: dict[str, str]

    def client(self) -> Any:
        from citywok.store.snapshot import S3Config, make_client

        return make_client(S3Config(endpoint_url=self.endpoint_url, region="us-east-1",
                                    access_key_id="testing", secret_access_key="testing"))

    def bucket(self, name: str) -> str:
        """Create a bucket (fresh per test) and return its name."""
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's standalone S3-compatible server on loopback."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed "
                        "(pip install -e '.[dev]')")
    pytest.importorskip("boto3", reason="boto3 is not installed (pip install -e '.[s3]')")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                 "-p", str(port)], stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc, "moto's S3 server", log)
        url = f"http://127.0.0.1:{port}"
        yield S3Server(endpoint_url=url, env={
            "AWS_ENDPOINT_URL": url, "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL cluster (Debian's package: initdb + pg_ctl), as a
    SQLAlchemy URL. As root the cluster runs as the 'postgres' user, since PostgreSQL
    refuses to run as root."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e "
                        "'.[postgres]')")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (scripts/setup postgres: apt-get install "
                    "postgresql)")
    prefix: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="citywok-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL")
        if runuser is None:
            pytest.skip("running as root without runuser to start PostgreSQL as 'postgres'")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        prefix = [runuser, "-u", "postgres", "--"]
    data = folder / "data"
    port = free_port()
    log = folder / "postgres.log"
    try:
        made = subprocess.run([*prefix, initdb, "-D", str(data), "-U", "citywok",
                               "--auth=trust", "-E", "UTF8", "--no-sync"],
                              capture_output=True, timeout=120)
        if made.returncode != 0:
            pytest.skip(f"initdb failed: {made.stderr.decode()[-500:]}")
        started = subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
             f"-p {port} -k {folder} -h 127.0.0.1 -c fsync=off -c max_connections=60",
             "start"], capture_output=True, timeout=90)
        if started.returncode != 0:
            pytest.skip(f"PostgreSQL did not start: {started.stderr.decode()[-500:]}")
        yield f"postgresql+psycopg://citywok@127.0.0.1:{port}/postgres"
    finally:
        if data.exists():
            subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
