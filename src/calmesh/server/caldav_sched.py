"""The CalDAV scheduling door (RFC 6638 free/busy): principals, a schedule outbox, and the POST.

CalDAV clients (Apple Calendar, Thunderbird, DAVx5, the python ``caldav`` library) look up a busy
attendee by POSTing a ``VFREEBUSY`` ``METHOD:REQUEST`` to their principal's schedule outbox. This
door gives every authenticated calmesh user such a principal, discovered the standard way
(``/.well-known/caldav`` -> ``current-user-principal`` -> ``schedule-outbox-URL``), and answers
each recipient with a ``VFREEBUSY`` ``METHOD:REPLY`` drawn from every platform calmesh knows.

It is a scheduling endpoint only: the calendar home is an empty collection (calendars stay on
their platforms). Request statuses: ``2.0;Success``; ``3.7;Invalid calendar user`` for someone not
in the directory; ``5.1;Service unavailable;<why>`` (with what is known) when a platform failed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from urllib.parse import quote, unquote

import icalendar
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from calmesh.ical import vfreebusy
from calmesh.model import normalize_email, shown
from calmesh.server.auth import CHALLENGES, User
from calmesh.server.context import MAX_ATTENDEES, BadRequest, ServerContext
from calmesh.server.ews_soap import SoapError, parse_xml

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
ROOT = "/dav/"
ET.register_namespace("D", DAV)
ET.register_namespace("C", CALDAV)
_XML = "application/xml; charset=utf-8"
_DAV_HEADER = "1, 3, access-control, calendar-access, calendar-schedule, calendar-auto-schedule"
_METHODS = "OPTIONS, PROPFIND, POST"


def d(name: str) -> str:
    return f"{{{DAV}}}{name}"


def c(name: str) -> str:
    return f"{{{CALDAV}}}{name}"


def _xml(root: ET.Element, status: int = 207) -> Response:
    return Response(ET.tostring(root, encoding="utf-8", xml_declaration=True), status_code=status, media_type=_XML)


def _dav_error(condition: str, detail: str, status: int = 400) -> Response:
    """A ``DAV:error`` body naming the failed precondition (RFC 4918 16), with a readable reason."""
    root = ET.Element(d("error"))
    ET.SubElement(root, c(condition))
    ET.SubElement(root, d("responsedescription")).text = detail
    return _xml(root, status)


def _href(parent: ET.Element, url: str) -> None:
    ET.SubElement(parent, d("href")).text = url


class Principal:
    """The URLs of one user's scheduling resources."""

    def __init__(self, user: User) -> None:
        self.user = user
        name = quote(user.name, safe="")
        self.url = f"{ROOT}principals/{name}/"
        self.outbox = f"{self.url}outbox/"
        self.inbox = f"{self.url}inbox/"
        self.home = f"{ROOT}calendars/{name}/"

    @property
    def addresses(self) -> list[str]:
        """``calendar-user-address-set``: the user's email when the name is one, and the principal URL."""
        out = [f"mailto:{normalize_email(self.user.name)}"] if "@" in self.user.name else []
        return [*out, self.url]

    def resources(self) -> dict[str, str]:
        """path -> kind, for every resource this user can see."""
        return {ROOT: "root", f"{ROOT}principals/": "principals", self.url: "principal", self.outbox: "outbox",
                self.inbox: "inbox", f"{ROOT}calendars/": "calendars", self.home: "home"}

    def children(self, path: str) -> list[str]:
        tree = {ROOT: [f"{ROOT}principals/", f"{ROOT}calendars/"], f"{ROOT}principals/": [self.url],
                self.url: [self.outbox, self.inbox], f"{ROOT}calendars/": [self.home]}
        return tree.get(path, [])

    def value(self, kind: str, prop: str, parent: ET.Element) -> bool:
        """Append ``prop``'s value for a resource of ``kind`` to ``parent``; False when it has none."""
        el = ET.SubElement(parent, prop)
        if prop == d("resourcetype"):
            ET.SubElement(el, d("collection"))
            extra = {"principal": d("principal"), "outbox": c("schedule-outbox"), "inbox": c("schedule-inbox"),
                     "home": None}.get(kind)
            if extra:
                ET.SubElement(el, extra)
        elif prop == d("displayname"):
            el.text = {"principal": self.user.name, "outbox": "Outbox", "inbox": "Inbox"}.get(kind, "calmesh")
        elif prop == d("current-user-principal"):
            _href(el, self.url)
        elif prop in (d("principal-URL"), d("owner")) and kind != "root":
            _href(el, self.url)
        elif prop == c("calendar-home-set") and kind == "principal":
            _href(el, self.home)
        elif prop == c("calendar-user-address-set") and kind == "principal":
            for address in self.addresses:
                _href(el, address)
        elif prop == c("schedule-outbox-URL") and kind == "principal":
            _href(el, self.outbox)
        elif prop == c("schedule-inbox-URL") and kind == "principal":
            _href(el, self.inbox)
        elif prop == c("calendar-user-type") and kind == "principal":
            el.text = "INDIVIDUAL"
        elif prop == d("current-user-privilege-set"):
            privileges = [d("read")] + ([c("schedule-send"), c("schedule-send-freebusy")] if kind == "outbox" else [])
            for privilege in privileges:
                ET.SubElement(ET.SubElement(el, d("privilege")), privilege)
        else:
            parent.remove(el)
            return False
        return True


