"""Liveness, readiness and metrics (unversioned, for orchestrators and Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from citywok.errors import IndexStoreError
from citywok.web import metrics
from citywok.web.deps import ServicesDep
from citywok.web.errors import ApiError, ErrorBody
from citywok.web.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> HealthOut:
    """The process is alive (answers even while identifications run)."""
    return HealthOut(status="ok")


@router.get("/readyz", response_model=ReadyOut,
            responses={503: {"model": ErrorBody, "description": "Not ready"}})
async def readyz(services: ServicesDep) -> ReadyOut:
    """The index is loaded and the rate-limit store answers. ``degraded`` (still 200):
    some segments were refused as damaged and their episodes are not answered."""
    try:
        index = services.index.get()
    except IndexStoreError as exc:
        raise ApiError(503, "not_ready", f"the index is not loaded: {exc.code}") from None
    if not await services.limiter.healthy():
        raise ApiError(503, "not_ready", "the rate-limit store does not answer")
    damaged = [f"{d.file}: {d.reason}" for d in index.damaged]
    return ReadyOut(status="degraded" if damaged else "ready", episodes=len(index.episodes),
                    damaged=damaged)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}})
async def prometheus_metrics() -> Response:
    """Requests, latency by route and by stage, identifications by outcome."""
    body, ctype = metrics.render()
    return Response(body, media_type=ctype)
