"""``GET /api/v1/admin/usage``: the usage figures as JSON (admin keys only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from citywok.web.deps import WRONG_KEYS_RESPONSE, ServicesDep, require_admin
from citywok.web.errors import ErrorBody

router = APIRouter(
    prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)],
    responses={401: {"model": ErrorBody, "description": "No or unknown key"},
               403: {"model": ErrorBody, "description": "Not an admin key"},
               **WRONG_KEYS_RESPONSE},
)


@router.get("/usage")
async def usage_figures(
    services: ServicesDep,
    days: Annotated[int, Query(ge=1, le=366, description="Days back, today included.")] = 30,
) -> dict[str, Any]:
    """Identifications per day by status and source, latency percentiles, top episodes,
    refused requests by reason (no IP addresses or clip contents are stored)."""
    report = await run_in_threadpool(services.usage.report, days=days)
    return report.to_json()