ALL_PROPS = (d("resourcetype"), d("displayname"), d("current-user-principal"), d("principal-URL"), d("owner"),
             c("calendar-home-set"), c("calendar-user-address-set"), c("schedule-outbox-URL"),
             c("schedule-inbox-URL"), c("calendar-user-type"), d("current-user-privilege-set"))


def _requested_props(body: bytes) -> list[str]:
    """The properties a PROPFIND asks for (all of them for an empty body or ``allprop``)."""
    if not body.strip():
        return list(ALL_PROPS)
    try:
        root = parse_xml(body)
    except SoapError as exc:
        raise BadRequest(f"PROPFIND body: {exc}") from None
    if root.tag != d("propfind"):
        raise BadRequest("PROPFIND body must be a DAV:propfind element")
    prop = root.find(d("prop"))
    if prop is None:
        return list(ALL_PROPS)
    return [child.tag for child in prop]


def _propfind(principal: Principal, path: str, depth: str, props: list[str]) -> Response:
    resources = principal.resources()
    kind = resources.get(path)
    if kind is None:
        return Response(status_code=404)
    paths = [path, *(principal.children(path) if depth == "1" else [])]
    multistatus = ET.Element(d("multistatus"))
    for target in paths:
        response = ET.SubElement(multistatus, d("response"))
        _href(response, target)
        found, missing = ET.Element(d("prop")), ET.Element(d("prop"))
        for prop in props:
            if not principal.value(resources[target], prop, found):
                ET.SubElement(missing, prop)
        for container, status in ((found, "HTTP/1.1 200 OK"), (missing, "HTTP/1.1 404 Not Found")):
            if len(container):
                propstat = ET.SubElement(response, d("propstat"))
                propstat.append(container)
                ET.SubElement(propstat, d("status")).text = status
    return _xml(multistatus)


