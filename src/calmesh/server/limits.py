"""Request size and rate limits, applied before any door reads a byte of the request.

Size: a body larger than ``server.max_request_bytes`` is refused with 413, whether it announces
its length or streams (chunked). The body is read here and replayed, so doors never see a partial
body. Rate: a token bucket per client (the user named in ``Authorization``, else the client
address) refills at ``rate_limit_per_minute``; an empty bucket answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calmesh.server.context import problem
from calmesh.server.metrics import Metrics


class RateLimiter:
    """Token buckets per client key; thread-safe, bounded in memory (least recently seen dropped)."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 50_000) -> None:
        self.capacity = float(max(1, per_minute))
        self.rate = self.capacity / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max = max_clients
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            return wait


def client_key(scope: Scope) -> str:
    """Who a request counts against: the Basic user or a digest of the bearer token, else the address."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if scheme.lower() == b"basic":
                try:
                    user = base64.b64decode(credentials.strip(), validate=True).partition(b":")[0]
                    return "user:" + user.decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    break
            return "token:" + hashlib.sha256(credentials.strip()).hexdigest()[:16]
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, limiter: RateLimiter, metrics: Metrics,
                 exempt: tuple[str, ...] = ("/healthz", "/metrics")) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.limiter = limiter
        self.metrics = metrics
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") not in self.exempt:
            wait = self.limiter.take(client_key(scope))
            if wait > 0:
                self.metrics.rate_limited.inc()
                response = problem(429, "Too Many Requests",
                                   f"rate limit of {int(self.limiter.capacity)} requests per minute reached",
                                   {"Retry-After": str(max(1, math.ceil(wait)))})
                await response(scope, receive, send)
                return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await problem(400, "Bad Request", "invalid Content-Length")(scope, receive, send)
                return
            if too_big:
                await self._too_large(scope, receive, send)
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await problem(413, "Content Too Large",
                      f"request bodies are limited to {self.max_bytes} bytes (server.max_request_bytes)")(
            scope, receive, send)
