"""Errors as HTTP: the one table from CityWok's exception tree to statuses.

Every error response has the body ``{"error": {"code": ..., "message": ...}}``. Messages
come from :class:`~citywok.errors.CityWokError` (written for the caller) or from this
package; exception text of anything else never reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from citywok import errors
from citywok.web import usage

log = logging.getLogger("citywok.web")

#: HTTP status for each error class, most specific first; 400 for any other CityWokError.
HTTP_STATUS: tuple[tuple[type[errors.CityWokError], int], ...] = (
    (errors.NotMediaError, 415),
    (errors.MediaTooLongError, 413),
    (errors.MediaError, 422),
    (errors.URLRefusedError, 422),
    (errors.DownloadTooLargeError, 413),
    (errors.DownloadFailedError, 502),
    (errors.FetchError, 502),
    (errors.RateLimitedError, 429),
    (errors.ServiceBusyError, 503),
    (errors.EpisodeNotFoundError, 404),
    (errors.KeyNotFoundError, 404),
    (errors.DatabaseUnavailableError, 503),
    (errors.IndexLockedError, 409),
    (errors.IndexStoreError, 503),
    (errors.LibraryError, 422),
    (errors.SnapshotError, 503),
    (errors.ConfigError, 500),
)

#: Codes of errors raised by the web layer itself, by status.
_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 411: "length_required",
    413: "body_too_large", 414: "url_too_long", 415: "unsupported_media_type",
    422: "invalid_request", 429: "rate_limited", 431: "headers_too_large",
    500: "internal_error", 503: "unavailable",
}


_SERVER_MESSAGES = {
    "index_not_found": "no index is loaded on this server",
    "index_format": "the server's index cannot be read",
    "index_params_mismatch": "the server's index cannot be read",
    "index_error": "the server's index is not available",
    "config_error": "the server is not configured for this",
    "database_unavailable": "the server's database is not available",
}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


#: What the guard layer (citywok.web.security) may answer to any request, for the OpenAPI
#: document of every operation.
GUARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": why} for status, why in (
        (400, "Malformed request (a bad Content-Length, malformed or too deeply nested JSON)"),
        (414, "Request target (path and query) too long"),
        (431, "Request headers too large"),
    )
}
#: Invalid parameters or body, in the error body's shape (FastAPI's default says otherwise).
INVALID_RESPONSE: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "Invalid parameters or body"}}


class ApiError(StarletteHTTPException):
    """An error of the web layer itself (auth, limits, malformed requests)."""

    def __init__(self, status_code: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code
        self.message = message


def status_for(exc: errors.CityWokError) -> int:
    for cls, status in HTTP_STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def describe(exc: BaseException) -> tuple[int, str, str, Mapping[str, str] | None]:
    """(status, code, message, headers) for any exception, safe to show to a client."""
    if isinstance(exc, errors.CityWokError):
        if exc.code in _SERVER_MESSAGES:
            # Server-side trouble: its message may name server paths; the code says enough.
            return status_for(exc), exc.code, _SERVER_MESSAGES.get(
                exc.code, "the server cannot answer this now"), None
        headers = None
        if isinstance(exc, errors.RateLimitedError | errors.ServiceBusyError):
            headers = {"Retry-After": str(max(1, int(exc.retry_after_s + 0.999)))}
        return status_for(exc), exc.code, exc.message, headers
    if isinstance(exc, ApiError):
        return exc.status_code, exc.code, exc.message, exc.headers
    if isinstance(exc, StarletteHTTPException):
        status = exc.status_code
        code = _HTTP_CODES.get(status, "http_error")
        if isinstance(exc.detail, str) and status < 500:
            return status, code, exc.detail, exc.headers
        return status, code, code.replace("_", " "), exc.headers
    return 500, "internal_error", "internal error; the request id identifies it in the logs", \
        None


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_handlers(app: FastAPI) -> None:
    async def on_citywok(request: Request, exc: Exception) -> JSONResponse:
        status, code, message, headers = describe(exc)
        await usage.refused(request, status, code)
        if status >= 500:
            log.warning("request failed: %s", code, extra={"error_code": code})
        return error_response(status, code, message, headers)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        status, code, message, headers = describe(exc)
        await usage.refused(request, status, code)
        return error_response(status, code, message, headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, "invalid_request", _validation_message(exc))

    app.add_exception_handler(errors.CityWokError, on_citywok)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
