"""The hub server: one Starlette app with a door per protocol, run by uvicorn.

Doors (one module each): JSON API (:mod:`.api`), VFREEBUSY URLs and busy feeds
(:mod:`.vfreebusy`), EWS availability (:mod:`.ews`), CalDAV principals and scheduling (:mod:`.caldav`).
The web page (``calmesh.server.web``, when present) is mounted last, at ``/``: it provides
``routes(ctx) -> list[BaseRoute]`` and gets the same :class:`ServerContext` as the other doors.

Middleware, outermost first: metrics (so refusals are counted), then sign-in, rate and size limits
(so no door reads an oversized body, serves a client over its rate, or checks a password itself).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import uvicorn
from rich.console import Console
from rich.text import Text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from calmesh.config import Config, ConfigError
from calmesh.demo.data import demo_monday
from calmesh.server import api, api_schedule, autodiscover, caldav, ews, health, vfreebusy
from calmesh.server.context import ServerContext, problem
from calmesh.server.csrf import JSONOnlyAPIMiddleware
from calmesh.server.limits import LimitsMiddleware, RateLimiter
from calmesh.server.listen import bind
from calmesh.server.metrics import MetricsMiddleware
from calmesh.services.hub import Hub
from calmesh.timezones import zoneinfo

log = logging.getLogger(__name__)


def _web_routes(ctx: ServerContext) -> list[BaseRoute]:
    """The web page's routes (issue 7), when that module is installed."""
    try:
        web = importlib.import_module("calmesh.server.web")
    except ModuleNotFoundError as exc:
        if exc.name != "calmesh.server.web":
            raise
        return []
    return list(web.routes(ctx))


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    titles = {404: "Not Found", 405: "Method Not Allowed"}
    return problem(exc.status_code, titles.get(exc.status_code, "Error"), exc.detail, dict(exc.headers or {}))


async def _crash(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "Internal Server Error", "an unexpected error occurred; it has been logged")


def create_app(hub: Hub, *, clock: Callable[[], float] = time.monotonic) -> Starlette:
    """The ASGI app serving ``hub``; ``clock`` (monotonic seconds) drives the cache and rate limits."""
    ctx = ServerContext(hub, clock=clock)
    server = hub.config.server
    if server.public_url is None:
        log.warning("server.public_url is not set: autodiscover answers with an error until it is "
                    "(the URLs it hands out are built from it, never from the request's Host)")

    routes: list[BaseRoute] = [
        *health.routes(ctx),
        *api.routes(ctx),
        *api_schedule.routes(ctx),
        *vfreebusy.routes(ctx),
        *ews.routes(ctx),
        *autodiscover.routes(ctx),
        *caldav.routes(ctx),
        *_web_routes(ctx),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(MetricsMiddleware, metrics=ctx.metrics),
            Middleware(LimitsMiddleware, max_bytes=server.max_request_bytes,
                       limiter=RateLimiter(server.rate_limit_per_minute, clock=clock), auth=ctx.auth,
                       metrics=ctx.metrics, workers=server.auth_workers, clock=clock,
                       body_timeout=server.body_timeout,
                       user_limits={u.name: u.rate_limit_per_minute for u in server.users
                                    if u.rate_limit_per_minute is not None}),
            Middleware(ews.CaseInsensitivePath, paths=(ews.PATH, *autodiscover.PATHS)),
            Middleware(JSONOnlyAPIMiddleware),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _crash},
    )
    app.state.ctx = ctx
    return app


def check_servable(config: Config) -> None:
    """Refuse a server nobody could use (``calmesh serve``, before it binds its port): with no
    users every door but anonymous free/busy answers 401."""
    if not config.server.users and not config.server.anonymous_freebusy:
        raise ConfigError(
            "no server users are configured, so every request would be refused: add one to the "
            "configuration file, e.g.\n  [[server.users]]\n  name = \"alice\"\n"
            "  password_hash = \"...\"   # printed by `calmesh hash-password`")


