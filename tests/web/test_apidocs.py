"""``/docs`` works with no internet: Swagger UI's files come from our own origin, pinned,
and the docs page's CSP names no other host (issue 8, item 9)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_page_loads_nothing_from_another_origin(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    refs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
    assert refs, "the docs page references no script or stylesheet"
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in refs), refs
    csp = r.headers["content-security-policy"]
    assert "https:" not in csp and "http:" not in csp, csp
    assert "script-src 'self' 'sha256-" in csp


def test_swagger_ui_files_are_served_from_our_origin(client: TestClient) -> None:
    page = client.get("/docs").text
    js = next(u for u in re.findall(r'src="([^"]+)"', page) if u.endswith(".js"))
    css = next(u for u in re.findall(r'href="([^"]+)"', page) if u.endswith(".css"))
    script = client.get(js)
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in script.text[:2000]
    assert "immutable" in script.headers["cache-control"]
    style = client.get(css)
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
    # Only the pinned files are served; nothing else of the package or the disk.
    assert client.get("/docs/assets/..%2F__init__.py").status_code == 404
    assert client.get("/docs/assets/core.py").status_code == 404
