"""Prometheus metrics (one set per process; merged across workers in multiprocess mode).

With several workers, ``citywok serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before they
start, and ``/metrics`` merges every worker's numbers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

REQUESTS = Counter("citywok_http_requests", "HTTP requests by route and status.",
                   ["method", "route", "status"])
LATENCY = Histogram("citywok_http_request_duration_seconds",
                    "Time to the end of the response, by route.", ["method", "route"],
                    buckets=_LATENCY_BUCKETS)
STAGE = Histogram("citywok_stage_duration_seconds",
                  "Time spent in each stage of an identification.", ["stage"],
                  buckets=_LATENCY_BUCKETS)
IDENTIFICATIONS = Counter("citywok_identifications",
                          "Finished identifications by outcome (match, ambiguous, no_match, "
                          "error, cancelled).", ["status"])
RATE_LIMITED = Counter("citywok_rate_limited", "Identifications refused by rate limit.",
                       ["tier"])


def render() -> tuple[bytes, str]:
    """The metrics page and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
