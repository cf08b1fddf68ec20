"""The catalogue and the index's size."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from citywok.web.deps import IndexDep
from citywok.web.errors import ErrorBody
from citywok.web.schemas import EpisodeOut, EpisodePage, StatsOut

router = APIRouter(tags=["catalogue"],
                   responses={503: {"model": ErrorBody, "description": "No index loaded"}})


@router.get("/episodes", response_model=EpisodePage)
async def list_episodes(
    index: IndexDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    show: Annotated[str | None, Query(max_length=200, description="Only this show.")] = None,
) -> EpisodePage:
    """The indexed episodes, by show, season and episode, a page at a time."""
    episodes = sorted(index.episodes.values(),
                      key=lambda e: (e.show, e.season or 0, e.episode or 0, e.episode_id))
    if show is not None:
        episodes = [e for e in episodes if e.show == show]
    page = episodes[offset : offset + limit]
    return EpisodePage(items=[EpisodeOut.of(e) for e in page], total=len(episodes),
                       offset=offset, limit=limit)


@router.get("/stats", response_model=StatsOut)
async def stats(index: IndexDep) -> StatsOut:
    """Episodes, hours, index size and format version."""
    s = index.stats()
    return StatsOut(damaged=list(s.damaged), episodes=s.episodes, shows=s.shows,
                    hours=round(s.hours, 3),
                    index_bytes=s.index_bytes, segments=s.segments, hashes=s.hashes,
                    format_version=s.format_version)
