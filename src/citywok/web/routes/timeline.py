"""``POST /api/v1/timeline``: a long upload or link → every segment, its episode and place.

JSON by default (the shape of ``citywok timeline --json``); Server-Sent Events with
``Accept: text/event-stream`` or ``stream=true``, segments sent as they are found. Limits
of their own (``CITYWOK_TIMELINE_*``): inputs are long here. A client that goes away
cancels the job, which lets go of its worker within one step (a few seconds of input).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from citywok.errors import EmptyMediaError
from citywok.web import jobs
from citywok.web.deps import BudgetDep, IndexDep, ServicesDep
from citywok.web.errors import ApiError, ErrorBody, describe, error_body
from citywok.web.fetch import check_link, resolve_checked
from citywok.web.schemas import CandidateOut
from citywok.web.security import read_json
from citywok.web.state import Services
from citywok.web.timeline_job import TimelineJob, run

router = APIRouter(tags=["timeline"])


class SegmentMatchOut(CandidateOut):
    """An episode a segment comes from; ``offset_s`` is where the segment starts in it."""

    end_offset_s: float = Field(description="Where the segment ends in the episode, in s.")


class SegmentOut(BaseModel):
    start_s: float = Field(description="Where the segment starts in the input, in seconds.")
    end_s: float
    status: Literal["match", "ambiguous", "unknown"]
    match: SegmentMatchOut | None
    candidates: list[SegmentMatchOut] = Field(
        description="For ambiguous: every episode that fits the whole segment.")


class TimelineOut(BaseModel):
    """The same shape as ``citywok timeline --json``."""

    file: str | None = Field(None, description="The uploaded file's name, or the link.")
    duration_s: float
    segments: list[SegmentOut] = Field(description="In order, covering the input.")
    elapsed_ms: float


class TimelineLinkIn(BaseModel):
    """The timeline of the media behind a link (JSON body)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, description="A link to a long video (YouTube, ...), or a "
                     "direct link to a media file on an allowed host.")
    stream: bool = Field(False, description="Answer with Server-Sent Events.")


_FORM_SCHEMA = {
    "type": "object",
    "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "The input (any container ffmpeg reads with an audio stream)."},
        "url": {"type": "string", "description": "A link instead of a file."},
        "stream": {"type": "boolean", "description": "Answer with Server-Sent Events."},
    },
}
_EVENTS_DOC = (
    "Named events: `received`, `downloading` (`bytes`, `total`, `percent`), `decoding`, "
    "`progress` (`done_s`, `total_s`, `percent`), `segment` (one segment, as in the answer, "
    "with its `index`; sent as soon as its boundaries are final), `heartbeat`, then `result` "
    "(the JSON of a plain answer) or `error` (`{\"status\", \"error\": {code, message}}`)."
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": why} for status, why in (
        (400, "Malformed request"), (401, "Unknown or revoked API key"),
        (413, "Upload, download or input too large or too long"),
        (415, "Not a media file with audio, or an unsupported body type"),
        (422, "Invalid request, unusable audio, or a refused link"),
        (429, "Rate limit reached (see Retry-After)"),
        (502, "The link could not be downloaded"), (503, "No index loaded"),
    )
}
_ERRORS[200] = {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                "description": "The timeline (JSON), or a stream of events. " + _EVENTS_DOC}


