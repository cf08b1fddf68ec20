"""``POST /api/v1/identify``: an uploaded clip or a link → the episode and the offset.

JSON by default (``IdentifyOut``: the answer model of ``citywok identify --json`` with
the web's links); Server-Sent Events with ``Accept: text/event-stream`` or
``stream=true``, whose ``result`` event carries the same model.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import Response

from citywok.web import jobs, usage
from citywok.web.admission import Ticket
from citywok.web.answers import publish
from citywok.web.deps import BudgetDep, IndexDep, ServicesDep
from citywok.web.schemas import IdentifyLinkIn, IdentifyOut
from citywok.web.sources import accept, answer, event_stream, route_doc, wants_stream
from citywok.web.state import Services

router = APIRouter(tags=["identify"])


@router.post(
    "/identify",
    response_model=IdentifyOut,
    **route_doc(file="The clip (audio or video), or a screenshot (PNG, JPEG, WebP)",
                answer="The answer",
                link_schema=IdentifyLinkIn.model_json_schema(),
                stages="`decoding`, `fingerprinting`, `matching`"),
)
async def identify(
    request: Request,
    services: ServicesDep,
    index: IndexDep,
    budget: BudgetDep,
    tasks: BackgroundTasks,
    stream: Annotated[bool, Query(description="Answer with Server-Sent Events.")] = False,
) -> Any:
    """Identify an uploaded clip (multipart `file`) or a link (`url`), not both.

    A clip with video is answered from its sound and its pictures where the index holds
    pictures (`decided_by` says which decided; `disagreement` names both places when
    they differ); a picture file (PNG, JPEG, WebP, told by its first bytes) is a
    screenshot, answered by its one picture.

    When more work is queued than this worker can answer within `max_queue_wait_s`, the
    request is refused at once: 503 with `Retry-After`. A streamed identification that
    waits for its turn gets `queued` events with its place.

    Counts against the caller's rate limit (per IP without a key, per key with one); a
    request refused before any work (a link not allowed, a malformed body) counts against
    a separate limit of refusals instead.
    """
    # The bounded queue (citywok.web.admission): an upload is admitted before its body is
    # read, so that a crowd is refused at once, and holds its place while it comes in; a
    # link (a small JSON body) once it is understood, so that one refused for what it is
    # (422) never held a place.
    tickets: list[Ticket] = []
    uploading = request.headers.get("content-type", "").lower().startswith("multipart/")
    if uploading:
        tickets.append(services.admission.admit())
    else:
        services.admission.check()
    try:
        source, body_stream, workdir = await accept(
            request, services, budget, prefix="citywok-",
            max_upload_bytes=services.settings.max_upload_bytes, link_body=IdentifyLinkIn,
            before_spend=None if uploading else (
                lambda: tickets.append(services.admission.admit())))
    except BaseException:
        for t in tickets:  # admitted, then refused (malformed, or over its quota)
            services.admission.release(t)
        raise
    (ticket,) = tickets
    job = jobs.Job(source=source, index=index, settings=services.settings,
                   executor=services.executor, workdir=workdir, policy=services.link_policy,
                   admission=services.admission, ticket=ticket)
    events = _published(request, services, job)
    if wants_stream(request, stream, body_stream):
        return usage.after(event_stream(events), request, job)
    out = await answer(request, events)
    if isinstance(out, Response):  # the client went away
        return usage.after(out, request, job)
    usage.later(tasks, request, job)
    return out


async def _published(request: Request, services: Services,
                     job: jobs.Job) -> AsyncGenerator[jobs.Event, None]:
    """The job's events, the result with the answer's share link, previews and watch link."""
    # Closed with this generator: a client that goes away stops the job at once.
    async with contextlib.aclosing(jobs.run(job)) as events:
        async for event in events:
            if event.name == "result" and job.result is not None:
                out = await publish(request, services, job.result,
                                    file=event.data.get("file"))
                event = jobs.Event("result", event.data, model=out)
            yield event
