"""Usage figures kept by the service itself (no third-party script): one row per
identification answered or refused, in the service database, shared by replicas.

A row holds the day, the outcome, where the clip came from (``upload``, ``link`` with
the platform it matched, ``microphone`` for the page's recordings), the engine's time and
the episode matched. Never an IP address, a key, a file name, a link or clip content.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.background import BackgroundTask, BackgroundTasks
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from citywok.web.db import Database, database_errors, usage_events

log = logging.getLogger("citywok.web")

IDENTIFY = "identify"
REFUSED = "refused"
#: File names the page gives its microphone recordings (web/src/components/Listen.tsx).
MICROPHONE_PREFIX = "recording."


@dataclass(frozen=True)
class Latency:
    count: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class DayUsage:
    day: str
    identifications: int
    by_status: tuple[tuple[str, int], ...]
    by_source: tuple[tuple[str, int], ...]
    refused: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class UsageReport:
    first_day: str
    last_day: str
    identifications: int
    refused: int
    by_status: tuple[tuple[str, int], ...]
    #: ``upload``, ``microphone``, ``link:<platform>``.
    by_source: tuple[tuple[str, int], ...]
    refused_by_reason: tuple[tuple[str, int], ...]
    latency: Latency
    top_episodes: tuple[tuple[str, int], ...]
    days: tuple[DayUsage, ...]

    def to_json(self) -> dict[str, Any]:
        def pairs(rows: tuple[tuple[str, int], ...]) -> dict[str, int]:
            return dict(rows)

        return {
            "first_day": self.first_day, "last_day": self.last_day,
            "identifications": self.identifications, "refused": self.refused,
            "by_status": pairs(self.by_status), "by_source": pairs(self.by_source),
            "refused_by_reason": pairs(self.refused_by_reason),
            "latency_ms": {"count": self.latency.count, "p50": self.latency.p50_ms,
                           "p90": self.latency.p90_ms, "p99": self.latency.p99_ms,
                           "max": self.latency.max_ms},
            "top_episodes": [{"episode_id": e, "matches": n} for e, n in self.top_episodes],
            "days": [{"day": d.day, "identifications": d.identifications,
                      "by_status": pairs(d.by_status), "by_source": pairs(d.by_source),
                      "refused": pairs(d.refused)} for d in self.days],
        }


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def _source_label(source: str, platform: str | None) -> str:
    return f"{source}:{platform}" if platform else source


class UsageLog:
    """Writes and sums usage rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, *, kind: str, status: str, source: str, platform: str | None = None,
               latency_ms: float | None = None, episode_id: str | None = None,
               at: float | None = None) -> None:
        now = time.time() if at is None else at
        with self.db.ready().begin() as conn:
            conn.execute(usage_events.insert().values(
                day=_day(now), at=now, kind=kind, status=status[:64], source=source,
                platform=platform, latency_ms=latency_ms, episode_id=episode_id))

    def report(self, *, days: int = 30, now: float | None = None, top: int = 10) -> UsageReport:
        """Figures for the last ``days`` days (UTC), today included."""
        end = time.time() if now is None else now
        first = _day(end - 86400 * (days - 1))
        last = _day(end)
        t = usage_events
        window = (t.c.day >= first) & (t.c.day <= last)
        with database_errors("usage"), self.db.ready().connect() as conn:
            grouped = conn.execute(
                select(t.c.day, t.c.kind, t.c.status, t.c.source, t.c.platform,
                       func.count()).where(window)
                .group_by(t.c.day, t.c.kind, t.c.status, t.c.source, t.c.platform)).all()
            latencies = np.asarray([r[0] for r in conn.execute(
                select(t.c.latency_ms).where(window & (t.c.kind == IDENTIFY)
                                             & t.c.latency_ms.is_not(None)))], dtype=float)
            top_rows = conn.execute(
                select(t.c.episode_id, func.count().label("n"))
                .where(window & (t.c.kind == IDENTIFY) & t.c.episode_id.is_not(None))
                .group_by(t.c.episode_id).order_by(func.count().desc(), t.c.episode_id)
                .limit(top)).all()

        def add(table: dict[str, int], key: str, n: int) -> None:
            table[key] = table.get(key, 0) + n

        status: dict[str, int] = {}
        source: dict[str, int] = {}
        refused: dict[str, int] = {}
        per_day: dict[str, tuple[dict[str, int], dict[str, int], dict[str, int]]] = {}
        for day, kind, st, src, platform, n in grouped:
            d_status, d_source, d_refused = per_day.setdefault(day, ({}, {}, {}))
            if kind == IDENTIFY:
                add(status, st, n)
                add(d_status, st, n)
                add(source, _source_label(src, platform), n)
                add(d_source, _source_label(src, platform), n)
            else:
                add(refused, st, n)
                add(d_refused, st, n)

        def ranked(table: dict[str, int]) -> tuple[tuple[str, int], ...]:
            return tuple(sorted(table.items(), key=lambda kv: (-kv[1], kv[0])))

        def pct(q: float) -> float | None:
            return round(float(np.percentile(latencies, q)), 1) if latencies.size else None

        return UsageReport(
            first_day=first, last_day=last, identifications=sum(status.values()),
            refused=sum(refused.values()), by_status=ranked(status), by_source=ranked(source),
            refused_by_reason=ranked(refused),
            latency=Latency(count=int(latencies.size), p50_ms=pct(50), p90_ms=pct(90),
                            p99_ms=pct(99), max_ms=pct(100)),
            top_episodes=tuple((str(e), int(n)) for e, n in top_rows),
            days=tuple(DayUsage(day=day, identifications=sum(v[0].values()),
                                by_status=ranked(v[0]), by_source=ranked(v[1]),
                                refused=ranked(v[2]))
                       for day, v in sorted(per_day.items())),
        )


