"""Error reporting checked for real: the Sentry SDK sends to a local envelope endpoint,
and the event carries the request id but no secret."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from citywok.web.app import create_app
from citywok.web.keys import KeyStore
from tests.web.conftest import Library, base_settings

sentry_sdk = pytest.importorskip("sentry_sdk")


@pytest.fixture
def envelopes() -> Iterator[tuple[str, list[bytes]]]:
    """A tiny Sentry ingest endpoint on loopback; yields its DSN and what it received."""
    got: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding == "br":
                import brotli
                body = brotli.decompress(body)
            got.append(body)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://publickey@127.0.0.1:{httpd.server_address[1]}/42", got
    finally:
        sentry_sdk.get_client().close(timeout=2)
        sentry_sdk.init(dsn=None)  # later tests run without reporting
        httpd.shutdown()
        httpd.server_close()


def test_an_unexpected_error_reaches_sentry_with_the_request_id_and_no_secret(
        library: Library, tmp_path: Path, envelopes: tuple[str, list[bytes]]) -> None:
    dsn, got = envelopes
    settings = base_settings(library, tmp_path, sentry_dsn=dsn)
    key = KeyStore(tmp_path / "keys.sqlite").create("ops", admin=True).token
    app = create_app(settings)

    def broken() -> None:  # stands for a bug anywhere behind a route
        raise RuntimeError("something broke while handling the request")

    app.router.add_api_route("/api/v1/broken", broken, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/broken?token=querysecret123&page=2",
                       headers={"Authorization": f"Bearer {key}", "X-API-Key": key,
                                "Cookie": "session=cookiesecret456"})
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    rid = r.headers["x-request-id"]
    sentry_sdk.flush(timeout=5)

    assert got, "no envelope reached the local Sentry endpoint"
    raw = b"\n".join(got)
    events = [json.loads(line) for body in got for line in body.split(b"\n")
              if line.startswith(b"{") and b'"event_id"' in line and b'"level"' in line]
    assert events, raw[:500]
    event = events[0]
    assert event["tags"]["request_id"] == rid
    assert "something broke" in raw.decode(errors="replace")
    for secret in (key, key.split("_")[2], "querysecret123", "cookiesecret456"):
        assert secret.encode() not in raw, f"{secret[:12]}... leaked to Sentry"
