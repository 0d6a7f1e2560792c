"""Prometheus metrics: requests per door, latency, cache hits, upstream fan-out time and failures.

Each app gets its own registry so that several servers in one process (tests, the benchmark) do
not collide on metric names.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calmesh.model import PersonFreeBusy

_DOORS = (("/api/", "api"), ("/freebusy/", "vfreebusy"), ("/feeds/", "feeds"), ("/ews/", "ews"), ("/autodiscover/", "ews"),
          ("/dav/", "caldav"), ("/.well-known/", "caldav"), ("/metrics", "metrics"), ("/healthz", "health"))


def door_of(path: str) -> str:
    lowered = path.lower()
    return next((name for prefix, name in _DOORS if lowered.startswith(prefix)), "web")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("calmesh_http_requests", "HTTP requests answered", ["door", "status"],
                                registry=self.registry)
        self.latency = Histogram("calmesh_http_request_seconds", "Time to answer a request", ["door"],
                                 registry=self.registry)
        self.cache_lookups = Counter("calmesh_freebusy_cache_lookups", "Per-person cache lookups", ["result"],
                                     registry=self.registry)
        self.fanout = Histogram("calmesh_upstream_fanout_seconds", "Time of one fan-out to the platforms",
                                registry=self.registry)
        self.missing = Counter("calmesh_freebusy_missing_people", "People answered with an error (data missing)",
                               registry=self.registry)
        self.rate_limited = Counter("calmesh_rate_limited", "Requests refused by the rate limit",
                                    registry=self.registry)

    def cache(self, hits: int, misses: int) -> None:
        if hits:
            self.cache_lookups.labels("hit").inc(hits)
        if misses:
            self.cache_lookups.labels("miss").inc(misses)

    def upstream(self, seconds: float, answers: Sequence[PersonFreeBusy]) -> None:
        self.fanout.observe(seconds)
        missing = sum(1 for a in answers if a.errors)
        if missing:
            self.missing.inc(missing)

    def endpoint(self, _request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts and times every request by door and status (outermost, so refusals count too)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        door = door_of(scope.get("path", ""))
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(door, str(status)).inc()
            self.metrics.latency.labels(door).observe(time.perf_counter() - started)
