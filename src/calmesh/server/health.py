"""``/healthz`` and ``/metrics``: up or degraded for anyone, details for monitoring only.

A load balancer or an uptime check needs one word without a password: ``up``, or ``degraded``
when a platform failed the last time calmesh asked it. Anything more (the people count, platform
names, which one fails and why, request counters) maps the organisation and its network, so it is
shown only to the users named in ``server.monitoring_users`` and to clients from
``server.monitoring_addresses`` (a Prometheus scraper); ``/metrics`` answers 404 to anyone else,
as if it were not there.
"""

from __future__ import annotations

import ipaddress

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from calmesh.config import ServerConfig
from calmesh.server.context import ServerContext, problem


class MonitoringAccess:
    """Who may read the details: ``server.monitoring_users`` and ``server.monitoring_addresses``."""

    def __init__(self, server: ServerConfig) -> None:
        self.users = frozenset(server.monitoring_users)
        self.networks = [ipaddress.ip_network(a, strict=False) for a in server.monitoring_addresses]

    def allows(self, ctx: ServerContext, request: Request) -> bool:
        user = ctx.user(request)
        if user is not None and user.name in self.users:
            return True
        host = request.client.host if request.client else None
        try:
            address = ipaddress.ip_address(host) if host else None
        except ValueError:
            return False
        return address is not None and any(address in network for network in self.networks)


def routes(ctx: ServerContext) -> list[BaseRoute]:
    access = MonitoringAccess(ctx.config.server)
    health = ctx.health

    async def healthz(request: Request) -> Response:
        status = "degraded" if health.degraded else "up"
        if not access.allows(ctx, request):
            return JSONResponse({"status": status})
        checks = health.checks()
        return JSONResponse({
            "status": status, "people": len(ctx.hub.directory), "owed_deliveries": _owed(ctx),
            "platforms": {name: {"status": "unchecked"} if name not in checks else
                          {"status": "failed" if checks[name].error else "up",
                           "checked_at": checks[name].at.isoformat(timespec="seconds"),
                           "error": checks[name].error}
                          for name in ctx.hub.platforms}})

    async def metrics(request: Request) -> Response:
        if not access.allows(ctx, request):
            return problem(404, "Not Found", "Not Found")  # as for a path that does not exist
        return ctx.metrics.endpoint(request)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]


def _owed(ctx: ServerContext) -> int | None:
    """Meeting copies and mails still owed to calendars or mail servers that did not answer
    (``calmesh deliver``), None when the state store cannot be read: a number to alert on when
    it stays above zero."""
    from calmesh.store.db import StoreError

    try:
        return ctx.hub.identities().owed_count()
    except StoreError:
        return None
