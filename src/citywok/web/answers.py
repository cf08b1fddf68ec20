"""An answer as the web service gives it: the engine's result, plus what a person can act
on (where the scene ends, a link to watch from there, a still and a clip of the moment)
and a short link to share it (``/r/<id>``).

The answer is kept in the share store without the clip's file name and without links;
links are made from it whenever it is shown, against the service's public address, so a
stored answer never holds a host name.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from citywok.index import Index
from citywok.ingest.library import render_watch_url
from citywok.result import Candidate, Episode, IdentifyResult
from citywok.web.core.config import API_PREFIX, Settings
from citywok.web.schemas import AnswerLinks, CandidateLinks, CandidateOut, IdentifyOut
from citywok.web.state import Services

log = logging.getLogger("citywok.web")


def base_url(conn: HTTPConnection, settings: Settings) -> str:
    """The service's address as people reach it (``https://host``, no trailing slash)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    url = str(conn.base_url).rstrip("/")
    # A WebSocket's own address reads ws:// or wss://; links are for the web.
    if url.startswith("ws"):
        url = "http" + url[2:]
    return url


def episode_by_id(index: Index, episode_id: str) -> Episode | None:
    return next((e for e in index.episodes.values() if e.episode_id == episode_id), None)


#: What a stored answer leaves out: the clip's name and every link (made when shown).
_LINKS = {"watch_url": True, "preview_image": True, "preview_video": True}
_NOT_STORED: dict[str, Any] = {"file": True, "share_url": True, "match": _LINKS,
                               "candidates": {"__all__": _LINKS}}


def _watch_url(episode: Episode | None, at_s: float, *, base: str,
               settings: Settings) -> str | None:
    if episode is not None and episode.watch_url:
        return render_watch_url(episode.watch_url, season=episode.season,
                                episode=episode.episode, t_s=at_s)
    if episode is not None and settings.serve_sources:
        return f"{base}{API_PREFIX}/episodes/{episode.episode_id}/media#t={int(at_s)}"
    return None


def _previews(n: int | None, share_id: str | None, base: str) -> dict[str, str | None]:
    if share_id is None or n is None:
        return {"preview_image": None, "preview_video": None}
    at = f"{base}{API_PREFIX}/previews/{share_id}/{n}"
    return {"preview_image": f"{at}.jpg", "preview_video": f"{at}.mp4"}


def _candidate(c: Candidate, n: int | None, *, clip_s: float, share_id: str | None,
               base: str, settings: Settings) -> BaseModel:
    # The clip covers clip_s seconds of its own time, i.e. clip_s x speed of the episode.
    end = min(c.episode.duration_s, c.offset_s + clip_s * max(c.speed, 0.0))
    links = CandidateLinks(
        end_s=round(max(end, c.offset_s), 3),
        episode_duration_s=round(c.episode.duration_s, 3),
        watch_url=_watch_url(c.episode, round(c.offset_s, 3), base=base, settings=settings),
        **_previews(n, share_id, base))
    return CandidateOut.model_validate({**c.to_json(), **links.model_dump()})


def answer_out(result: IdentifyResult, *, file: str | None, share_id: str | None,
               base: str, settings: Settings) -> AnswerLinks:
    """The web's answer: ``result``'s answer model (``citywok identify --json``) with each
    candidate's scene end, episode length, watch link and previews, and the share link."""
    clip_s = result.clip_duration_s
    candidates = [_candidate(c, n, clip_s=clip_s, share_id=share_id, base=base,
                             settings=settings) for n, c in enumerate(result.candidates)]
    match = None
    if result.match is not None:
        same = next((n for n, c in enumerate(result.candidates) if c == result.match), None)
        match = _candidate(result.match, same, clip_s=clip_s, share_id=share_id, base=base,
                           settings=settings)
    return IdentifyOut.model_validate({
        **result.to_json(), "match": match, "candidates": candidates, "file": file,
        "share_url": f"{base}/r/{share_id}" if share_id is not None else None})


def stored_part(answer: AnswerLinks) -> dict[str, Any]:
    """What a share keeps: the answer less the clip's file name and its links."""
    return answer.model_dump(mode="json", exclude=_NOT_STORED)


def with_links(stored: Mapping[str, Any], *, share_id: str, base: str,
               index: Index | None, settings: Settings) -> AnswerLinks:
    """A stored answer (:func:`stored_part`) as it is shown again: with its share link,
    and per candidate a fresh watch link and previews."""
    answer = IdentifyOut.model_validate(stored)
    by_id = ({e.episode_id: e for e in index.episodes.values()} if index is not None
             else {})
    data = answer.model_dump(mode="json")

    def linked(c: dict[str, Any], n: int | None) -> dict[str, Any]:
        at = float(c.get("offset_s") or 0.0)
        watch = _watch_url(by_id.get(str(c.get("episode_id"))), at, base=base,
                           settings=settings)
        return {**c, "watch_url": watch, **_previews(n, share_id, base)}

    candidates = data["candidates"]
    data["candidates"] = [linked(c, n) for n, c in enumerate(candidates)]
    match = data["match"]
    if match is not None:
        same = next((n for n, c in enumerate(candidates)
                     if c.get("episode_id") == match.get("episode_id")
                     and c.get("offset_s") == match.get("offset_s")), None)
        data["match"] = linked(match, same)
    data["share_url"] = f"{base}/r/{share_id}"
    return IdentifyOut.model_validate(data)


async def publish(conn: HTTPConnection, services: Services, result: IdentifyResult, *,
                  file: str | None) -> AnswerLinks:
    """The answer to send: kept as a share (when shares are on) and linked."""
    base = base_url(conn, services.settings)
    share_id: str | None = None
    if services.shares is not None:
        try:
            # The share ids its previews by candidate; the links themselves are not kept.
            stored = stored_part(answer_out(result, file=None, share_id=None, base=base,
                                            settings=services.settings))
            share = await run_in_threadpool(services.shares.put, stored)
            share_id = share.share_id
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            # The answer matters more than its share link.
            log.warning("answer not stored for sharing: %s", exc)
    return answer_out(result, file=file, share_id=share_id, base=base,
                      settings=services.settings)
