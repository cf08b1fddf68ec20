"""``create_app(settings)``: the FastAPI application of ``citywok serve``.

Layers, outermost first: :class:`~citywok.web.security.GuardMiddleware` (request id,
limits, security headers, the last word on errors), CORS, then the routes under
``/api/v1``, the unversioned health endpoints, and the web page at ``/`` (built from
``web/`` into ``static/`` by ``scripts/build-web``; same origin, so the strict CSP holds).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from citywok.analysis.peaks import import_scipy
from citywok.errors import CityWokError
from citywok.web import sentry
from citywok.web.core.config import API_PREFIX, Settings, load_settings
from citywok.web.errors import GUARD_RESPONSES, INVALID_RESPONSE, install_handlers
from citywok.web.routes import (
    admin,
    episodes,
    health,
    identify,
    listen,
    me,
    shares,
    timeline,
    usage,
)
from citywok.web.security import GuardMiddleware
from citywok.web.state import Services

log = logging.getLogger("citywok.web")

#: Where ``scripts/build-web`` puts the built page.
PAGE_DIR = Path(__file__).parent / "static"
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".svg": "image/svg+xml", ".png": "image/png", ".woff2": "font/woff2",
                ".json": "application/json", ".webmanifest": "application/manifest+json"}
PAGE_MISSING = ("CityWok's web page is not built in this installation: build it with "
                "scripts/build-web (needs Node.js). The API works without it: see /docs.\n")


#: Swagger UI's files, from the pinned ``fastapi-offline`` package: /docs needs no CDN.
DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
               "swagger-ui.css": "text/css; charset=utf-8"}


def _docs_assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def _docs_page() -> tuple[str, str]:
    """Swagger UI's page (its files from our origin) and a CSP that allows its one inline
    script by hash and nothing from another origin."""
    html = get_swagger_ui_html(
        openapi_url="/openapi.json", title="CityWok API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/favicon.svg",
        # No badge from the online validator: the page must not call out.
        swagger_ui_parameters={"validatorUrl": None},
    ).body
    text = bytes(html).decode()
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(m.encode()).digest()).decode() + "'"
        for m in re.findall(r"<script>(.*?)</script>", text, flags=re.S)
    ]
    # Swagger UI sets style attributes from script, hence 'unsafe-inline' for styles only.
    csp = (f"default-src 'self'; script-src 'self' {' '.join(hashes)}; "
           "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
           "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
    return text, csp


def _add_page(app: FastAPI, page_dir: Path) -> None:
    """``/`` serves the built page; ``/assets/*`` its hashed files, cached for good."""

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> Response:
        index = page_dir / "index.html"
        if not index.is_file():
            return PlainTextResponse(PAGE_MISSING, status_code=404)
        return FileResponse(index, media_type="text/html; charset=utf-8")

    def _file(path: Path, *, immutable: bool) -> Response:
        if not path.is_file():
            return PlainTextResponse("not found\n", status_code=404)
        headers = {"Cache-Control": "public, max-age=31536000, immutable"} if immutable else {}
        return FileResponse(path, headers=headers, media_type=_ASSET_TYPES.get(
            path.suffix, "application/octet-stream"))

    @app.api_route("/assets/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    async def asset(name: str) -> Response:
        if not _ASSET_NAME.fullmatch(name):
            return PlainTextResponse("not found\n", status_code=404)
        return _file(page_dir / "assets" / name, immutable=True)

    @app.api_route("/favicon.svg", methods=["GET", "HEAD"], include_in_schema=False)
    async def favicon() -> Response:
        return _file(page_dir / "favicon.svg", immutable=False)

    # Installing the page: its manifest, icons and service worker (never cached by HTTP,
    # so a new worker is seen at once).
    @app.api_route("/manifest.webmanifest", methods=["GET", "HEAD"], include_in_schema=False)
    async def manifest() -> Response:
        return _file(page_dir / "manifest.webmanifest", immutable=False)

    @app.api_route("/sw.js", methods=["GET", "HEAD"], include_in_schema=False)
    async def service_worker() -> Response:
        return _file(page_dir / "sw.js", immutable=False)

    @app.api_route("/icons/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    async def icon(name: str) -> Response:
        if not _ASSET_NAME.fullmatch(name):
            return PlainTextResponse("not found\n", status_code=404)
        return _file(page_dir / "icons" / name, immutable=False)


def create_app(settings: Settings, *, page_dir: Path = PAGE_DIR) -> FastAPI:
    """Build the app over the index at ``settings.index`` (opened when first needed).

    ``page_dir`` holds the built web page (``index.html``, ``assets/``); when it is absent
    ``/`` answers 404 with a plain sentence saying how to build it.
    """
    sentry.init(settings)
    services = Services.build(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.start()
        await run_in_threadpool(import_scipy)  # not in the first identification
        try:
            loaded = await run_in_threadpool(services.index.get)
        except CityWokError as exc:
            log.warning("index not loaded at startup: %s", exc.message,
                        extra={"index": str(settings.index)})
        else:
            log.info("index loaded", extra={"index": str(loaded.path),
                                            "episodes": len(loaded.episodes)})
        yield
        services.close()

    app = FastAPI(
        title="CityWok",
        summary="Tell which TV episode a short clip comes from, and where in it.",
        version="1",
        docs_url=None, redoc_url=None, openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.services = services
    api = APIRouter(prefix=API_PREFIX, responses=GUARD_RESPONSES)
    api.include_router(identify.router)
    api.include_router(timeline.router)
    api.include_router(episodes.router, responses=INVALID_RESPONSE)
    api.include_router(admin.router, responses=INVALID_RESPONSE)
    api.include_router(usage.router, responses=INVALID_RESPONSE)
    api.include_router(me.router)
    api.include_router(shares.router, responses=INVALID_RESPONSE)
    api.include_router(listen.router)
    app.include_router(api)
    app.include_router(health.router, responses=GUARD_RESPONSES)
    install_handlers(app)

    page, docs_csp = _docs_page()

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    docs_assets = _docs_assets_dir()

    @app.api_route("/docs/assets/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        if name not in DOCS_ASSETS:
            return PlainTextResponse("not found\n", status_code=404)
        # The package version is pinned, so the files never change under a name.
        return FileResponse(docs_assets / name, media_type=DOCS_ASSETS[name],
                            headers={"Cache-Control": "public, max-age=31536000, immutable"})

    _add_page(app, page_dir)
    shares.add_share_page(app, page_dir)

    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "X-API-Key", "Content-Type", "Accept", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining",
                        "RateLimit-Reset", "RateLimit-Policy"],
        max_age=600,
    )
    app.add_middleware(GuardMiddleware, settings=settings, csp_overrides={"/docs": docs_csp},
                       upload_limits={API_PREFIX + "/timeline":
                                      settings.timeline_max_upload_bytes})
    return app


def create_app_from_env() -> FastAPI:
    """The uvicorn factory of ``citywok serve``: settings from ``CITYWOK_*`` variables."""
    from citywok.web.logs import setup_logging

    settings = load_settings()
    setup_logging(settings.log_level)
    return create_app(settings)
