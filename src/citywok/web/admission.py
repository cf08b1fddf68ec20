"""Admission of identifications: a bounded queue in front of the job pool.

One worker runs ``slots`` identifications at once; the rest wait their turn. Without a
bound, a crowd of 1,000 uploads was answered, but after 73 s at the median, each waiting
upload holding its place. A new identification is admitted only while the wait it can
expect stays under ``max_wait_s`` (the work ahead of it, shared by the slots, at the
recent average time of one identification); past that it is refused at once with
:class:`~citywok.errors.ServiceBusyError` (HTTP 503 with ``Retry-After``), and the
client can come back when the queue has drained. An admitted job waits for its slot in
order of arrival and can say where it stands.

An upload is admitted when the request comes in, before its body is read, so that a
crowd is refused at once, and holds its place while its body comes in; a link (a small
JSON body) is admitted once it is understood, before it spends the caller's quota, so that
a request refused for what it is (a link not allowed) never holds a place. A busy refusal
spends no quota either way. A job joins the queue when its input is in (a slow download
holds no one up) and counts as work ahead of later arrivals from its admission.

Runs on the event loop only (no locks): admission and release happen in request
handlers and in the job's own coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from citywok.errors import ServiceBusyError

#: Weight of the newest identification's time in the running average: recent load
#: counts, one slow clip does not swing it.
AVERAGE_WEIGHT = 0.2
#: A job admitted but never queued (its request went away before its work started, so
#: nothing released it) stops counting after this long; uploads take less.
ARRIVAL_LIMIT_S = 600.0


@dataclass(eq=False)
class Ticket:
    """One admitted identification, from admission to release."""

    admitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    released: bool = False
    #: Set when the queue moves (made in the loop that waits: an app's lifespans may
    #: each run their own loop).
    moved: asyncio.Event | None = None


@dataclass(frozen=True)
class Place:
    """Where a waiting identification stands: ``position`` 1 is next."""

    position: int
    expected_wait_s: float


class Admission:
    """The bounded queue of one worker (see the module docstring)."""

    def __init__(self, *, slots: int, max_wait_s: float, initial_job_s: float) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = slots
        self.max_wait_s = max_wait_s
        #: Running average of one identification's time, seconds (from admission's first
        #: guess until jobs have run).
        self.average_job_s = initial_job_s
        self._arriving: set[Ticket] = set()
        self._waiting: deque[Ticket] = deque()
        self._running = 0

    @property
    def waiting(self) -> int:
        """Jobs admitted and not running yet (their input coming in, or queued)."""
        return len(self._arriving) + len(self._waiting)

    @property
    def running(self) -> int:
        return self._running

    def expected_wait_s(self, ahead: int) -> float:
        """The wait of a job with ``ahead`` jobs not yet running before it: none while a
        slot is free for it; else every job past the free slots, its own turn included,
        takes a slot for ``average_job_s`` (a running job is counted whole: the bound
        errs toward refusing)."""
        busy = self._running + ahead
        if busy < self.slots:
            return 0.0
        return (busy - self.slots + 1) / self.slots * self.average_job_s

    def check(self) -> None:
        """:class:`ServiceBusyError` when a job admitted now would wait past
        ``max_wait_s`` (asked before a link request's body is read; :meth:`admit` asks
        again once it is understood)."""
        self._busy_error()

    def admit(self) -> Ticket:
        """A place among the jobs to come, or :class:`ServiceBusyError` at once when the
        wait behind them would pass ``max_wait_s``."""
        now = self._busy_error()
        ticket = Ticket(admitted_at=now)
        self._arriving.add(ticket)
        return ticket

    def _busy_error(self) -> float:
        now = time.monotonic()
        self._arriving = {t for t in self._arriving if now - t.admitted_at < ARRIVAL_LIMIT_S}
        ahead = self.waiting
        wait_s = self.expected_wait_s(ahead)
        if wait_s > self.max_wait_s:
            retry = max(1, math.ceil(wait_s - self.max_wait_s + self.average_job_s))
            raise ServiceBusyError(
                f"the server is busy: {ahead + self._running} identifications are ahead "
                f"(about {wait_s:.0f} s of work); try again in {retry} s",
                retry_after_s=retry)
        return now

    def place(self, ticket: Ticket) -> Place | None:
        """Where a waiting ticket stands (None once it runs or is released)."""
        try:
            ahead = self._waiting.index(ticket)
        except ValueError:
            return None
        return Place(ahead + 1, round(self.expected_wait_s(ahead), 1))

    async def turn(self, ticket: Ticket, *, every_s: float) -> AsyncIterator[Place]:
        """Wait for ``ticket``'s slot; while it waits, its place now and every ``every_s``
        seconds or whenever the queue moves. Returns once it runs."""
        if ticket in self._arriving:  # its input is in: it joins the queue
            self._arriving.discard(ticket)
            self._waiting.append(ticket)
        while True:
            if self._waiting and self._waiting[0] is ticket and self._running < self.slots:
                self._waiting.popleft()
                self._running += 1
                ticket.started_at = time.monotonic()
                self._notify()  # the next one moved up a place
                return
            where = self.place(ticket)
            if where is None:
                raise RuntimeError("a ticket waits that is not in the queue")
            yield where
            ticket.moved = ticket.moved or asyncio.Event()
            ticket.moved.clear()
            with contextlib.suppress(TimeoutError):  # its place again, moved or not
                await asyncio.wait_for(ticket.moved.wait(), timeout=every_s)

    def release(self, ticket: Ticket) -> None:
        """The job is over (answered, failed or abandoned, waiting or running): its place
        or slot goes to the next, and a job that ran counts in the average."""
        if ticket.released:
            return
        ticket.released = True
        if ticket.started_at is None:
            self._arriving.discard(ticket)
            if ticket in self._waiting:
                self._waiting.remove(ticket)
        else:
            self._running -= 1
            took = time.monotonic() - ticket.started_at
            self.average_job_s += AVERAGE_WEIGHT * (took - self.average_job_s)
        self._notify()

    def _notify(self) -> None:
        for waiting in self._waiting:
            if waiting.moved is not None:
                waiting.moved.set()