def _flag(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


async def _save(upload: UploadFile, dest: Path, max_bytes: int) -> int:
    def copy() -> int:
        total = 0
        with dest.open("wb") as out:
            while chunk := upload.file.read(1 << 20):
                total += len(chunk)
                if total > max_bytes:
                    raise ApiError(413, "body_too_large",
                                   f"the upload is larger than the {max_bytes} bytes allowed")
                out.write(chunk)
        return total

    return await run_in_threadpool(copy)


async def _parse(request: Request, services: Services, workdir: Path,
                 ) -> tuple[jobs.Upload | jobs.LinkSource, bool]:
    """The input and whether the body asked for a stream."""
    settings = services.settings
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    url: str | None = None
    stream = False
    upload: jobs.Upload | None = None
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        async with request.form(max_files=1, max_fields=8) as form:
            files = [v for v in form.getlist("file") if isinstance(v, UploadFile)]
            texts = [v for v in form.getlist("url") if isinstance(v, str)]
            if form.getlist("file") and not files:
                raise ApiError(422, "invalid_request", "'file' must be a file upload")
            url = texts[0] if texts else None
            stream = _flag(form.get("stream", ""))
            if files:
                path = workdir / "input.bin"
                size = await _save(files[0], path, settings.timeline_max_upload_bytes)
                if size == 0:
                    raise EmptyMediaError("the uploaded file is empty")
                name = Path(files[0].filename or "upload").name[:200] or "upload"
                upload = jobs.Upload(path=path, filename=name, bytes=size)
    elif ctype == "application/json":
        data = await read_json(request, settings)
        try:
            body = TimelineLinkIn.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise ApiError(422, "invalid_request", f"{where}: {first.get('msg')}") from None
        url, stream = body.url, body.stream
    else:
        raise ApiError(415, "unsupported_media_type",
                       "send multipart/form-data with 'file' (or 'url'), or JSON with 'url'")
    if (upload is None) == (url is None):
        raise ApiError(422, "invalid_request", "send exactly one of 'file' and 'url'")
    if upload is not None:
        return upload, stream
    assert url is not None
    link = check_link(url.strip(), services.link_policy)
    await run_in_threadpool(resolve_checked, link.host, link.port, services.link_policy)
    return jobs.LinkSource(link=link), stream


@router.post(
    "/timeline",
    response_model=TimelineOut,
    responses=_ERRORS,
    openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": _FORM_SCHEMA},
        "application/json": {"schema": TimelineLinkIn.model_json_schema()},
    }}},
)
async def timeline(
    request: Request,
    services: ServicesDep,
    index: IndexDep,
    budget: BudgetDep,
    stream: Annotated[bool, Query(description="Answer with Server-Sent Events.")] = False,
) -> Response:
    """The timeline of a long input (multipart `file`) or a link (`url`): every segment,
    with the episode it comes from (identify's `match` shape, `offset_s` where the segment
    starts in the episode), `ambiguous` for shared material, `unknown` for the rest.

    Counts as one identification against the caller's rate limit (a request refused
    before any work counts against the limit of refusals instead). Limits:
    `CITYWOK_TIMELINE_MAX_UPLOAD_BYTES`, `CITYWOK_TIMELINE_MAX_DURATION_S`,
    `CITYWOK_TIMELINE_TIMEOUT_S`.
    """
    settings = services.settings
    if settings.temp_dir is not None:
        settings.temp_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="citywok-tl-", dir=settings.temp_dir))
    try:
        try:
            source, body_stream = await _parse(request, services, workdir)
        except Exception:
            await budget.refused()
            raise
        await budget.spend()
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    job = TimelineJob(source=source, index=index, settings=settings,
                      executor=services.executor, workdir=workdir,
                      policy=services.link_policy)
    accept = request.headers.get("accept", "").lower()
    if stream or body_stream or "text/event-stream" in accept:
        return EventSourceResponse(_sse(job), ping=15, send_timeout=30,
                                   headers={"X-Accel-Buffering": "no"})
    return await _answer(request, job)


async def _sse(job: TimelineJob) -> AsyncIterator[dict[str, str]]:
    async with contextlib.aclosing(run(job)) as events:
        try:
            async for event in events:
                yield event.sse()
        except Exception as exc:
            status, code, message, _ = describe(exc)
            yield {"event": "error", "data": json.dumps({"status": status,
                                                         **error_body(code, message)})}


async def _until_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _answer(request: Request, job: TimelineJob) -> Response:
    async def consume() -> dict[str, Any]:
        async with contextlib.aclosing(run(job)) as events:
            async for event in events:
                if event.name == "result":
                    return event.data
        raise RuntimeError("the timeline ended without a result")

    work = asyncio.ensure_future(consume())
    watch = asyncio.ensure_future(_until_disconnect(request))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not work.done():
            work.cancel()
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watch
    if work.cancelled() or not work.done():
        with contextlib.suppress(asyncio.CancelledError):
            await work
        return Response(status_code=499)  # the client has gone; nobody reads this
    return JSONResponse(work.result())
