"""API keys: lifecycle in the store, through the CLI and over HTTP; admin endpoints."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from citywok.cli.main import exit_code_for
from citywok.cli.serve import register
from citywok.errors import KeyNotFoundError
from citywok.web.keys import KeyStore
from tests.web.conftest import Library

URL = "/api/v1/identify"


def test_store_lifecycle(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "k.sqlite")
    assert store.list() == []
    made = store.create("alice", rate_limit="5/minute")
    assert made.token.startswith("cwk_")
    assert store.verify(made.token) == made.key
    assert store.verify(made.token + "x") is None
    assert store.verify("cwk_nope_nope") is None
    assert store.verify("garbage") is None
    raw = (tmp_path / "k.sqlite").read_bytes()
    secret = made.token.split("_", 2)[2]
    assert secret.encode() not in raw
    [listed] = store.list()
    assert listed.name == "alice" and listed.rate_limit == "5/minute" and listed.active
    store.revoke(made.key.key_id)
    assert store.verify(made.token) is None
    assert not store.list()[0].active


def test_cli_lifecycle(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    db = str(tmp_path / "keys.sqlite")
    r = runner.invoke(app, ["keys", "create", "--name", "bob", "--admin", "--limit",
                            "50/hour", "--keys-db", db, "--json"])
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    assert made["token"].startswith("cwk_") and made["admin"] is True
    r = runner.invoke(app, ["keys", "list", "--keys-db", db, "--json"])
    listed = json.loads(r.stdout.splitlines()[0])
    assert listed["key_id"] == made["key_id"] and "token" not in listed
    r = runner.invoke(app, ["keys", "revoke", made["key_id"], "--keys-db", db])
    assert r.exit_code == 0 and "revoked" in r.stdout
    r = runner.invoke(app, ["keys", "revoke", made["key_id"], "--keys-db", db])
    assert r.exit_code == exit_code_for(KeyNotFoundError("")) == 66, r.output
    assert "no active key" in r.output
    r = runner.invoke(app, ["keys", "create", "--name", "x", "--limit", "lots",
                            "--keys-db", db])
    assert r.exit_code != 0
    assert KeyStore(Path(db)).verify(made["token"]) is None
    r = runner.invoke(app, ["serve", "--help"])
    assert r.exit_code == 0 and "--workers" in r.stdout


@pytest.fixture
def own_index(library: Library, tmp_path: Path) -> Path:
    copy = tmp_path / "index-copy"
    shutil.copytree(library.index, copy)
    return copy


def test_keys_over_http(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = make_client()
    store = KeyStore(tmp_path / "keys.sqlite")
    made = store.create("web")
    for headers in ({"Authorization": f"Bearer {made.token}"}, {"X-API-Key": made.token}):
        r = client.post("/api/v1/identify", json={}, headers=headers)
        assert r.status_code == 422  # authenticated, then the body is checked
        assert r.headers["ratelimit-limit"] == "1000"
    r = client.post("/api/v1/identify", json={}, headers={"X-API-Key": "cwk_bad_bad"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    store.revoke(made.key.key_id)
    r = client.post("/api/v1/identify", json={}, headers={"X-API-Key": made.token})
    assert r.status_code == 401


def test_admin_requires_an_admin_key(make_client: Callable[..., TestClient], own_index: Path,
                                     tmp_path: Path, library: Library) -> None:
    client = make_client(index=own_index, library_roots=[library.folder])
    store = KeyStore(tmp_path / "keys.sqlite")
    user = store.create("user").token
    admin = store.create("root", admin=True).token
    calls = [("POST", "/api/v1/admin/reload", None),
             ("DELETE", "/api/v1/admin/episodes/demo-show-s01e01", None),
             ("POST", "/api/v1/admin/index", {"paths": [str(library.folder)]})]
    for method, path, body in calls:
        assert client.request(method, path, json=body).status_code == 401
        r = client.request(method, path, json=body, headers={"X-API-Key": user})
        assert r.status_code == 403
    auth = {"Authorization": f"Bearer {admin}"}
    assert client.post("/api/v1/admin/reload", headers=auth).json()["episodes"] == 3
    r = client.delete("/api/v1/admin/episodes/demo-show-s01e01", headers=auth)
    assert r.status_code == 200 and r.json()["removed"]["episode_id"] == "demo-show-s01e01"
    assert client.get("/api/v1/stats").json()["episodes"] == 2
    r = client.delete("/api/v1/admin/episodes/demo-show-s01e01", headers=auth)
    assert r.status_code == 404
    r = client.post("/api/v1/admin/index", json={"paths": [str(library.folder)]}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["episodes"] == 3
    left_out = {f["file"]: f["reason"] for f in r.json()["left_out"]}
    assert left_out["truth.json"] and left_out[".raw-01.npy"] == "hidden file"
    assert client.get("/api/v1/episodes").json()["total"] == 3
    r = client.post("/api/v1/admin/index", json={"paths": ["/etc"]}, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "library_error"


def test_admin_index_disabled_without_roots(make_client: Callable[..., TestClient],
                                            own_index: Path, tmp_path: Path) -> None:
    client = make_client(index=own_index)
    admin = KeyStore(tmp_path / "keys.sqlite").create("root", admin=True).token
    r = client.post("/api/v1/admin/index", json={"paths": ["/tmp"]},
                    headers={"X-API-Key": admin})
    assert r.status_code == 403 and r.json()["error"]["code"] == "indexing_disabled"


def test_index_locked_is_a_conflict(make_client: Callable[..., TestClient], own_index: Path,
                                    tmp_path: Path) -> None:
    from citywok.index import Index

    client = make_client(index=own_index)
    admin = KeyStore(tmp_path / "keys.sqlite").create("root", admin=True).token
    with Index.open(own_index, writable=True):
        r = client.delete("/api/v1/admin/episodes/demo-show-s01e02",
                          headers={"X-API-Key": admin})
    assert r.status_code == 409 and r.json()["error"]["code"] == "index_locked"


def test_catalogue_and_stats(client: TestClient) -> None:
    page = client.get("/api/v1/episodes?limit=2").json()
    assert page["total"] == 3 and len(page["items"]) == 2
    assert page["items"][0]["episode_id"] == "demo-show-s01e01"
    assert "source_path" not in page["items"][0]
    rest = client.get("/api/v1/episodes?limit=2&offset=2").json()
    assert [e["episode_id"] for e in rest["items"]] == ["demo-show-s01e03"]
    assert client.get("/api/v1/episodes?show=Nope").json()["total"] == 0
    assert client.get("/api/v1/episodes?limit=0").status_code == 422
    stats = client.get("/api/v1/stats").json()
    assert stats["episodes"] == 3 and stats["hours"] > 0 and stats["format_version"] >= 1
    assert "path" not in stats
    assert client.get("/readyz").json() == {"status": "ready", "episodes": 3, "damaged": []}


def test_not_ready_without_index(make_client: Callable[..., TestClient],
                                 tmp_path: Path) -> None:
    client = make_client(index=tmp_path / "missing")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    r = client.get("/api/v1/stats")
    assert r.status_code == 503 and str(tmp_path) not in r.text


def test_wrong_keys_are_slowed_then_refused(make_client: Callable[..., TestClient],
                                            tmp_path: Path) -> None:
    """Issue 8, item 19: each wrong key from an address waits longer; past the limit, keys
    from it are refused outright (a right one too: guessing must not go on)."""
    client = make_client(auth_failure_delay_s=0.2, auth_failure_rate_limit="3/hour")
    good = {"X-API-Key": KeyStore(tmp_path / "keys.sqlite").create("real").token}
    refused_link = {"url": "https://refused.example/clip"}
    assert client.post(URL, json=refused_link, headers=good).status_code == 422
    waits = []
    for n in range(3):
        started = time.monotonic()
        r = client.post(URL, json=refused_link, headers={"X-API-Key": f"cwk_{n:012x}_guess"})
        waits.append(time.monotonic() - started)
        assert r.status_code == 401
    assert waits[0] >= 0.2 and waits[1] >= 0.4 and waits[2] >= 0.6, waits
    for headers in ({"X-API-Key": "cwk_000000000009_guess"}, good):
        r = client.post(URL, json=refused_link, headers=headers)
        assert r.status_code == 429 and "retry-after" in r.headers, r.text
    assert client.post(URL, json=refused_link).status_code == 422  # anonymous still answered


def test_wrong_keys_on_the_listening_socket_count_too(make_client: Callable[..., TestClient],
                                                      ) -> None:
    """The WebSocket checks keys itself (no dependency there): the same slowing and limit."""
    client = make_client(auth_failure_delay_s=0.2, auth_failure_rate_limit="1/hour")
    started = time.monotonic()
    with client.websocket_connect("/api/v1/listen",
                                  headers={"x-api-key": "cwk_000000000001_guess"}) as ws:
        msg = ws.receive_json()
    assert msg["type"] == "error" and msg["status"] == 401, msg
    assert time.monotonic() - started >= 0.2
    with client.websocket_connect("/api/v1/listen",
                                  headers={"x-api-key": "cwk_000000000002_guess"}) as ws:
        msg = ws.receive_json()
    assert msg["status"] == 429 and msg["retry_after_s"] > 0, msg


@pytest.mark.parametrize("headers", [{"X-API-Key": ""}, {"X-API-Key": "  "},
                                     {"Authorization": "Bearer "}])
def test_an_empty_key_is_refused_not_anonymous(client: TestClient,
                                               headers: dict[str, str]) -> None:
    """Issue 18, H: a key variable that came out empty must not be served quietly on the
    anonymous tier."""
    r = client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", r.text
    assert "empty" in r.json()["error"]["message"]
    with client.websocket_connect("/api/v1/listen", headers=headers) as ws:
        msg = ws.receive_json()
    assert msg["type"] == "error" and msg["status"] == 401, msg
    assert client.get("/api/v1/me").json()["tier"] == "anonymous"  # no header: anonymous


def test_every_route_that_reads_a_key_documents_the_wrong_key_limit(client: TestClient
                                                                    ) -> None:
    """Issue 18, H: past the wrong-key limit any route that reads a key answers 429."""
    spec = client.get("/openapi.json").json()
    missing = [f"{method.upper()} {path}" for path, ops in spec["paths"].items()
               for method, op in ops.items() if op.get("security")
               and not {"401", "429"} <= set(op["responses"])]
    assert missing == []
    assert any(op.get("security") for ops in spec["paths"].values() for op in ops.values())
