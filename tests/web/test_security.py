"""Security headers, CORS, request ids, request-size limits, no leaks on errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from citywok.web.security import json_depth_exceeds


def _assert_hardened(headers: object) -> None:
    h = headers  # httpx.Headers
    csp = h["content-security-policy"]  # type: ignore[index]
    script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src
    assert "frame-ancestors 'none'" in csp
    assert h["strict-transport-security"].startswith("max-age=")  # type: ignore[index]
    assert h["x-content-type-options"] == "nosniff"  # type: ignore[index]
    assert h["referrer-policy"]  # type: ignore[index]
    assert "microphone=(self)" in h["permissions-policy"]  # type: ignore[index]
    assert h["x-request-id"]  # type: ignore[index]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/api/v1/stats"),
    ("GET", "/api/v1/episodes"), ("GET", "/openapi.json"), ("GET", "/docs"),
    ("GET", "/nowhere"), ("PUT", "/api/v1/identify"), ("POST", "/api/v1/admin/reload"),
    ("POST", "/api/v1/identify"),
])
def test_security_headers_everywhere(client: TestClient, method: str, path: str) -> None:
    r = client.request(method, path)
    _assert_hardened(r.headers)
    if r.status_code >= 400:
        assert set(r.json()) == {"error"}


def test_docs_page_allows_its_script_by_hash_only(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert "'sha256-" in r.headers["content-security-policy"]


def test_request_id_generated_echoed_and_logged(client: TestClient,
                                                caplog: pytest.LogCaptureFixture) -> None:
    a = client.get("/healthz").headers["x-request-id"]
    b = client.get("/healthz").headers["x-request-id"]
    assert a != b
    with caplog.at_level(logging.INFO, logger="citywok.web.access"):
        r = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert any(getattr(rec, "request_id", None) == "abc-123" for rec in caplog.records)
    bad = client.get("/healthz", headers={"X-Request-ID": "bad id\twith junk" * 10})
    assert bad.headers["x-request-id"] != "bad id\twith junk" * 10


def test_json_log_lines_carry_the_request_id() -> None:
    from citywok.web.logs import JsonFormatter, request_id_var

    token = request_id_var.set("rid-1")
    try:
        rec = logging.makeLogRecord({"msg": "hello %s", "args": ("x",), "levelname": "INFO",
                                     "name": "citywok.web", "path": "/a"})
        line = json.loads(JsonFormatter().format(rec))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello x" and line["request_id"] == "rid-1"
    assert line["path"] == "/a"


def test_no_stack_trace_reaches_the_client(client: TestClient,
                                           caplog: pytest.LogCaptureFixture) -> None:
    app = client.app
    assert isinstance(app, FastAPI)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret /etc/shadow detail")

    with caplog.at_level(logging.ERROR):
        r = client.get("/boom")
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert "secret" not in r.text and "Traceback" not in r.text
    _assert_hardened(r.headers)
    assert any("secret" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)


def test_url_too_long(client: TestClient) -> None:
    r = client.get("/api/v1/episodes?show=" + "a" * 5000)
    assert r.status_code == 414
    assert r.json()["error"]["code"] == "url_too_long"


def test_headers_too_large(client: TestClient) -> None:
    r = client.get("/healthz", headers={f"x-pad-{i}": "v" * 1000 for i in range(20)})
    assert r.status_code == 431
    assert r.json()["error"]["code"] == "headers_too_large"


def test_body_too_large_for_json(client: TestClient) -> None:
    r = client.post("/api/v1/identify", content=b"{" + b" " * 70_000 + b"}",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_bad_content_length(client: TestClient) -> None:
    r = client.post("/api/v1/identify", content=b"{}",
                    headers={"Content-Type": "application/json", "Content-Length": "abc"})
    assert r.status_code == 400


@pytest.mark.parametrize(("text", "depth", "deeper"), [
    (b'{"a": [1, {"b": 2}]}', 3, False), (b'{"a": [1, {"b": 2}]}', 2, True),
    (b'"[[[[[[[[["', 1, False), (b'{"a": "\\"[[[["}', 1, False), (b"[" * 9, 8, True),
])
def test_json_depth(text: bytes, depth: int, deeper: bool) -> None:
    assert json_depth_exceeds(text, depth) is deeper


def test_cors_from_configured_origins(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cors_origins=["https://citywok.example"])
    ok = client.options("/api/v1/identify", headers={
        "Origin": "https://citywok.example", "Access-Control-Request-Method": "POST"})
    assert ok.headers["access-control-allow-origin"] == "https://citywok.example"
    _assert_hardened(ok.headers)
    other = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    simple = client.get("/healthz", headers={"Origin": "https://citywok.example"})
    assert simple.headers["access-control-allow-origin"] == "https://citywok.example"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


def test_no_cors_by_default(client: TestClient) -> None:
    r = client.get("/healthz", headers={"Origin": "https://citywok.example"})
    assert "access-control-allow-origin" not in r.headers
