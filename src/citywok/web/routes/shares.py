"""Shared answers and what they show: ``GET /api/v1/shares/{id}``, the previews of an
answer's candidates, a library file to watch from (when allowed), and the ``/r/{id}``
page that chat apps preview (Open Graph and Twitter-card tags, rendered here)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from citywok.display import clock
from citywok.errors import CityWokError
from citywok.web.answers import base_url, episode_by_id, with_links
from citywok.web.deps import IndexDep, ServicesDep
from citywok.web.errors import ApiError, ErrorBody
from citywok.web.preview import PreviewKind, PreviewSize
from citywok.web.previews import MEDIA_TYPE
from citywok.web.schemas import AnswerLinks, IdentifyOut
from citywok.web.shares import Share
from citywok.web.state import Services

router = APIRouter(tags=["answers"])
_GONE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown or expired answer"}}
#: Previews show content that never changes under their URL: cache them a day.
_PREVIEW_HEADERS = {"Cache-Control": "public, max-age=86400",
                    # Other sites may show the still of an answer (as trace.moe's are).
                    "Cross-Origin-Resource-Policy": "cross-origin"}


def _share(services: Services, share_id: str) -> Share:
    share = services.shares.get(share_id) if services.shares is not None else None
    if share is None:
        raise ApiError(404, "share_not_found", "this answer is unknown or has expired")
    return share


@router.get("/shares/{share_id}", response_model=IdentifyOut, responses=_GONE)
async def get_share(share_id: str, request: Request, services: ServicesDep,
                    index: IndexDep) -> AnswerLinks:
    """A shared answer, as it was given (less the clip's name), with fresh links."""
    share = await run_in_threadpool(_share, services, share_id)
    return with_links(share.answer, share_id=share.share_id,
                      base=base_url(request, services.settings), index=index,
                      settings=services.settings)


async def _preview(services: Services, index: IndexDep, share_id: str, n: int,
                   kind: PreviewKind, size: PreviewSize, sound: bool) -> Response:
    share = await run_in_threadpool(_share, services, share_id)
    candidates = share.answer.get("candidates") or []
    if not 0 <= n < len(candidates):
        raise ApiError(404, "preview_not_found", "this answer has no such candidate")
    c = candidates[n]
    # The episode comes from the catalogue by id, and only its own file is ever cut.
    episode = episode_by_id(index, str(c.get("episode_id")))
    if episode is None or services.previews is None:
        raise ApiError(404, "preview_not_found", "the episode is no longer in the library")
    start = float(c.get("offset_s") or 0.0)
    end = float(c.get("end_s") or start)
    length = min(services.settings.preview_max_clip_s, max(2.0, end - start))
    at = start + min(1.0, (end - start) / 2) if kind is PreviewKind.IMAGE else start
    try:
        path = await run_in_threadpool(services.previews.get, episode, kind=kind, at_s=at,
                                       size=size, duration_s=length, sound=sound)
    except CityWokError:
        raise ApiError(404, "preview_not_found",
                       "no preview can be made of this moment") from None
    return FileResponse(path, media_type=MEDIA_TYPE[kind], headers=_PREVIEW_HEADERS)


SizeQuery = Annotated[PreviewSize, Query(description="small: 320 px wide; medium: 640 px.")]


@router.get("/previews/{share_id}/{n}.jpg", responses={
    200: {"content": {"image/jpeg": {}}, "description": "The still"}, **_GONE})
async def preview_image(share_id: str, n: int, services: ServicesDep, index: IndexDep,
                        size: SizeQuery = PreviewSize.MEDIUM) -> Response:
    """A still of candidate ``n`` of a shared answer, at the matched moment (for a source
    with no picture: a drawing of its sound there). Cut once, then cached."""
    return await _preview(services, index, share_id, n, PreviewKind.IMAGE, size, False)


@router.get("/previews/{share_id}/{n}.mp4", responses={
    200: {"content": {"video/mp4": {}}, "description": "The clip"}, **_GONE})
async def preview_video(share_id: str, n: int, services: ServicesDep, index: IndexDep,
                        size: SizeQuery = PreviewSize.MEDIUM,
                        sound: Annotated[bool, Query(description="Keep the sound.")] = False,
                        ) -> Response:
    """A few seconds of the matched scene of candidate ``n`` (muted unless ``sound``)."""
    return await _preview(services, index, share_id, n, PreviewKind.VIDEO, size, sound)


@router.get("/episodes/{episode_id}/media", responses={
    200: {"content": {"application/octet-stream": {}}, "description": "The file"},
    404: {"model": ErrorBody, "description": "Unknown episode, or not served"}})
async def episode_media(episode_id: str, services: ServicesDep, index: IndexDep) -> Response:
    """The episode's own file, to watch from a moment (`#t=` on the link); only when the
    service is set to serve its library (`CITYWOK_SERVE_SOURCES`)."""
    episode = episode_by_id(index, episode_id) if services.settings.serve_sources else None
    if episode is None or not Path(episode.source_path).is_file():
        raise ApiError(404, "not_found", "this episode's file is not served here")
    return FileResponse(episode.source_path, filename=Path(episode.source_path).name,
                        content_disposition_type="inline")


# -- the share page --------------------------------------------------------------------


def _clock(seconds: float) -> str:
    """The one clock (rounded as the page and the CLI round it: 599.99 s is 10:00)."""
    return clock(seconds, decimals=0)


def _code(c: dict[str, Any]) -> str:
    season, episode = c.get("season"), c.get("episode")
    if isinstance(season, int) and isinstance(episode, int):
        return f"S{season:02d}E{episode:02d}"
    return f"E{episode:02d}" if isinstance(episode, int) else ""


def describe_answer(answer: dict[str, Any]) -> tuple[str, str]:
    """A title and a sentence for an answer, as a chat app shows them."""
    match = answer.get("match") or {}
    candidates = answer.get("candidates") or []
    if answer.get("status") == "match" and match:
        label = " ".join(p for p in (str(match.get("show", "")), _code(match)) if p)
        title = f"{label}: {match['title']}" if match.get("title") else label
        at = _clock(float(match.get("offset_s") or 0))
        length = match.get("episode_duration_s")
        of = f" of {_clock(float(length))}" if length else ""
        return title, f"The clip is from {title}, at {at}{of}. Identified by CityWok."
    if answer.get("status") == "ambiguous":
        shows = sorted({str(c.get("show", "")) for c in candidates})
        title = f"One of {len(candidates)} episodes of {', '.join(shows)}"
        return title, ("The clip is shared material that several episodes hold, so it "
                       "fits each of them. Identified by CityWok.")
    return "Not in the library", "CityWok did not find this clip in its library."


def _share_html(template: str | None, *, title: str, text: str, url: str,
                image: str | None) -> str:
    e = html.escape
    tags = [("og:type", "website"), ("og:site_name", "CityWok"), ("og:title", title),
            ("og:description", text), ("og:url", url)]
    if image:
        tags += [("og:image", image), ("og:image:width", "640"), ("og:image:alt", title)]
    meta = "".join(f'<meta property="{k}" content="{e(v)}">' for k, v in tags)
    meta += "".join(f'<meta name="{k}" content="{e(v)}">' for k, v in (
        ("twitter:card", "summary_large_image" if image else "summary"),
        ("twitter:title", title), ("twitter:description", text),
        *((("twitter:image", image),) if image else ())))
    meta += f'<meta name="description" content="{e(text)}"><link rel="canonical" href="{e(url)}">'
    # Readable before (and without) the script; the page replaces it with the full card.
    body = f'<main class="share-fallback"><h1>{e(title)}</h1><p>{e(text)}</p>' \
           f'<p><a href="/">Identify a clip</a></p></main>'
    if template is None or "</head>" not in template:
        return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{e(title)} · CityWok</title>{meta}</head><body>{body}</body></html>")
    page = template
    start, end = page.find("<title>"), page.find("</title>")
    if start != -1 and end > start:
        page = page[:start] + f"<title>{e(title)} · CityWok</title>" + page[end + 8:]
    page = page.replace("</head>", meta + "</head>", 1)
    return page.replace('<div id="root"></div>', f'<div id="root">{body}</div>', 1)


def add_share_page(app: FastAPI, page_dir: Path) -> None:
    """``/r/{share_id}``: the page with the answer's tags (the app shows the card)."""

    @app.api_route("/r/{share_id}", methods=["GET", "HEAD"], include_in_schema=False)
    async def share_page(share_id: str, request: Request) -> HTMLResponse:
        services: Services = request.app.state.services
        index_html = page_dir / "index.html"
        template = index_html.read_text() if index_html.is_file() else None
        share = await run_in_threadpool(
            lambda: services.shares.get(share_id) if services.shares is not None else None)
        if share is None:
            text = "This answer is unknown or has expired. Identify the clip again."
            return HTMLResponse(_share_html(template, title="Answer not found", text=text,
                                            url=str(request.url), image=None), status_code=404)
        base = base_url(request, services.settings)
        answer = with_links(share.answer, share_id=share.share_id, base=base, index=None,
                            settings=services.settings).model_dump(mode="json")
        title, text = describe_answer(answer)
        first = (answer.get("candidates") or [{}])[0]
        image = first.get("preview_image") if answer.get("status") != "no_match" else None
        return HTMLResponse(_share_html(template, title=title, text=text,
                                        url=f"{base}/r/{share.share_id}", image=image))
