"""Rate limits of identifications, with the ``limits`` library.

Two tiers: anonymous clients are counted per IP, keyed clients per key (with the key's own
limit when it has one). The moving-window strategy is exact: with Redis its check-and-add
is one Lua script, so several workers or hosts sharing one Redis never let more through
than the limit.
"""

from __future__ import annotations

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

    def headers(self) -> list[tuple[bytes, bytes]]:
        pairs = {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(max(0, self.remaining)),
            "ratelimit-reset": str(max(0, math.ceil(self.reset_s))),
            "ratelimit-policy": f"{self.limit};w={self.window_s}",
        }
        return [(k.encode(), v.encode()) for k, v in pairs.items()]


def storage_url(settings: Settings) -> str:
    url = settings.rate_limit_storage
    return url if url.startswith("async+") else f"async+{url}"


class RateLimiter:
    """Counts identifications per client; one per app (per worker)."""

    def __init__(self, settings: Settings) -> None:
        url = storage_url(settings)
        options: dict[str, float | str | bool] = {}
        if "redis" in url:
            options["implementation"] = "redispy"
        storage = storage_from_string(url, **options)
        assert isinstance(storage, Storage)
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)
        self.anonymous = parse(settings.anonymous_rate_limit)
        self.keyed = parse(settings.key_rate_limit)

    def item_for(self, key: ApiKey | None) -> RateLimitItem:
        if key is None:
            return self.anonymous
        return parse(key.rate_limit) if key.rate_limit else self.keyed

    async def hit(self, *, key: ApiKey | None, ip: str) -> Quota:
        """Count one identification; ``allowed`` is false past the limit."""
        item = self.item_for(key)
        ident = ("key", key.key_id) if key is not None else ("ip", ip)
        try:
            allowed = await self.strategy.hit(item, *ident)
            stats = await self.strategy.get_window_stats(item, *ident)
        except Exception as exc:
            if isinstance(exc, self.storage.base_exceptions):
                raise ApiError(503, "rate_limit_unavailable",
                               "the rate-limit store is unavailable; try again later") from None
            raise
        return Quota(allowed=allowed, limit=item.amount, remaining=stats.remaining,
                     reset_s=max(0.0, stats.reset_time - time.time()),
                     window_s=item.get_expiry())

    async def peek(self, *, key: ApiKey | None, ip: str) -> Quota:
        """The client's window as it stands, without counting anything (``/api/v1/me``)."""
        item = self.item_for(key)
        ident = ("key", key.key_id) if key is not None else ("ip", ip)
        try:
            stats = await self.strategy.get_window_stats(item, *ident)
        except Exception as exc:
            if isinstance(exc, self.storage.base_exceptions):
                raise ApiError(503, "rate_limit_unavailable",
                               "the rate-limit store is unavailable; try again later") from None
            raise
        return Quota(allowed=stats.remaining > 0, limit=item.amount, remaining=stats.remaining,
                     reset_s=max(0.0, stats.reset_time - time.time()),
                     window_s=item.get_expiry())

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
