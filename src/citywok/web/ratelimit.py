"""Rate limits of identifications, with the ``limits`` library.

Two tiers: anonymous clients are counted per IP (per /64 for IPv6, the block one host
usually holds), keyed clients per key (with the key's own limit when it has one). Requests
refused before any work (a link not allowed, a malformed body) are counted apart, against
their own limit, so they never use up the identification quota; wrong API keys are counted
per IP too, to slow down and then stop guessing. The moving-window strategy is exact: with
Redis its check-and-add is one Lua script, so several workers or hosts sharing one Redis
never let more through than the limit.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from citywok.errors import RateLimitedError
from citywok.web.core.config import Settings
from citywok.web.errors import ApiError
from citywok.web.keys import ApiKey


@dataclass(frozen=True)
class Quota:
    """The state of one client's window after a request was counted."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    window_s: int
    #: False: nothing limits this client (the other figures mean nothing; no headers).
    limited: bool = True

    def headers(self) -> list[tuple[bytes, bytes]]:
        if not self.limited:
            return []
        pairs = {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(max(0, self.remaining)),
            "ratelimit-reset": str(max(0, math.ceil(self.reset_s))),
            "ratelimit-policy": f"{self.limit};w={self.window_s}",
        }
        return [(k.encode(), v.encode()) for k, v in pairs.items()]


#: The quota of a client nothing limits.
UNLIMITED = Quota(allowed=True, limit=0, remaining=0, reset_s=0.0, window_s=0, limited=False)


def storage_url(settings: Settings) -> str:
    url = settings.rate_limit_storage
    return url if url.startswith("async+") else f"async+{url}"


def address_key(ip: str) -> str:
    """What one client address is counted as: an IPv4 address (IPv4-mapped IPv6 ones
    too), or the /64 of an IPv6 address (a host gets a whole /64 to pick from)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class RateLimiter:
    """Counts identifications, refusals and wrong keys per client; one per app."""

    def __init__(self, settings: Settings) -> None:
        url = storage_url(settings)
        options: dict[str, float | str | bool] = {}
        if "redis" in url:
            options["implementation"] = "redispy"
        storage = storage_from_string(url, **options)
        assert isinstance(storage, Storage)
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)
        anonymous = settings.anonymous_limit
        #: ``None``: anonymous clients are not limited (a service on loopback).
        self.anonymous = parse(anonymous) if anonymous else None
        self.keyed = parse(settings.key_rate_limit)
        self.refused = parse(settings.refused_rate_limit)
        self.auth_failures = parse(settings.auth_failure_rate_limit)

    def item_for(self, key: ApiKey | None) -> RateLimitItem | None:
        if key is None:
            return self.anonymous
        return parse(key.rate_limit) if key.rate_limit else self.keyed

    @staticmethod
    def _client(key: ApiKey | None, ip: str) -> tuple[str, str]:
        return ("key", key.key_id) if key is not None else ("ip", address_key(ip))

    async def _count(self, item: RateLimitItem, ident: tuple[str, ...], *,
                     add: bool) -> Quota:
        """Add one to a window (``add``) or only read whether one more would fit."""
        try:
            if add:
                allowed = await self.strategy.hit(item, *ident)
            else:
                allowed = await self.strategy.test(item, *ident)
            stats = await self.strategy.get_window_stats(item, *ident)
        except Exception as exc:
            if isinstance(exc, self.storage.base_exceptions):
                raise ApiError(503, "rate_limit_unavailable",
                               "the rate-limit store is unavailable; try again later") from None
            raise
        return Quota(allowed=allowed, limit=item.amount, remaining=stats.remaining,
                     reset_s=max(0.0, stats.reset_time - time.time()),
                     window_s=item.get_expiry())

    async def hit(self, *, key: ApiKey | None, ip: str) -> Quota:
        """Count one identification; ``allowed`` is false past the limit."""
        item = self.item_for(key)
        if item is None:
            return UNLIMITED
        return await self._count(item, self._client(key, ip), add=True)

    async def peek(self, *, key: ApiKey | None, ip: str) -> Quota:
        """Whether one more identification would be allowed (nothing is counted)."""
        item = self.item_for(key)
        if item is None:
            return UNLIMITED
        return await self._count(item, self._client(key, ip), add=False)

    async def refusals_left(self, *, key: ApiKey | None, ip: str) -> Quota:
        return await self._count(self.refused, ("refused", *self._client(key, ip)),
                                 add=False)

    async def hit_refusal(self, *, key: ApiKey | None, ip: str) -> Quota:
        """Count one request refused before any work."""
        return await self._count(self.refused, ("refused", *self._client(key, ip)),
                                 add=True)

    async def auth_failures_left(self, ip: str) -> Quota:
        return await self._count(self.auth_failures, ("badkey", address_key(ip)), add=False)

    async def hit_auth_failure(self, ip: str) -> Quota:
        """Count one wrong API key from ``ip``."""
        return await self._count(self.auth_failures, ("badkey", address_key(ip)), add=True)

    @staticmethod
    def refusal(quota: Quota, *, keyed: bool) -> RateLimitedError:
        tier = "key" if keyed else "anonymous"
        return RateLimitedError(
            f"too many identifications for this {'key' if keyed else 'address'} "
            f"({quota.limit} per {quota.window_s} s for the {tier} tier)",
            retry_after_s=max(1.0, quota.reset_s))

    async def healthy(self) -> bool:
        try:
            return bool(await self.storage.check())
        except Exception:
            return False