# -- what the identify route calls ------------------------------------------------------


def _platform(host: str, allowed: list[str]) -> str:
    for name in allowed:
        if host == name or host.endswith("." + name):
            return name
    return "other"


def _safely(fn: Callable[[], None]) -> None:
    """Usage is bookkeeping: a database hiccup must not fail the request it describes."""
    try:
        fn()
    except SQLAlchemyError as exc:
        log.warning("usage not recorded: %s", type(exc).__name__)


def after(response: Response, request: Request, job: Any) -> Response:
    """Record ``job``'s outcome once ``response`` has been sent (streams included)."""
    write = _writer(request, job, cancelled=lambda: response.status_code == 499)
    previous = response.background

    async def run() -> None:
        if previous is not None:
            await previous()
        await run_in_threadpool(_safely, write)

    response.background = BackgroundTask(run)
    return response


def later(tasks: BackgroundTasks, request: Request, job: Any) -> None:
    """Record ``job``'s outcome once the answer a route returned has been sent."""
    tasks.add_task(_safely, _writer(request, job, cancelled=lambda: False))


def _writer(request: Request, job: Any, *,
            cancelled: Callable[[], bool]) -> Callable[[], None]:
    from citywok.web.jobs import LinkSource

    services = request.app.state.services
    source = job.source
    if isinstance(source, LinkSource):
        kind, platform = "link", _platform(source.link.host, services.settings.allowed_hosts)
    else:
        kind = "microphone" if source.filename.startswith(MICROPHONE_PREFIX) else "upload"
        platform = None

    def write() -> None:
        result = job.result
        if result is None:  # an error event was streamed, or the client went away
            status = "cancelled" if cancelled() else "error"
            services.usage.record(kind=IDENTIFY, status=status, source=kind,
                                  platform=platform)
            return
        services.usage.record(
            kind=IDENTIFY, status=result.status.value, source=kind, platform=platform,
            latency_ms=round(float(result.elapsed_ms), 2),
            episode_id=result.match.episode.episode_id if result.match is not None else None)

    return write


async def refused(request: Request, status: int, code: str) -> None:
    """Count an identify request answered with a 4xx error, by its error code."""
    if status >= 500 or not request.url.path.endswith("/identify"):
        return
    services = request.app.state.services
    await run_in_threadpool(_safely, lambda: services.usage.record(
        kind=REFUSED, status=code, source="unknown"))


