"""Two ``citywok serve`` replicas on one PostgreSQL and one Redis (both real, started by
the tests) agree on keys and limits, and their usage figures add up."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from citywok.web.db import Database
from citywok.web.keys import KeyStore
from citywok.web.usage import UsageLog
from tests.web.conftest import Library, LiveServer, start_server, stop_server

pytestmark = pytest.mark.slow
URL = "/api/v1/identify"


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """A fresh database of the session's PostgreSQL cluster."""
    from sqlalchemy import create_engine, text

    name = "t_" + uuid.uuid4().hex[:12]
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def replicas(library: Library, database_url: str, redis_url: str,
             tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    env = {"CITYWOK_DATABASE_URL": database_url, "CITYWOK_RATE_LIMIT_STORAGE": redis_url,
           "CITYWOK_KEY_RATE_LIMIT": "1000/hour"}
    servers: list[LiveServer] = []
    try:
        for name in ("a", "b"):
            folder = tmp_path / name
            folder.mkdir()
            servers.append(start_server(library, folder, env=env))
        yield servers[0], servers[1]
    finally:
        for srv in servers:
            stop_server(srv)


def test_two_replicas_agree_on_keys_limits_and_usage(
        replicas: tuple[LiveServer, LiveServer], database_url: str, library: Library) -> None:
    a, b = replicas
    store = KeyStore(database_url)  # what 'citywok keys create' does on replica a's host
    admin = store.create("ops", admin=True).token
    for srv in (a, b):  # valid on both at once
        assert httpx.get(srv.url + "/api/v1/admin/usage",
                         headers={"X-API-Key": admin}).status_code == 200

    limited = store.create("partner", rate_limit="6/hour")
    clip = library.clips[".mp3"]
    seen: Counter[tuple[str, int]] = Counter()
    for n in range(10):  # alternate replicas: the key's 6/hour holds across both
        srv = (a, b)[n % 2]
        r = httpx.post(srv.url + URL, headers={"X-API-Key": limited.token}, timeout=60,
                       files={"file": ("clip.mp3", clip.path.read_bytes(), "audio/mpeg")})
        seen[("ab"[n % 2], r.status_code)] += 1
    print(f"\nper-key limit 6/hour across two replicas, 10 requests alternating: {dict(seen)}")
    assert sum(n for (_, s), n in seen.items() if s == 200) == 6
    assert sum(n for (_, s), n in seen.items() if s == 429) == 4
    assert seen[("a", 200)] >= 1 and seen[("b", 200)] >= 1

    store.revoke(limited.key.key_id)  # refused by both at once
    for srv in (a, b):
        r = httpx.post(srv.url + URL, headers={"X-API-Key": limited.token}, timeout=60,
                       files={"file": ("clip.mp3", b"x", "audio/mpeg")})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"

    figures = UsageLog(Database(database_url)).report(days=1)
    assert figures.identifications == 6 and dict(figures.by_status) == {"match": 6}
    assert dict(figures.refused_by_reason) == {"rate_limited": 4, "invalid_api_key": 2}
    from_b = httpx.get(b.url + "/api/v1/admin/usage", headers={"X-API-Key": admin}).json()
    assert from_b["identifications"] == 6 and from_b["refused"] == 6
