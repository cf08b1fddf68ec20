"""The web page at ``/``: served from our own origin with the strict headers when it is
built, and a plain sentence saying how to build it when it is not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from citywok.web.app import PAGE_DIR, create_app
from citywok.web.core.config import Settings

INDEX_HTML = ('<!doctype html><html><head><script type="module" crossorigin '
              'src="/assets/index-abc123.js"></script></head><body><div id="root"></div>'
              "</body></html>")


def _client(tmp_path: Path, page_dir: Path) -> TestClient:
    settings = Settings(index=tmp_path / "index", keys_db=tmp_path / "keys.sqlite",
                        temp_dir=tmp_path / "work")
    return TestClient(create_app(settings, page_dir=page_dir), raise_server_exceptions=False)


@pytest.fixture
def built(tmp_path: Path) -> Path:
    page = tmp_path / "static"
    (page / "assets").mkdir(parents=True)
    (page / "index.html").write_text(INDEX_HTML)
    (page / "assets" / "index-abc123.js").write_text("console.log('hi')")
    (page / "assets" / "index-abc123.css").write_text("body{}")
    (page / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("not for you")
    return page


def test_page_is_served_with_the_strict_headers(tmp_path: Path, built: Path) -> None:
    with _client(tmp_path, built) as client:
        r = client.get("/")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert r.text == INDEX_HTML
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp
        assert "unsafe-inline" not in csp
        assert "connect-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "microphone=(self)" in r.headers["permissions-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"
        assert client.head("/").status_code == 200


def test_assets_are_typed_and_cached_for_good(tmp_path: Path, built: Path) -> None:
    with _client(tmp_path, built) as client:
        js = client.get("/assets/index-abc123.js")
        assert js.status_code == 200
        assert js.headers["content-type"].startswith("text/javascript")
        assert "immutable" in js.headers["cache-control"]
        assert js.headers["x-content-type-options"] == "nosniff"
        css = client.get("/assets/index-abc123.css")
        assert css.headers["content-type"].startswith("text/css")
        icon = client.get("/favicon.svg")
        assert icon.status_code == 200
        assert icon.headers["content-type"] == "image/svg+xml"


@pytest.mark.parametrize("path", ["/assets/missing.js", "/assets/..%2Fsecret.txt",
                                  "/assets/%2e%2e%2f%2e%2e%2fsecret.txt", "/assets/.hidden",
                                  "/assets/../../secret.txt", "/assets/index-abc123.js%0A"])
def test_assets_outside_the_folder_or_missing_are_404(tmp_path: Path, built: Path,
                                                      path: str) -> None:
    with _client(tmp_path, built) as client:
        r = client.get(path)
        assert r.status_code == 404
        assert "not for you" not in r.text


def test_without_a_built_page_root_says_how_to_build_it(tmp_path: Path) -> None:
    with _client(tmp_path, tmp_path / "nothing-here") as client:
        r = client.get("/")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/plain")
        assert "scripts/build-web" in r.text
        assert "{" not in r.text
        assert client.get("/assets/index-abc123.js").status_code == 404
        assert client.get("/healthz").status_code == 200


def test_page_routes_stay_out_of_the_api_document(tmp_path: Path, built: Path) -> None:
    with _client(tmp_path, built) as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert not any(p == "/" or p.startswith("/assets") for p in paths)


@pytest.mark.skipif(not (PAGE_DIR / "index.html").is_file(),
                    reason="the page is not built (scripts/build-web)")
def test_the_built_page_has_no_inline_script_and_loads_only_our_files() -> None:
    html = (PAGE_DIR / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts
    for attrs, body in scripts:
        assert body.strip() == ""
        assert re.search(r'src="/assets/[^"/]+\.js"', attrs)
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
    assert "<style" not in html
