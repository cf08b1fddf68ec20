"""FastAPI dependencies as ``Annotated`` aliases: ``ServicesDep``, ``IndexDep``,
``ApiKeyDep``, ``AdminKeyDep``, ``QuotaDep``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from citywok.index import Index
from citywok.web import metrics
from citywok.web.errors import ApiError
from citywok.web.keys import ApiKey
from citywok.web.ratelimit import Quota, RateLimiter
from citywok.web.security import client_ip
from citywok.web.state import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_index(services: ServicesDep) -> Index:
    return services.index.get()


IndexDep = Annotated[Index, Depends(get_index)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cwk_...`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                       description="An API key: `X-API-Key: cwk_...`")


async def get_api_key(
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> ApiKey | None:
    """The caller's key, ``None`` when anonymous; a key that is wrong is a 401."""
    token = header or (bearer.credentials if bearer is not None else None)
    if not token:
        return None
    key = await run_in_threadpool(services.keys.verify, token)
    if key is None:
        raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked",
                       headers={"WWW-Authenticate": "Bearer"})
    return key


ApiKeyDep = Annotated[ApiKey | None, Depends(get_api_key)]


def require_admin(key: ApiKeyDep) -> ApiKey:
    if key is None:
        raise ApiError(401, "unauthorized", "an admin API key is required",
                       headers={"WWW-Authenticate": "Bearer"})
    if not key.admin:
        raise ApiError(403, "forbidden", "this API key is not an admin key")
    return key


AdminKeyDep = Annotated[ApiKey, Depends(require_admin)]


async def count_identification(request: Request, services: ServicesDep,
                               key: ApiKeyDep) -> Quota:
    """Count one identification against the caller's tier; 429 past the limit."""
    ip = client_ip(request, services.trusted_proxies)
    quota = await services.limiter.hit(key=key, ip=ip)
    request.state.ratelimit_headers = quota.headers()
    if not quota.allowed:
        metrics.RATE_LIMITED.labels("key" if key else "anonymous").inc()
        raise RateLimiter.refusal(quota, keyed=key is not None)
    return quota


QuotaDep = Annotated[Quota, Depends(count_identification)]
