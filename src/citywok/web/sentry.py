"""Error reporting to Sentry (off unless ``CITYWOK_SENTRY_DSN`` is set), scrubbed.

An event carries the request id (the ``request_id`` tag, also in the response's
``X-Request-ID`` and the JSON logs) and never a secret: API keys (``cwk_...``, in any
header, the query string or a message), cookies, the ``Authorization`` header, query
strings, request bodies, local variables of stack frames, or client addresses.
"""

from __future__ import annotations

import re
from typing import Any

from citywok.errors import CityWokError
from citywok.web.core.config import Settings
from citywok.web.logs import request_id_var

FILTERED = "[Filtered]"
#: Header names dropped from events, besides Sentry's own deny list.
_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
            "x-admin-key", "x-forwarded-for", "x-real-ip", "forwarded")
_SECRET_WORDS = ("key", "token", "secret", "auth", "password", "session", "cookie", "dsn")
_TOKEN = re.compile(r"cwk_[A-Za-z0-9]+_[A-Za-z0-9_-]+")
_QUERY = re.compile(r"\?[^\s\"']*")


def init(settings: Settings) -> None:
    if not settings.sentry_dsn:
        return
    try:
        import sentry_sdk
        from sentry_sdk.scrubber import DEFAULT_DENYLIST, DEFAULT_PII_DENYLIST, EventScrubber
    except ImportError:
        raise CityWokError("CITYWOK_SENTRY_DSN is set but sentry-sdk is not installed") from None
    sentry_sdk.init(
        dsn=settings.sentry_dsn, send_default_pii=False, include_local_variables=False,
        max_request_body_size="never", traces_sample_rate=settings.sentry_traces_sample_rate,
        event_scrubber=EventScrubber(recursive=True, denylist=[
            *DEFAULT_DENYLIST, *DEFAULT_PII_DENYLIST, "x-api-key", "x_admin_key"]),
        before_send=scrub,  # type: ignore[arg-type]
        before_breadcrumb=_scrub_breadcrumb)


def scrub(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Tag the request id; drop everything that could hold a secret."""
    rid = request_id_var.get()
    if rid:
        event.setdefault("tags", {})["request_id"] = rid
    request = event.get("request")
    if isinstance(request, dict):
        for field in ("cookies", "data", "env"):
            request.pop(field, None)
        if request.get("query_string"):
            request["query_string"] = FILTERED
        if isinstance(request.get("url"), str):
            request["url"] = request["url"].split("?", 1)[0]
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                k: v for k, v in headers.items()
                if k.lower() not in _HEADERS
                and not any(w in k.lower() for w in _SECRET_WORDS)}
    event.pop("user", None)
    return _walk(event)  # type: ignore[no-any-return]


def _scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    return _walk(crumb)  # type: ignore[no-any-return]


def _walk(value: Any) -> Any:
    """Every string: tokens and query strings replaced (messages, breadcrumbs, frames)."""
    if isinstance(value, str):
        return _QUERY.sub("?" + FILTERED, _TOKEN.sub(FILTERED, value))
    if isinstance(value, dict):
        return {k: _walk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v) for v in value]
    return value
