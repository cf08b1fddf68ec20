"""``POST /api/v1/timeline``: a long upload or link → every segment, its episode and place.

JSON by default (the shape of ``citywok timeline --json``); Server-Sent Events with
``Accept: text/event-stream`` or ``stream=true``, segments sent as they are found. Limits
of their own (``CITYWOK_TIMELINE_*``): inputs are long here. A client that goes away
cancels the job, which lets go of its worker within one step (a few seconds of input).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from citywok.result import Candidate
from citywok.web.deps import BudgetDep, IndexDep, ServicesDep
from citywok.web.schemas import AnswerModel, LinkIn, model_of
from citywok.web.sources import accept, answer, event_stream, route_doc, wants_stream
from citywok.web.timeline_job import TimelineJob, run

router = APIRouter(tags=["timeline"])


class SegmentEnd(AnswerModel):
    """An episode a segment comes from; ``offset_s`` is where the segment starts in it."""

    end_offset_s: float = Field(description="Where the segment ends in the episode, in s.")


if TYPE_CHECKING:  # to mypy, the typed extension; at run time, the model derived from it
    SegmentMatchOut = SegmentEnd
else:
    #: A segment's episode: the answer model's candidate, and where the segment ends.
    SegmentMatchOut = model_of(Candidate, name="SegmentMatchOut", extend=SegmentEnd)


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


class TimelineLinkIn(LinkIn):
    """The timeline of the media behind a link (JSON body)."""

    url: str = Field(min_length=1, description="A link to a long video (YouTube, ...), or a "
                     "direct link to a media file on an allowed host.")


@router.post(
    "/timeline",
    response_model=TimelineOut,
    **route_doc(file="The input", answer="The timeline",
                link_schema=TimelineLinkIn.model_json_schema(),
                stages="`decoding`, `progress` (`done_s`, `total_s`, `percent`), `segment` "
                       "(one segment, as in the answer, with its `index`; sent as soon as "
                       "its boundaries are final)"),
)
async def timeline(
    request: Request,
    services: ServicesDep,
    index: IndexDep,
    budget: BudgetDep,
    stream: Annotated[bool, Query(description="Answer with Server-Sent Events.")] = False,
) -> Any:
    """The timeline of a long input (multipart `file`) or a link (`url`): every segment,
    with the episode it comes from (identify's `match` shape, `offset_s` where the segment
    starts in the episode), `ambiguous` for shared material, `unknown` for the rest.

    Counts as one identification against the caller's rate limit (a request refused
    before any work counts against the limit of refusals instead). Limits:
    `CITYWOK_TIMELINE_MAX_UPLOAD_BYTES`, `CITYWOK_TIMELINE_MAX_DURATION_S`,
    `CITYWOK_TIMELINE_TIMEOUT_S`.
    """
    settings = services.settings
    source, body_stream, workdir = await accept(
        request, services, budget, prefix="citywok-tl-",
        max_upload_bytes=settings.timeline_max_upload_bytes, link_body=TimelineLinkIn)
    job = TimelineJob(source=source, index=index, settings=settings,
                      executor=services.executor, workdir=workdir,
                      policy=services.link_policy)
    if wants_stream(request, stream, body_stream):
        return event_stream(run(job))
    return await answer(request, run(job))