def _parse_request(ctx: ServerContext, body: bytes) -> tuple[icalendar.cal.Component, list[str], datetime, datetime]:
    try:
        cal = icalendar.Calendar.from_ical(body)
    except (ValueError, IndexError, KeyError) as exc:
        raise BadRequest(f"the body is not iCalendar: {exc}") from None
    if str(cal.get("METHOD", "")).upper() != "REQUEST":
        raise BadRequest("a free/busy request has METHOD:REQUEST")
    requests = cal.walk("VFREEBUSY")
    if len(requests) != 1:
        raise BadRequest("a free/busy request has exactly one VFREEBUSY")
    fb = requests[0]
    attendees = fb.get("ATTENDEE")
    attendees = attendees if isinstance(attendees, list) else ([attendees] if attendees is not None else [])
    if not attendees:
        raise BadRequest("the VFREEBUSY names no ATTENDEE")
    if len(attendees) > MAX_ATTENDEES:
        raise BadRequest(f"at most {MAX_ATTENDEES} attendees per request")
    times = []
    for name in ("DTSTART", "DTEND"):
        if fb.get(name) is None:
            raise BadRequest(f"the VFREEBUSY has no {name}")
        try:
            value = fb.decoded(name)
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"bad {name}: {exc}") from None
        if not isinstance(value, datetime):
            raise BadRequest(f"{name} must be a date-time")
        times.append(ctx.parse_time(value.isoformat(), name))
    return fb, [str(a) for a in attendees], times[0], times[1]


def routes(ctx: ServerContext) -> list[BaseRoute]:
    def challenge() -> Response:
        response = Response(status_code=401)
        for value in CHALLENGES:
            response.headers.append("WWW-Authenticate", value)
        return response

    async def well_known(_request: Request) -> Response:
        return RedirectResponse(ROOT, status_code=301)

    async def dav(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(headers={"DAV": _DAV_HEADER, "Allow": _METHODS})
        user = ctx.user(request)
        if user is None:
            return challenge()
        principal = Principal(user)
        path = request.url.path if request.url.path.endswith("/") else request.url.path + "/"
        path = quote(unquote(path), safe="/@")
        if request.method == "PROPFIND":
            depth = request.headers.get("depth", "0").strip()
            try:
                props = _requested_props(await request.body())
            except BadRequest as exc:
                return _dav_error("valid-propfind", exc.detail)
            return _propfind(principal, path, "1" if depth in ("1", "infinity") else "0", props)
        if path != principal.outbox:
            return Response(status_code=405, headers={"Allow": "OPTIONS, PROPFIND"})
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "text/calendar":
            return _dav_error("supported-calendar-data", "POST to the outbox takes text/calendar", 415)
        return await outbox_post(user, await request.body())

    async def outbox_post(user: User, body: bytes) -> Response:
        try:
            fb, attendees, start, end = _parse_request(ctx, body)
            window = ctx.window(start, end)
        except BadRequest as exc:
            return _dav_error("valid-scheduling-message", exc.detail)
        emails = [normalize_email(a) for a in attendees]
        known = [e for e in dict.fromkeys(emails) if e in ctx.hub.directory]
        people = {}
        if known:
            answer = await run_in_threadpool(ctx.freebusy, user, known, window, details=False)
            people = {p.email: p for p in answer.people}
        organizer = str(fb.get("ORGANIZER", "")) or None
        uid = str(fb.get("UID", "")) or None
        root = ET.Element(c("schedule-response"))
        for attendee, email in zip(attendees, emails, strict=True):
            response = ET.SubElement(root, c("response"))
            _href(ET.SubElement(response, c("recipient")), attendee)
            person = people.get(email)
            if person is None:
                ET.SubElement(response, c("request-status")).text = "3.7;Invalid calendar user"
                continue
            reply = vfreebusy(person.busy, window, attendee=email, organizer=organizer, uid=uid, method="REPLY")
            status = "2.0;Success"
            if person.errors:
                why = "; ".join(shown(person.errors, details=False))
                reply.walk("VFREEBUSY")[0].add("COMMENT", f"Data missing: {why}")
                status = f"5.1;Service unavailable;{why.replace(chr(10), ' ')}"
            ET.SubElement(response, c("request-status")).text = status
            ET.SubElement(response, c("calendar-data")).text = reply.to_ical().decode()
        return _xml(root, 200)

    methods = ["OPTIONS", "PROPFIND", "POST"]
    return [
        Route("/.well-known/caldav", well_known, methods=["GET", "PROPFIND", "OPTIONS"]),
        Route(ROOT.rstrip("/"), dav, methods=methods),
        Route(ROOT + "{rest:path}", dav, methods=methods),
    ]
