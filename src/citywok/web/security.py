"""The hardened surface: request ids, security headers, size limits, client addresses.

:class:`GuardMiddleware` is a plain ASGI middleware (it never buffers a response, so it
suits Server-Sent Events) and the outermost layer of the app: whatever happens inside,
the client gets security headers, a request id and, on failure, the stable error body.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citywok.web import metrics
from citywok.web.core.config import Settings
from citywok.web.errors import ApiError, describe, error_body
from citywok.web.logs import request_id_var

log = logging.getLogger("citywok.web.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: Room for multipart boundaries and the other form fields around an upload.
MULTIPART_OVERHEAD_BYTES = 64 * 1024

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PERMISSIONS_POLICY = ("microphone=(self), camera=(), geolocation=(), payment=(), usb=(), "
                      "interest-cohort=()")


def security_headers(settings: Settings, *, csp: str = CSP) -> list[tuple[bytes, bytes]]:
    headers = {
        "content-security-policy": csp,
        "strict-transport-security": f"max-age={settings.hsts_max_age_s}; includeSubDomains",
        "x-content-type-options": "nosniff",
        "referrer-policy": "strict-origin-when-cross-origin",
        "permissions-policy": PERMISSIONS_POLICY,
        "x-frame-options": "DENY",
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-resource-policy": "same-origin",
    }
    return [(k.encode(), v.encode()) for k, v in headers.items()]


def human_size(n: int) -> str:
    """A byte count as a person reads it: 1000000 → "1 MB", 65536 → "65.5 kB"."""
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{round(n / size, 1):g} {unit}"
    return f"{n} bytes"


class BodyTooLarge(ApiError):
    """413 for a body past its limit; an upload's message names the configured file size
    (not the internal limit, which adds room for the form around the file)."""

    def __init__(self, limit: int, *, upload: bool = False) -> None:
        what = "the file" if upload else "the request body"
        super().__init__(413, "body_too_large", f"{what} is larger than the "
                         f"{human_size(limit)} this server accepts")


class GuardMiddleware:
    """Request id, limits on target/headers/body, security headers, JSON access log."""

    def __init__(self, app: ASGIApp, *, settings: Settings,
                 csp_overrides: dict[str, str] | None = None,
                 upload_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.settings = settings
        self.csp_overrides = csp_overrides or {}
        #: Paths whose uploads have a limit of their own (long inputs for timelines).
        self.upload_limits = upload_limits or {}
        self.headers = security_headers(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        s = self.settings
        incoming = Headers(scope=scope).get("x-request-id", "")
        rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status_holder = [0]
        path = scope.get("path", "")
        extra_headers = list(self.headers)
        if path in self.csp_overrides:
            extra_headers = security_headers(s, csp=self.csp_overrides[path])
        extra_headers.append((b"x-request-id", rid.encode()))
        extra_headers.append((b"cache-control", b"no-store"))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                names = {k.lower() for k, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(k, v) for k, v in extra_headers if k not in names]
                state = scope.get("state", {})
                headers += state.get("ratelimit_headers", [])
                message = {**message, "headers": headers}
            await send(message)

        try:
            refusal = self._refuse(scope)
            if refusal is not None:
                await _send_error(send_wrapper, *refusal)
                return
            limit = self._body_limit(scope)
            length = Headers(scope=scope).get("content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                if not length.isdigit():
                    await _send_error(send_wrapper, 400, "bad_request",
                                      "invalid Content-Length")
                else:
                    refused = self._too_large(scope)
                    await _send_error(send_wrapper, 413, refused.code, refused.message)
                return
            received = [0]

            async def receive_wrapper() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    received[0] += len(message.get("body", b""))
                    if received[0] > limit:
                        raise self._too_large(scope)
                return message

            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:  # the one place where anything is turned into a response
            status, code, message, headers = describe(exc)
            if status >= 500:
                log.error("unhandled error", exc_info=exc, extra={"path": path})
            if status_holder[0] == 0:
                await _send_error(send_wrapper, status, code, message, headers)
            # A response already under way is cut off; uvicorn closes the connection.
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            metrics.REQUESTS.labels(method, route, str(status_holder[0])).inc()
            metrics.LATENCY.labels(method, route).observe(elapsed)
            client = scope.get("client")
            log.info("request", extra={
                "method": scope.get("method"), "path": path, "status": status_holder[0],
                "duration_ms": round(elapsed * 1000, 2),
                "client": client[0] if client else None, "request_id": rid,
            })
            request_id_var.reset(token)

    def _refuse(self, scope: Scope) -> tuple[int, str, str] | None:
        s = self.settings
        target = len(scope.get("raw_path") or scope.get("path", "").encode()) + len(
            scope.get("query_string", b""))
        if target > s.max_url_length:
            return 414, "url_too_long", f"the URL is longer than {s.max_url_length} bytes"
        header_bytes = sum(len(k) + len(v) + 4 for k, v in scope.get("headers", []))
        if header_bytes > s.max_header_bytes:
            return 431, "headers_too_large", (f"the request headers are larger than "
                                              f"{s.max_header_bytes} bytes")
        return None

    @staticmethod
    def _is_upload(scope: Scope) -> bool:
        ctype = Headers(scope=scope).get("content-type", "")
        return ctype.lower().startswith("multipart/form-data")

    def _upload_limit(self, scope: Scope) -> int:
        return self.upload_limits.get(scope.get("path", ""), self.settings.max_upload_bytes)

    def _body_limit(self, scope: Scope) -> int:
        if self._is_upload(scope):
            return self._upload_limit(scope) + MULTIPART_OVERHEAD_BYTES
        return self.settings.max_body_bytes

    def _too_large(self, scope: Scope) -> BodyTooLarge:
        if self._is_upload(scope):
            return BodyTooLarge(self._upload_limit(scope), upload=True)
        return BodyTooLarge(self.settings.max_body_bytes)


async def _send_error(send: Send, status: int, code: str, message: str,
                      headers: Mapping[str, str] | None = None) -> None:
    body = json.dumps(error_body(code, message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if status in (413, 414, 431):
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# -- request bodies ------------------------------------------------------------------------


def json_depth_exceeds(raw: bytes, max_depth: int) -> bool:
    """Whether JSON text nests deeper than ``max_depth`` (checked before parsing)."""
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > max_depth:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


async def read_json(request: Request, settings: Settings) -> Any:
    """The request's JSON body, within the size and depth limits, or a 4xx ApiError."""
    raw = await request.body()
    if len(raw) > settings.max_body_bytes:
        raise BodyTooLarge(settings.max_body_bytes)
    if json_depth_exceeds(raw, settings.max_json_depth):
        raise ApiError(400, "json_too_deep",
                       f"the JSON body nests deeper than {settings.max_json_depth} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None


# -- client address ------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items)


def _in(addr: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(request: HTTPConnection, trusted: tuple[Network, ...]) -> str:
    """The socket peer, or, behind trusted proxies, the last untrusted X-Forwarded-For hop."""
    peer = request.client.host if request.client else "unknown"
    if not trusted or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",")
            if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return hops[0] if hops else peer
