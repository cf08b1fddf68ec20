"""``POST /api/v1/identify``: an uploaded clip or a link → the episode and the offset.

JSON by default (the shape of ``citywok identify --json``); Server-Sent Events with
``Accept: text/event-stream`` or ``stream=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from citywok.errors import EmptyMediaError
from citywok.web import jobs, usage
from citywok.web.answers import publish
from citywok.web.deps import BudgetDep, IndexDep, ServicesDep
from citywok.web.errors import ApiError, ErrorBody, describe, error_body
from citywok.web.fetch import check_link, resolve_checked
from citywok.web.schemas import IdentifyLinkIn, IdentifyOut
from citywok.web.security import BodyTooLarge, read_json
from citywok.web.state import Services

router = APIRouter(tags=["identify"])

_FORM_SCHEMA = {
    "type": "object",
    "description": "Send `file` or `url`, not both.",
    "oneOf": [{"required": ["file"]}, {"required": ["url"]}],
    "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "The clip (any container ffmpeg reads with an audio stream)."},
        "url": {"type": "string", "description": "A link instead of a file."},
        "stream": {"type": "boolean", "description": "Answer with Server-Sent Events."},
    },
}
_EVENTS_DOC = (
    "Named events: `received`, `downloading` (`bytes`, `total`, `percent`), `decoding`, "
    "`fingerprinting`, `matching`, `heartbeat` (while a stage runs long), then `result` "
    "(the JSON of a plain answer) or `error` (`{\"status\", \"error\": {code, message}}`)."
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": why} for status, why in (
        (400, "Malformed request"), (401, "Unknown or revoked API key"),
        (413, "Upload, download, body or clip too large or too long"),
        (415, "Not a media file with audio, or an unsupported body type"),
        (422, "Invalid request (both or neither of file and url), unusable audio, or a "
              "refused link"),
        (429, "Rate limit reached, too many refused requests or wrong keys (see "
              "Retry-After)"),
        (502, "The link could not be downloaded"), (503, "No index loaded"),
    )
}
_ERRORS[200] = {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                "description": "The answer (JSON), or a stream of events. " + _EVENTS_DOC}


def _wants_stream(request: Request, flag: bool) -> bool:
    accept = request.headers.get("accept", "")
    return flag or "text/event-stream" in accept.lower()


async def _save_upload(upload: UploadFile, dest: Path, max_bytes: int) -> int:
    def copy() -> int:
        total = 0
        with dest.open("wb") as out:
            while chunk := upload.file.read(1 << 20):
                total += len(chunk)
                if total > max_bytes:
                    raise BodyTooLarge(max_bytes, upload=True)
                out.write(chunk)
        return total

    return await run_in_threadpool(copy)


_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f]")
#: Room left in a file name (255 bytes on common file systems) for nothing else.
_MAX_NAME_BYTES = 200


def upload_name(filename: str | None) -> str:
    """The uploaded file's own name, reduced to a plain, safe file name.

    The last part of any path (``/`` or ``\\``), without control characters, at most
    ``_MAX_NAME_BYTES`` bytes (the extension kept); ``upload`` when nothing is left.
    """
    raw = re.split(r"[/\\]", filename or "")[-1]
    name = _UNSAFE_NAME_CHARS.sub("", raw).strip()
    if name in ("", ".", ".."):
        return "upload"
    if len(name.encode()) > _MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        keep = _MAX_NAME_BYTES - len(ext.encode()) - 1
        stem = (stem if dot else name).encode()[:keep].decode("utf-8", "ignore")
        name = f"{stem}.{ext}" if ext else stem
    return name


def _flag(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


async def _parse(request: Request, services: Services, workdir: Path,
                 ) -> tuple[jobs.Upload | jobs.LinkSource, bool]:
    """The source of the clip and whether the body asked for a stream."""
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
                # Kept under its own (cleaned) name, so that what the decoder says about it
                # names the file the person sent.
                name = upload_name(files[0].filename)
                path = workdir / name
                size = await _save_upload(files[0], path, settings.max_upload_bytes)
                if size == 0:
                    raise EmptyMediaError(f"{name}: the file is empty")
                upload = jobs.Upload(path=path, filename=name, bytes=size)
    elif ctype == "application/json":
        data = await read_json(request, settings)
        try:
            body = IdentifyLinkIn.model_validate(data)
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


async def _until_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


@router.post(
    "/identify",
    response_model=IdentifyOut,
    responses=_ERRORS,
    openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": _FORM_SCHEMA},
        "application/json": {"schema": IdentifyLinkIn.model_json_schema()},
    }}},
)
async def identify(
    request: Request,
    services: ServicesDep,
    index: IndexDep,
    budget: BudgetDep,
    stream: Annotated[bool, Query(description="Answer with Server-Sent Events.")] = False,
) -> Response:
    """Identify an uploaded clip (multipart `file`) or a link (`url`), not both.

    Counts against the caller's rate limit (per IP without a key, per key with one); a
    request refused before any work (a link not allowed, a malformed body) counts against
    a separate limit of refusals instead.
    """
    settings = services.settings
    if settings.temp_dir is not None:
        settings.temp_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="citywok-", dir=settings.temp_dir))
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
    job = jobs.Job(source=source, index=index, settings=settings, executor=services.executor,
                   workdir=workdir, policy=services.link_policy)
    if _wants_stream(request, stream or body_stream):
        return usage.after(EventSourceResponse(_sse(request, services, job), ping=15,
                                               send_timeout=30,
                                               headers={"X-Accel-Buffering": "no"}), request, job)
    return usage.after(await _answer(request, services, job), request, job)


async def _published(request: Request, services: Services, job: jobs.Job,
                     event: jobs.Event) -> jobs.Event:
    """The result event with the answer's share link, previews and watch link."""
    if event.name != "result" or job.result is None:
        return event
    return jobs.Event("result", await publish(request, services, job.index, job.result,
                                              file=event.data.get("file")))


async def _sse(request: Request, services: Services,
               job: jobs.Job) -> AsyncIterator[dict[str, str]]:
    async with contextlib.aclosing(jobs.run(job)) as events:
        try:
            async for event in events:
                yield (await _published(request, services, job, event)).sse()
        except Exception as exc:
            status, code, message, _ = describe(exc)
            yield {"event": "error", "data": json.dumps({"status": status,
                                                         **error_body(code, message)})}


async def _answer(request: Request, services: Services, job: jobs.Job) -> Response:
    async def consume() -> dict[str, Any]:
        async with contextlib.aclosing(jobs.run(job)) as events:
            async for event in events:
                if event.name == "result":
                    return (await _published(request, services, job, event)).data
        raise RuntimeError("identification ended without a result")

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
