"""``POST /api/v1/identify``: an uploaded clip or a link → the episode and the offset.

JSON by default (the shape of ``citywok identify --json``); Server-Sent Events with
``Accept: text/event-stream`` or ``stream=true``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from citywok.web import jobs, usage
from citywok.web.answers import publish
from citywok.web.deps import BudgetDep, IndexDep, ServicesDep
from citywok.web.schemas import IdentifyLinkIn, IdentifyOut
from citywok.web.sources import accept, answer, event_stream, route_doc, wants_stream
from citywok.web.state import Services

router = APIRouter(tags=["identify"])


@router.post(
    "/identify",
    response_model=IdentifyOut,
    **route_doc(file="The clip", answer="The answer",
                link_schema=IdentifyLinkIn.model_json_schema(),
                stages="`decoding`, `fingerprinting`, `matching`"),
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
    source, body_stream, workdir = await accept(
        request, services, budget, prefix="citywok-",
        max_upload_bytes=services.settings.max_upload_bytes, link_body=IdentifyLinkIn)
    job = jobs.Job(source=source, index=index, settings=services.settings,
                   executor=services.executor, workdir=workdir, policy=services.link_policy)
    events = _published(request, services, job)
    if wants_stream(request, stream, body_stream):
        return usage.after(event_stream(events), request, job)
    return usage.after(await answer(request, events), request, job)


async def _published(request: Request, services: Services,
                     job: jobs.Job) -> AsyncGenerator[jobs.Event, None]:
    """The job's events, the result with the answer's share link, previews and watch link."""
    # Closed with this generator: a client that goes away stops the job at once.
    async with contextlib.aclosing(jobs.run(job)) as events:
        async for event in events:
            if event.name == "result" and job.result is not None:
                event = jobs.Event("result", await publish(request, services, job.index,
                                                           job.result,
                                                           file=event.data.get("file")))
            yield event
