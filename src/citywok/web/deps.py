"""FastAPI dependencies as ``Annotated`` aliases: ``ServicesDep``, ``IndexDep``,
``ApiKeyDep``, ``AdminKeyDep``, ``BudgetDep``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from citywok.errors import RateLimitedError
from citywok.index import Index
from citywok.web import metrics
from citywok.web.errors import ApiError, ErrorBody
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


#: What every route that reads a key may answer past the wrong-key limit (documented with
#: the route's own responses).
WRONG_KEYS_RESPONSE: dict[int | str, dict[str, Any]] = {429: {
    "model": ErrorBody,
    "description": "Too many wrong API keys from this address: every key is refused for a "
                   "while"}}


def refuse_empty_key(headers: Mapping[str, str]) -> None:
    """An ``X-API-Key`` (or bearer token) sent empty is a 401, never anonymous: a client
    whose key variable came out empty should hear so, not be quietly served on the
    anonymous tier."""
    header = headers.get("x-api-key")
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if (header is not None and not header.strip()) or (
            scheme.lower() == "bearer" and not credentials.strip()):
        raise ApiError(401, "invalid_api_key", "the API key sent is empty (send a key, or no "
                       "key header at all for the anonymous tier)",
                       headers={"WWW-Authenticate": "Bearer"})


async def get_api_key(
    request: Request,
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> ApiKey | None:
    """The caller's key, ``None`` when anonymous; a key that is wrong or empty is a 401."""
    refuse_empty_key(request.headers)
    token = header or (bearer.credentials if bearer is not None else None)
    if not token:
        return None
    return await verify_api_key(services, token, client_ip(request,
                                                           services.trusted_proxies))


async def verify_api_key(services: Services, token: str, ip: str) -> ApiKey:
    """The active key ``token`` belongs to; a wrong one is a 401 that comes slower with
    each wrong key from ``ip``, and past the limit every key from there is a 429. (Also
    for the WebSocket, which cannot use the dependency.)"""
    left = await services.limiter.auth_failures_left(ip)
    if not left.allowed:
        # Too many wrong keys from here: no key is even looked at (a right one neither, or
        # guessing would go on, answered 429 instead of 401).
        raise _too_many_wrong_keys(left)
    key = await run_in_threadpool(services.keys.verify, token)
    if key is None:
        # Counted and checked in one step: requests that all passed the check above
        # while their keys were being looked up must not all get their 401 (each would
        # be one more guess answered).
        failures = await services.limiter.hit_auth_failure(ip)
        if not failures.allowed:
            raise _too_many_wrong_keys(failures)
        used = failures.limit - failures.remaining
        # Slower with each wrong key; asleep on the event loop, holding no thread.
        await asyncio.sleep(services.settings.auth_failure_delay_s * min(max(used, 1), 10))
        raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked",
                       headers={"WWW-Authenticate": "Bearer"})
    return key


def _too_many_wrong_keys(quota: Quota) -> RateLimitedError:
    return RateLimitedError(f"too many wrong API keys from this address ({quota.limit} per "
                            f"{quota.window_s} s)", retry_after_s=max(1.0, quota.reset_s))


ApiKeyDep = Annotated[ApiKey | None, Depends(get_api_key)]


def require_admin(key: ApiKeyDep) -> ApiKey:
    if key is None:
        raise ApiError(401, "unauthorized", "an admin API key is required",
                       headers={"WWW-Authenticate": "Bearer"})
    if not key.admin:
        raise ApiError(403, "forbidden", "this API key is not an admin key")
    return key


AdminKeyDep = Annotated[ApiKey, Depends(require_admin)]


@dataclass
class Budget:
    """The caller's rate limits for one identification request.

    Taken before the body is read (a spent quota answers 429 at once); the route then
    calls :meth:`spend` once the request is understood and accepted, or :meth:`refused`
    when it is malformed or refused, which counts against a separate limit only.
    """

    request: Request
    limiter: RateLimiter
    key: ApiKey | None
    ip: str

    async def check(self) -> None:
        quota = await self.limiter.peek(key=self.key, ip=self.ip)
        self.request.state.ratelimit_headers = quota.headers()
        if not quota.allowed:
            self._refuse(quota)
        refusals = await self.limiter.refusals_left(key=self.key, ip=self.ip)
        if not refusals.allowed:
            raise self._too_many_refused(refusals)

    async def spend(self) -> Quota:
        """Count one identification; 429 past the limit."""
        quota = await self.limiter.hit(key=self.key, ip=self.ip)
        self.request.state.ratelimit_headers = quota.headers()
        if not quota.allowed:
            self._refuse(quota)
        return quota

    async def refused(self) -> None:
        """Count one request refused before any work was done for it; past the limit of
        refusals it is answered 429 instead (counted and checked in one step, so requests
        that passed :meth:`check` together cannot all get their refusal's own answer)."""
        refusals = await self.limiter.hit_refusal(key=self.key, ip=self.ip)
        if not refusals.allowed:
            raise self._too_many_refused(refusals)

    def _too_many_refused(self, refusals: Quota) -> RateLimitedError:
        metrics.RATE_LIMITED.labels("refused").inc()
        return RateLimitedError(
            f"too many refused requests for this {'key' if self.key else 'address'} "
            f"({refusals.limit} per {refusals.window_s} s); check the requests sent",
            retry_after_s=max(1.0, refusals.reset_s))

    def _refuse(self, quota: Quota) -> None:
        metrics.RATE_LIMITED.labels("key" if self.key else "anonymous").inc()
        raise RateLimiter.refusal(quota, keyed=self.key is not None)


async def get_budget(request: Request, services: ServicesDep, key: ApiKeyDep) -> Budget:
    """The caller's budget, checked (not spent): 429 when nothing is left."""
    budget = Budget(request=request, limiter=services.limiter, key=key,
                    ip=client_ip(request, services.trusted_proxies))
    await budget.check()
    return budget


BudgetDep = Annotated[Budget, Depends(get_budget)]
