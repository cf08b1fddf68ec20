"""Usage figures: recorded by the identify route, summed by ``citywok usage`` and the
admin endpoint; they add up to the requests made, and hold no address or file name."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from citywok.cli.main import app as cli_app
from citywok.cli.main import exit_code_for
from citywok.errors import DatabaseUnavailableError
from citywok.web.keys import KeyStore
from tests.web.conftest import Library

URL = "/api/v1/identify"


def test_usage_adds_up_to_the_requests_made(make_client: Callable[..., TestClient],
                                            library: Library, tmp_path: Path) -> None:
    client = make_client(anonymous_rate_limit="4/hour")
    admin = KeyStore(tmp_path / "keys.sqlite").create("ops", admin=True).token
    clip = library.clips[".mp3"]
    body = clip.path.read_bytes()
    made: dict[int, int] = {}

    def post(**kw: object) -> None:
        r = client.post(URL, **kw)
        made[r.status_code] = made.get(r.status_code, 0) + 1

    post(files={"file": ("clip.mp3", body)})
    post(files={"file": ("clip.mp3", body)}, data={"stream": "true"})
    post(files={"file": ("recording.webm", body)})  # what the page's microphone sends
    post(files={"file": ("notes.txt", b"this is not audio at all" * 20)})
    post(files={"file": ("clip.mp3", body)}, headers={"X-API-Key": "cwk_nope_wrong"})
    post(files={"file": ("clip.mp3", body)})  # the 5th counted request: over the limit
    assert made == {200: 3, 415: 1, 401: 1, 429: 1}

    r = client.get("/api/v1/admin/usage", headers={"X-API-Key": admin})
    assert r.status_code == 200
    figures = r.json()
    assert figures["identifications"] == 3
    assert figures["by_status"] == {"match": 3}
    assert figures["by_source"] == {"upload": 2, "microphone": 1}
    assert figures["refused_by_reason"] == {"not_media": 1, "invalid_api_key": 1,
                                            "rate_limited": 1}
    assert figures["refused"] == 3
    assert figures["top_episodes"] == [{"episode_id": clip.episode_id, "matches": 3}]
    assert figures["latency_ms"]["count"] == 3
    assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["max"]
    assert sum(d["identifications"] for d in figures["days"]) == 3
    assert client.get("/api/v1/admin/usage").status_code == 401

    # Nothing that points at a person or a clip is stored.
    with sqlite3.connect(tmp_path / "keys.sqlite") as db:
        rows = repr(db.execute("SELECT * FROM usage_events").fetchall())
    for secret in ("127.0.0.1", "testclient", "clip.mp3", "recording.webm", "notes.txt",
                   "cwk_nope_wrong"):
        assert secret not in rows

    out = CliRunner().invoke(cli_app, ["usage", "--keys-db", str(tmp_path / "keys.sqlite"),
                                       "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["by_source"] == figures["by_source"]
    text = CliRunner().invoke(cli_app, ["usage", "--keys-db", str(tmp_path / "keys.sqlite")])
    assert "3 identifications, 3 refused" in text.output


def test_an_unreachable_database_exits_through_the_table(tmp_path: Path) -> None:
    # A port nothing listens on: the failure is named by kind (never by URL, which may
    # hold a password) and exits with the table's code for an unavailable service.
    url = "postgresql+psycopg://citywok:s3cret@127.0.0.1:9/citywok"
    r = CliRunner().invoke(cli_app, ["usage", "--index", str(tmp_path)],
                           env={"CITYWOK_DATABASE_URL": url})
    assert r.exit_code == exit_code_for(DatabaseUnavailableError("")) == 69, r.output
    assert "usage database is unavailable" in r.output and "s3cret" not in r.output
