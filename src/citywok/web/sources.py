"""What ``POST /identify`` and ``POST /timeline`` share: the input a request sends (an
upload or a link, kept in the request's own work folder), and the two ways its events
go back (Server-Sent Events, or one JSON answer that a client going away cancels).

The routes differ only in their limits, their link body and the job they run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from citywok.errors import EmptyMediaError
from citywok.links.fetch import check_link, resolve_checked
from citywok.web.deps import Budget
from citywok.web.errors import ApiError, ErrorBody, describe, error_body
from citywok.web.jobs import Event, LinkSource, Upload
from citywok.web.schemas import LinkIn
from citywok.web.security import BodyTooLarge, read_json
from citywok.web.state import Services

Source = Upload | LinkSource

_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f]")
#: Room left in a file name (255 bytes on common file systems) for nothing else.
_MAX_NAME_BYTES = 200


def route_doc(*, file: str, answer: str, link_schema: dict[str, Any], stages: str
              ) -> dict[str, Any]:
    """The OpenAPI ``responses`` and request body of a route that takes an upload or a
    link (identify, timeline): one list of errors and one event stream, as both work
    alike. ``file`` says what the upload is, ``answer`` what the JSON answer is, ``stages``
    the events the route's own work sends between download and answer."""
    events = ("Named events: `received`, `downloading` (`bytes`, `total`, `percent`), "
              f"{stages}, `heartbeat` (while a stage runs long), then `result` (the JSON of "
              "a plain answer) or `error` (`{\"status\", \"error\": {code, message}}`).")
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorBody, "description": why} for status, why in (
            (400, "Malformed request"), (401, "Unknown, revoked or empty API key"),
            (413, "Upload, download, body or input too large or too long"),
            (415, "Not a media file with audio, or an unsupported body type"),
            (422, "Invalid request (both or neither of file and url), unusable audio, or "
                  "a refused link"),
            (429, "Rate limit reached, too many refused requests or wrong keys (see "
                  "Retry-After)"),
            (502, "The link could not be downloaded"), (503, "No index loaded"),
        )
    }
    responses[200] = {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                      "description": f"{answer} (JSON), or a stream of events. {events}"}
    return {"responses": responses,
            "openapi_extra": {"requestBody": {"required": True, "content": {
                "multipart/form-data": {"schema": form_schema(file)},
                "application/json": {"schema": link_schema},
            }}}}


def form_schema(what: str) -> dict[str, Any]:
    """The multipart body's OpenAPI schema; ``what`` says what the file is."""
    return {
        "type": "object",
        "description": "Send `file` or `url`, not both.",
        "oneOf": [{"required": ["file"]}, {"required": ["url"]}],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": f"{what} (any container ffmpeg reads with an audio "
                     "stream)."},
            "url": {"type": "string", "description": "A link instead of a file."},
            "stream": {"type": "boolean", "description": "Answer with Server-Sent Events."},
        },
    }


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


def _flag(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


async def _parse(request: Request, services: Services, workdir: Path, *,
                 max_upload_bytes: int, link_body: type[LinkIn]) -> tuple[Source, bool]:
    """The input and whether the body asked for a stream."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    url: str | None = None
    stream = False
    upload: Upload | None = None
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
                size = await _save_upload(files[0], path, max_upload_bytes)
                if size == 0:
                    raise EmptyMediaError(f"{name}: the file is empty")
                upload = Upload(path=path, filename=name, bytes=size)
    elif ctype == "application/json":
        data = await read_json(request, services.settings)
        try:
            body = link_body.model_validate(data)
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
    return LinkSource(link=link), stream


async def accept(request: Request, services: Services, budget: Budget, *, prefix: str,
                 max_upload_bytes: int, link_body: type[LinkIn],
                 before_spend: Callable[[], None] | None = None,
                 ) -> tuple[Source, bool, Path]:
    """The request's input, in a work folder of its own (the job removes it), and whether
    the body asked for a stream.

    A request refused before any work counts against the limit of refusals, one taken on
    against the caller's identifications; nothing is left behind either way.
    ``before_spend`` runs once the request is understood, before it is counted (the
    bounded queue's admission: a refusal there spends nothing).
    """
    settings = services.settings
    if settings.temp_dir is not None:
        settings.temp_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=settings.temp_dir))
    try:
        try:
            source, stream = await _parse(request, services, workdir,
                                          max_upload_bytes=max_upload_bytes,
                                          link_body=link_body)
        except Exception:
            await budget.refused()
            raise
        if before_spend is not None:
            before_spend()
        await budget.spend()
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return source, stream, workdir


def wants_stream(request: Request, *asked: bool) -> bool:
    """Server-Sent Events when the query or the body asked, or ``Accept`` says so."""
    return any(asked) or "text/event-stream" in request.headers.get("accept", "").lower()


def event_stream(events: AsyncGenerator[Event, None]) -> EventSourceResponse:
    """The events as Server-Sent Events; a failure becomes a last ``error`` event
    (``{"status", "error": {code, message}}``). The events stop when the client goes."""

    async def sse() -> AsyncIterator[dict[str, str]]:
        async with contextlib.aclosing(events):
            try:
                async for event in events:
                    yield event.sse()
            except Exception as exc:
                status, code, message, _ = describe(exc)
                yield {"event": "error", "data": json.dumps({"status": status,
                                                             **error_body(code, message)})}

    return EventSourceResponse(sse(), ping=15, send_timeout=30,
                               headers={"X-Accel-Buffering": "no"})


async def _until_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def answer(request: Request, events: AsyncGenerator[Event, None]) -> Any:
    """The ``result`` event's model (or its data) for the route to return as its
    ``response_model`` (errors are raised). A client that goes away first cancels the work
    (and gets a 499 response, which nobody reads)."""

    async def consume() -> Any:
        async with contextlib.aclosing(events):
            async for event in events:
                if event.name == "result":
                    return event.model if event.model is not None else event.data
        raise RuntimeError("the job ended without a result")

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
    return work.result()
