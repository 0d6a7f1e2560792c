"""The CalDAV door: a principal per user and free/busy lookups through its schedule outbox.

CalDAV clients (Thunderbird, Evolution, Apple Calendar, DAVx5, the python ``caldav`` library)
look up a busy attendee by POSTing a ``VFREEBUSY`` request to their principal's schedule outbox
(RFC 6638). This door gives every configured user such a principal, discovered the standard way
(``/.well-known/caldav`` -> ``current-user-principal`` -> ``calendar-home-set`` /
``schedule-outbox-URL``), with the calendar collection those clients need before they look for
the outbox (:mod:`.principals`), and answers each attendee from every platform calmesh knows
(:mod:`.scheduling`). Layers by protocol: :mod:`.webdav` (RFC 4918) knows nothing of calendars.

Methods: OPTIONS (no sign-in, as clients probe with it), PROPFIND (Depth 0 or 1; ``infinity`` is
refused with ``DAV:propfind-finite-depth``), REPORT on the calendar and inbox (always empty), POST
to the outbox. Calendars are read-only: everything else is 405.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from calmesh.ical import vfreebusy
from calmesh.server.auth import CHALLENGES, User
from calmesh.server.caldav.principals import ROOT, Principal
from calmesh.server.caldav.scheduling import outbox_post
from calmesh.server.caldav.webdav import (
    PropfindRequest,
    c,
    d,
    dav_error,
    multistatus,
    parse_propfind,
    xml_response,
)
from calmesh.server.context import BadRequest, ServerContext
from calmesh.server.ews_soap import SoapError, parse_xml

DAV_HEADER = "1, 2, 3, access-control, calendar-access, calendar-schedule"
"""No ``calendar-auto-schedule``: calmesh writes no invitations from PUTs (it takes none)."""
METHODS = "OPTIONS, PROPFIND, REPORT, POST"
_EMPTY_REPORTS = (c("calendar-query"), c("calendar-multiget"))


def principal_of(ctx: ServerContext, user: User) -> Principal:
    """``user``'s principal, with their address from ``[[server.users]]`` (``email``, else the
    name when it is an email address)."""
    configured = next((u for u in ctx.config.server.users if u.name == user.name), None)
    email = configured.email if configured is not None else None
    if email is None and "@" in user.name:
        email = user.name.strip().lower()
    return Principal(user, email)


def _challenge() -> Response:
    response = Response(status_code=401)
    for value in CHALLENGES:
        response.headers.append("WWW-Authenticate", value)
    return response


def _propfind(principal: Principal, path: str, depth: str, request: PropfindRequest) -> Response:
    if principal.kind(path) is None:
        return Response(status_code=404)
    if depth not in ("0", "1"):
        return dav_error(d("propfind-finite-depth"), "Depth: infinity is not served; ask with Depth 0 or 1", 403)
    url = principal.href(path)
    urls = [url, *(principal.children(url) if depth == "1" else [])]
    return multistatus([(u, principal.properties(u)) for u in urls], request)


def _report(ctx: ServerContext, principal: Principal, path: str, body: bytes) -> Response:
    """REPORTs on the (empty) calendar and inbox: queries find nothing, and a free-busy-query on
    the calendar answers a VFREEBUSY without busy time (its own events: none)."""
    kind = principal.kind(path)
    if kind is None:
        return Response(status_code=404)
    try:
        root = parse_xml(body)
    except SoapError as exc:
        return dav_error(d("supported-report"), f"REPORT body: {exc}")
    if kind in ("calendar", "inbox") and root.tag in _EMPTY_REPORTS:
        return xml_response(ET.Element(d("multistatus")))
    if kind == "calendar" and root.tag == c("free-busy-query"):
        return _own_freebusy(ctx, root)
    return dav_error(d("supported-report"), f"{root.tag} is not a report this resource answers", 403)


def _own_freebusy(ctx: ServerContext, query: ET.Element) -> Response:
    span = query.find(c("time-range"))
    try:
        if span is None:
            raise BadRequest("a free-busy-query has a time-range")
        window = ctx.window(ctx.parse_time(_ical_time(span.get("start", "")), "start"),
                            ctx.parse_time(_ical_time(span.get("end", "")), "end"))
    except BadRequest as exc:
        return dav_error(c("valid-filter"), exc.detail)
    return Response(vfreebusy([], window).to_ical(), media_type="text/calendar")


def _ical_time(value: str) -> str:
    """``20261123T000000Z`` (the time-range form) as ISO 8601."""
    value = value.strip()
    if len(value) == 16 and value.endswith("Z"):
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}T{value[9:11]}:{value[11:13]}:{value[13:15]}+00:00"
    return value


def routes(ctx: ServerContext) -> list[BaseRoute]:
    async def well_known(_request: Request) -> Response:
        return RedirectResponse(ROOT, status_code=301)

    async def dav(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(headers={"DAV": DAV_HEADER, "Allow": METHODS})
        user = ctx.user(request)
        if user is None:
            return _challenge()
        principal = principal_of(ctx, user)
        path = request.url.path
        if request.method == "PROPFIND":
            try:
                asked = parse_propfind(await request.body())
            except BadRequest as exc:
                return dav_error(d("propfind"), exc.detail)
            return _propfind(principal, path, request.headers.get("depth", "0").strip().lower(), asked)
        if request.method == "REPORT":
            return _report(ctx, principal, path, await request.body())
        if principal.kind(path) != "outbox":
            return Response(status_code=405, headers={"Allow": "OPTIONS, PROPFIND, REPORT"})
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "text/calendar":
            return dav_error(c("supported-calendar-data"), "POST to the outbox takes text/calendar", 415)
        return await outbox_post(ctx, user, principal, await request.body(), request.headers.get("originator"))

    methods = ["OPTIONS", "PROPFIND", "REPORT", "POST", "GET", "PUT", "DELETE", "PROPPATCH", "MKCALENDAR", "MKCOL"]
    return [
        Route("/.well-known/caldav", well_known, methods=["GET", "PROPFIND", "OPTIONS"]),
        Route(ROOT.rstrip("/"), dav, methods=methods),
        Route(ROOT + "{rest:path}", dav, methods=methods),
    ]
