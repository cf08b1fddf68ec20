"""``GET /api/v1/me``: the caller's tier, quota and what is left, counted nowhere."""

from __future__ import annotations

from fastapi import APIRouter, Request

from citywok.web.deps import WRONG_KEYS_RESPONSE, ApiKeyDep, ServicesDep
from citywok.web.errors import ErrorBody
from citywok.web.schemas import MeOut
from citywok.web.security import client_ip

router = APIRouter(tags=["account"])


@router.get("/me", response_model=MeOut,
            responses={401: {"model": ErrorBody, "description": "Unknown, revoked or empty "
                                 "API key"}, **WRONG_KEYS_RESPONSE})
async def me(request: Request, services: ServicesDep, key: ApiKeyDep) -> MeOut:
    """Tier (anonymous per address, or per key), the limit, and identifications left now.

    Asking does not count against the limit, so a client can show it before it is refused.
    """
    quota = await services.limiter.peek(key=key, ip=client_ip(request, services.trusted_proxies))
    return MeOut(tier="key" if key is not None else "anonymous",
                 key_id=key.key_id if key is not None else None,
                 key_name=key.name if key is not None else None,
                 limit=quota.limit if quota.limited else None,
                 remaining=max(0, quota.remaining) if quota.limited else None,
                 window_s=quota.window_s,
                 reset_s=round(quota.reset_s, 1))
