"""uvicorn's h11 protocol with a deadline for request headers.

uvicorn times out a connection only while it idles between requests (``timeout_keep_alive``,
armed after a response); a connection that sends a few bytes of headers, or nothing at
all, is held for good, so a few thousand of them (slowloris) fill the server. Here the
same timer is armed when the connection opens and is not disarmed by bytes arriving, only
by a complete request head: whatever does not send its headers within the deadline, from
connecting or from the previous response, is closed. Bodies are not affected (uploads can
take their time; the body size limit guards them).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadlineH11Protocol(H11Protocol):
    """Closes connections that do not deliver request headers within
    ``config.timeout_keep_alive`` seconds (``CITYWOK_REQUEST_HEADER_TIMEOUT_S``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def data_received(self, data: bytes) -> None:
        # uvicorn disarms the timer on any byte; here only a complete request head does
        # (handle_events cancels it when h11 yields the Request event).
        self.conn.receive_data(data)
        self.handle_events()
