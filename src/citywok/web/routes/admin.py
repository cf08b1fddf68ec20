"""Admin endpoints: index a folder on the server, remove an episode, reload the index.

Every route here requires an admin key; nothing that changes data is reachable without.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from citywok import pipeline
from citywok.errors import LibraryError
from citywok.index import Index
from citywok.pipeline import drive, index_paths
from citywok.result import Episode, IndexSummary
from citywok.web.deps import WRONG_KEYS_RESPONSE, ServicesDep, require_admin
from citywok.web.errors import ApiError, ErrorBody
from citywok.web.schemas import (
    EpisodeOut,
    IndexPathsIn,
    IndexSummaryOut,
    RemovedOut,
    StatsOut,
)
from citywok.web.security import read_json

router = APIRouter(
    prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)],
    responses={401: {"model": ErrorBody, "description": "No or unknown key"},
               403: {"model": ErrorBody, "description": "Not an admin key"},
               409: {"model": ErrorBody, "description": "Another writer holds the index"},
               **WRONG_KEYS_RESPONSE},
)


def _allowed(path: str, roots: list[Path]) -> Path:
    if not roots:
        raise ApiError(403, "indexing_disabled", "indexing over HTTP is disabled (set "
                       "CITYWOK_LIBRARY_ROOTS to the folders it may read)")
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        if resolved == root.resolve() or root.resolve() in resolved.parents:
            return resolved
    raise LibraryError(f"{path} is not inside a library root")


@router.post("/index", response_model=IndexSummaryOut, openapi_extra={"requestBody": {
    "required": True,
    "content": {"application/json": {"schema": IndexPathsIn.model_json_schema()}}}})
async def index_folder(request: Request, services: ServicesDep) -> IndexSummaryOut:
    """Index files or folders on the server (inside the configured library roots)."""
    try:
        body = IndexPathsIn.model_validate(await read_json(request, services.settings))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise ApiError(422, "invalid_request", f"{where}: {first.get('msg')}") from None
    paths = [_allowed(p, services.settings.library_roots) for p in body.paths]

    def work() -> tuple[IndexSummary, int]:
        with Index.open(services.settings.index, writable=True) as idx:
            summary = drive(index_paths(idx, paths))
            return summary, idx.stats().episodes

    summary, episodes = await run_in_threadpool(work)
    await run_in_threadpool(services.index.reload)
    return IndexSummaryOut(
        added=list(summary.added), updated=list(summary.updated),
        skipped=list(summary.skipped),
        failed=[{"file": f, "error": m} for f, m in summary.failed],
        left_out=[{"file": f, "reason": why} for f, why in summary.left_out],
        audio_s=round(summary.audio_s, 1), elapsed_s=round(summary.elapsed_s, 2),
        episodes=episodes)


@router.delete("/episodes/{episode_id}", response_model=RemovedOut,
               responses={404: {"model": ErrorBody, "description": "No such episode"}})
async def remove_episode(
    services: ServicesDep,
    episode_id: str = PathParam(max_length=200),
) -> RemovedOut:
    """Remove an episode from the index."""
    def work() -> Episode:
        with Index.open(services.settings.index, writable=True) as idx:
            return pipeline.remove_episode(idx, episode_id)

    episode = await run_in_threadpool(work)
    await run_in_threadpool(services.index.reload)
    return RemovedOut(removed=EpisodeOut.of(episode))


@router.post("/reload", response_model=StatsOut)
async def reload_index(services: ServicesDep) -> Any:
    """Re-open the index from disk now (workers also notice changes by themselves)."""
    index = await run_in_threadpool(services.index.reload)
    s = index.stats()
    return StatsOut(damaged=list(s.damaged), episodes=s.episodes, shows=s.shows,
                    hours=round(s.hours, 3),
                    index_bytes=s.index_bytes, segments=s.segments, hashes=s.hashes,
                    format_version=s.format_version)