def serve(config: Config, host: str | None = None, port: int | None = None, *,
          sock: socket.socket | None = None) -> None:
    """Run the hub server until interrupted (Ctrl-C). ``calmesh serve`` calls
    :func:`check_servable` first."""
    host = host or config.server.host
    port = config.server.port if port is None else port
    sock = sock or bind(host, port)
    with Hub(config) as hub, _watch_sync(hub):
        app = create_app(hub)
        proxies = config.server.trusted_proxies
        uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", proxy_headers=bool(proxies),
                                           forwarded_allow_ips=proxies or None))
        with _sigterm_returns():
            uv.run(sockets=[sock])


@contextlib.contextmanager
def _watch_sync(hub: Hub) -> Iterator[None]:
    """The sync watch loop (``server.watch_sync``) runs beside the server, in a background thread
    whose errors are logged, and stops with it; with ``[hub] queue`` it only enqueues the runs."""
    config = hub.config
    if not config.server.watch_sync:
        yield
        return
    from calmesh.services.queue import loop_runner
    from calmesh.services.scheduler import SyncScheduler, owed_deliveries

    scheduler = SyncScheduler(config.sync.groups, loop_runner(hub), chores={"owed deliveries": owed_deliveries(hub)})
    scheduler.start()
    try:
        yield
    finally:
        scheduler.stop()


@contextlib.contextmanager
def _sigterm_returns() -> Iterator[None]:
    """uvicorn shuts down gracefully on SIGTERM, then re-raises the signal, which would kill the
    process before the callers' cleanup (the demo's platform servers, the hub's connectors) runs.
    While uvicorn runs, a re-raised SIGTERM does nothing: ``run`` returns and cleanup proceeds."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_demo(config: Config, port: int, user: str, password: str, console: Console) -> None:
    """``calmesh demo``'s last step: serve the demo hub on 127.0.0.1 and show how to ask it."""
    host = "127.0.0.1"
    try:
        sock = bind(host, port)
    except OSError as exc:
        console.print(Text.assemble(("cannot start the hub server:", "bold red"), f" {exc}"), highlight=False)
        return
    base = f"http://{host}:{sock.getsockname()[1]}"
    if config.server.public_url is None:  # the demo's one address is known: Autodiscover works too
        config = config.model_copy(update={"server": config.server.model_copy(update={"public_url": base})})
    first = config.people[0].email if config.people else "someone@example.org"
    emails = ", ".join(f'"{p.email}"' for p in config.people[:3])
    zone = zoneinfo(config.hub.timezone)  # the seeded week is counted from today there (demo_today)
    monday = datetime.combine(demo_monday(datetime.now(zone).date()), datetime.min.time(), tzinfo=zone)
    start, end = monday.isoformat(), (monday + timedelta(days=5)).isoformat()  # the seeded week
    console.print(f"calmesh demo ready at {base} (user {user}, password {password})", markup=False, highlight=False,
                  soft_wrap=True)
    console.print(
        f"Open {base}/ in a browser for the availability grid, find-a-time and booking.\n"
        "Try:\n"
        f"  curl -u {user}:{password} {base}/api/v1/people\n"
        f"  curl -u {user}:{password} -H 'Content-Type: application/json' {base}/api/v1/freebusy \\\n"
        f"       -d '{{\"attendees\": [{emails}], \"start\": \"{start}\", \"end\": \"{end}\", \"interval\": 60}}'\n"
        f"  curl -H 'Authorization: Bearer {password}' {base}/api/v1/people\n"
        f"  VFREEBUSY:  curl -u {user}:{password} {base}/freebusy/{first}.vfb\n"
        f"  busy feed:  curl -u {user}:{password} {base}/feeds/{first}.ics\n"
        f"  EWS availability endpoint (Exchange address space / exchangelib): {base}/EWS/Exchange.asmx\n"
        f"  CalDAV scheduling (RFC 6638): {base}/.well-known/caldav\n"
        f"  OpenAPI: {base}/api/v1/openapi.json   metrics: {base}/metrics\n"
        "Press Ctrl-C to stop.",
        markup=False, highlight=False, soft_wrap=True,
    )
    try:
        serve(config, host, port, sock=sock)
    except KeyboardInterrupt:
        pass
