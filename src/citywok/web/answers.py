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

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from citywok.index import Index
from citywok.ingest.library import render_watch_url
from citywok.result import Candidate, Episode, IdentifyResult
from citywok.web.core.config import API_PREFIX, Settings
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


def _scene(c: Candidate, clip_s: float) -> dict[str, Any]:
    # The clip covers clip_s seconds of its own time, i.e. clip_s x speed of the episode.
    end = min(c.episode.duration_s, c.offset_s + clip_s * max(c.speed, 0.0))
    return {"end_s": round(max(end, c.offset_s), 3),
            "episode_duration_s": round(c.episode.duration_s, 3)}


def answer_body(result: IdentifyResult, *, file: str | None) -> dict[str, Any]:
    """The JSON answer (the shape of ``citywok identify --json``) with each candidate's
    scene end and episode length, and the kind of shared material (or ``None``)."""
    out = result.to_json(file=file)
    clip_s = result.clip_duration_s
    if result.match is not None and out.get("match"):
        out["match"].update(_scene(result.match, clip_s))
    for data, c in zip(out["candidates"], result.candidates, strict=True):
        data.update(_scene(c, clip_s))
    out["shared"] = result.shared.to_json() if result.shared is not None else None
    return out


def stored_part(answer: Mapping[str, Any]) -> dict[str, Any]:
    """What a share keeps: the answer less the clip's file name (and any links)."""
    return {k: v for k, v in answer.items() if k not in ("file", "share_url")}


def _links(c: dict[str, Any], n: int | None, *, share_id: str | None, base: str,
           index: Index | None, settings: Settings) -> dict[str, Any]:
    c = {k: v for k, v in c.items()
         if k not in ("watch_url", "preview_image", "preview_video")}
    episode = episode_by_id(index, str(c.get("episode_id"))) if index is not None else None
    at = float(c.get("offset_s") or 0.0)
    watch = None
    if episode is not None and episode.watch_url:
        watch = render_watch_url(episode.watch_url, season=episode.season,
                                 episode=episode.episode, t_s=at)
    elif episode is not None and settings.serve_sources:
        watch = f"{base}{API_PREFIX}/episodes/{episode.episode_id}/media#t={int(at)}"
    c["watch_url"] = watch
    if share_id is not None and n is not None:
        c["preview_image"] = f"{base}{API_PREFIX}/previews/{share_id}/{n}.jpg"
        c["preview_video"] = f"{base}{API_PREFIX}/previews/{share_id}/{n}.mp4"
    else:
        c["preview_image"] = c["preview_video"] = None
    return c


def with_links(answer: Mapping[str, Any], *, share_id: str | None, base: str,
               index: Index | None, settings: Settings) -> dict[str, Any]:
    """``answer`` with ``share_url`` and, per candidate, ``watch_url``, ``preview_image``
    and ``preview_video`` (``None`` where there is none)."""
    out = dict(answer)
    candidates = [_links(dict(c), n, share_id=share_id, base=base, index=index,
                         settings=settings) for n, c in enumerate(answer.get("candidates", []))]
    out["candidates"] = candidates
    match = answer.get("match")
    if isinstance(match, Mapping):
        same = next((n for n, c in enumerate(candidates)
                     if c.get("episode_id") == match.get("episode_id")
                     and c.get("offset_s") == match.get("offset_s")), None)
        out["match"] = _links(dict(match), same, share_id=share_id, base=base, index=index,
                              settings=settings)
    out["share_url"] = f"{base}/r/{share_id}" if share_id is not None else None
    out.setdefault("shared", None)
    return out


async def publish(conn: HTTPConnection, services: Services, index: Index,
                  result: IdentifyResult, *, file: str | None) -> dict[str, Any]:
    """The answer to send: kept as a share (when shares are on) and linked."""
    body = answer_body(result, file=file)
    share_id: str | None = None
    if services.shares is not None:
        try:
            share = await run_in_threadpool(services.shares.put, stored_part(body))
            share_id = share.share_id
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            # The answer matters more than its share link.
            log.warning("answer not stored for sharing: %s", exc)
    return with_links(body, share_id=share_id, base=base_url(conn, services.settings),
                      index=index, settings=services.settings)
