"""Sign-in, rate and size limits, applied before any door reads a byte of the request.

Sign-in: the ``Authorization`` header is checked here, once, and the proven user left in the
scope for the doors (:data:`calmesh.server.auth.SCOPE_KEY`). A credential verified in the last
minutes is recognised on the event loop at once. Any other costs a password hash, so it is
verified on a small pool of its own (``server.auth_workers`` threads, at a lower CPU priority on
Linux so that answering requests comes first), never on the loop, and:

- at most one verification per client address is in flight (the same header sent again waits for
  that one's result; a different one answers 429 at once);
- failed sign-ins back off exponentially per client address, and per claimed user name for the
  addresses that failed for that name. A clean address is still verified and a remembered
  credential always passes, so nobody can lock a colleague out by failing in their name.

Rate: a signed-in request counts against its user's token bucket, any other (no header, or a
failed one) against its client address's; buckets refill at ``rate_limit_per_minute``, or at the
user's own ``rate_limit_per_minute`` (a service account asking for the whole organisation).

Size: a body larger than ``server.max_request_bytes`` is refused with 413, whether it announces
its length or streams (chunked). The body is read here and replayed, so doors never see a partial
body. A body that does not arrive within ``server.body_timeout`` seconds of the headers is
answered 408: a client announcing a body and never sending it cannot hold a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import anyio
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calmesh.server.auth import SCOPE_KEY, Authenticator, User, claimed_name
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

    def take(self, key: str, per_minute: int | None = None) -> float:
        """0 when the request may go ahead, else the seconds until it could. ``per_minute``: this
        key's own budget instead of the limiter's (a service account's)."""
        capacity = self.capacity if per_minute is None else float(max(1, per_minute))
        rate = capacity / 60.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            return wait


class Backoff:
    """Failure counts per key with exponential back-off: after ``free`` failures, each one bars
    the key for ``base`` seconds, doubling per failure up to ``cap``. A key quiet for ``cap``
    seconds starts afresh. Thread-safe, bounded in memory (least recently failed dropped)."""

    def __init__(self, *, free: int, base: float = 1.0, cap: float = 900.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 50_000) -> None:
        self.free, self.base, self.cap = free, base, cap
        self._clock = clock
        self._failed: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._max = max_keys
        self._lock = threading.Lock()

    def failures(self, key: str) -> int:
        """Recent failures of ``key`` (0 once it has been quiet for ``cap`` seconds)."""
        with self._lock:
            count, last = self._failed.get(key, (0, 0.0))
        return count if count and self._clock() - last < self.cap else 0

    def wait(self, key: str) -> float:
        """0 when ``key`` may try now, else the seconds until it may."""
        with self._lock:
            count, last = self._failed.get(key, (0, 0.0))
        if count <= self.free:
            return 0.0
        return max(0.0, last + min(self.cap, self.base * 2 ** (count - self.free - 1)) - self._clock())

    def fail(self, key: str) -> None:
        now = self._clock()
        count = self.failures(key)
        with self._lock:
            self._failed.pop(key, None)
            self._failed[key] = (count + 1, now)
            while len(self._failed) > self._max:
                self._failed.popitem(last=False)


class SignInLimits:
    """Failed sign-ins per client address and per claimed name (see the module docstring)."""

    ADDRESS_FREE = 5
    NAME_FREE = 10

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.addresses = Backoff(free=self.ADDRESS_FREE, clock=clock)
        self.names = Backoff(free=self.NAME_FREE, clock=clock)
        self._pairs = Backoff(free=0, clock=clock)
        """Which addresses failed for which names: only those wait for the name's back-off."""

    def wait(self, address: str, name: str | None) -> float:
        wait = self.addresses.wait(address)
        if name is not None and self._pairs.failures(f"{address}\0{name}"):
            wait = max(wait, self.names.wait(name))
        return wait

    def fail(self, address: str, name: str | None) -> None:
        self.addresses.fail(address)
        if name is not None:
            self.names.fail(name)
            self._pairs.fail(f"{address}\0{name}")


def _lower_priority() -> None:
    """Hash checks yield the CPU to answering requests: on Linux each thread has its own nice
    value, and the threads Argon2 starts for its lanes inherit it."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class _Pending:
    """One verification in flight; requests with the same header wait for its result."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.user: User | None = None


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, limiter: RateLimiter, auth: Authenticator,
                 metrics: Metrics, workers: int = 2, clock: Callable[[], float] = time.monotonic,
                 exempt: tuple[str, ...] = ("/healthz", "/metrics"), body_timeout: float = 30.0,
                 user_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout
        self.limiter = limiter
        self.user_limits = user_limits or {}
        """Requests per minute of the users with a budget of their own."""
        self.auth = auth
        self.sign_ins = SignInLimits(clock)
        self.metrics = metrics
        self.exempt = exempt
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="calmesh-sign-in",
                                        initializer=_lower_priority)
        self._pending: dict[str, _Pending] = {}
        """Verifications in flight, by header."""
        self._verifying: set[str] = set()
        """Client addresses with a verification in flight."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        address = scope["client"][0] if scope.get("client") else "unknown"
        authorization = dict(scope.get("headers", [])).get(b"authorization")
        user = None
        if authorization:
            header = authorization.decode("latin-1")
            user = self.auth.remembered(header)
            if user is None:
                outcome = await self._sign_in(header, address)
                if isinstance(outcome, Response):
                    await outcome(scope, receive, send)
                    return
                user = outcome
        scope[SCOPE_KEY] = user
        if scope.get("path") not in self.exempt:
            budget = self.user_limits.get(user.name) if user else None
            wait = self.limiter.take(f"user:{user.name}" if user else f"addr:{address}", budget)
            if wait > 0:
                limit = budget or int(self.limiter.capacity)
                await self._too_many(wait, f"rate limit of {limit} requests per minute reached")(
                    scope, receive, send)
                return
        await self._with_body(scope, receive, send)

    async def _sign_in(self, header: str, address: str) -> User | None | Response:
        """Verify ``header`` off the loop, within the failure limits; a 429 when over them."""
        pending = self._pending.get(header)
        if pending is None:
            name = claimed_name(header)
            wait = self.sign_ins.wait(address, name)
            if wait > 0:
                return self._too_many(wait, "too many failed sign-ins; wait before trying again")
            if address in self._verifying:
                return self._too_many(1, "a sign-in from this address is already being checked")
            pending = self._pending[header] = _Pending()
            self._verifying.add(address)
            try:
                with anyio.CancelScope(shield=True):  # waiting requests need the result
                    pending.user = await asyncio.get_running_loop().run_in_executor(
                        self._pool, self.auth.verify, header)
            finally:
                del self._pending[header]
                self._verifying.discard(address)
                pending.done.set()
            if pending.user is None:
                self.sign_ins.fail(address, name)
        else:
            await pending.done.wait()
        return pending.user

    def _too_many(self, wait: float, detail: str) -> Response:
        self.metrics.rate_limited.inc()
        return problem(429, "Too Many Requests", detail, {"Retry-After": str(max(1, math.ceil(wait)))})

    async def _with_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its whole body, or refuse it when over ``max_bytes``."""
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
        with anyio.move_on_after(self.body_timeout) as reading:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
        if reading.cancelled_caught:
            await problem(408, "Request Timeout", f"the request body did not arrive within {self.body_timeout:g} "
                          "seconds (server.body_timeout)", {"Connection": "close"})(scope, receive, send)
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
