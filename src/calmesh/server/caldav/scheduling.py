"""Free/busy lookups POSTed to a schedule outbox (RFC 6638 appendix B's busy-time request).

A client POSTs a ``VFREEBUSY`` ``METHOD:REQUEST`` naming attendees; the answer is a
``CALDAV:schedule-response`` with a ``VFREEBUSY`` ``METHOD:REPLY`` per attendee, drawn from every
platform calmesh knows through the same query as every other door.

Refusals (a ``DAV:error`` naming the precondition):
- 415 ``supported-calendar-data``: not ``text/calendar``;
- 400 ``valid-calendar-data``: not iCalendar, or a DTSTART/DTEND whose TZID is neither a known
  zone nor defined by a VTIMEZONE in the request (read in another zone it would answer for the
  wrong hours);
- 400 ``valid-scheduling-message``: not one VFREEBUSY REQUEST with ORGANIZER, ATTENDEEs and a
  date-time window;
- 403 ``organizer-allowed``: the ORGANIZER is not the signed-in user (RFC 6638: the outbox's
  owner only); 403 ``originator-allowed``: the same for the ``Originator`` header that Apple
  Calendar and Thunderbird also send (from the scheduling drafts before RFC 6638).

Per recipient: ``2.0;Success``; ``3.7;Invalid calendar user`` for someone not in the directory;
``5.1;Service unavailable`` (with what is known) when a platform did not answer.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

import icalendar
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from calmesh.ical import read_scheduling_message, vfreebusy, zoned_time
from calmesh.model import Window, normalize_email
from calmesh.server.auth import User
from calmesh.server.caldav.principals import Principal
from calmesh.server.caldav.webdav import c, dav_error, href, xml_response
from calmesh.server.context import MAX_ATTENDEES, BadRequest, ServerContext
from calmesh.services.answer_json import error_text


class Refused(BadRequest):
    """A POST refused with a CalDAV precondition (``condition`` is its qualified name)."""

    def __init__(self, condition: str, detail: str, status: int = 400) -> None:
        super().__init__(detail, status)
        self.condition = condition


@dataclass(frozen=True, slots=True)
class BusyRequest:
    organizer: str
    attendees: list[str]
    uid: str | None
    window: Window


def _message(body: bytes) -> icalendar.cal.Component:
    try:
        cal = read_scheduling_message(body)
    except (ValueError, IndexError, KeyError) as exc:
        raise Refused(c("valid-calendar-data"), f"the body is not iCalendar: {exc}") from None
    if str(cal.get("METHOD", "")).upper() != "REQUEST":
        raise Refused(c("valid-scheduling-message"), "a free/busy request has METHOD:REQUEST")
    requests = cal.walk("VFREEBUSY")
    if len(requests) != 1:
        raise Refused(c("valid-scheduling-message"), "a free/busy request has exactly one VFREEBUSY")
    fb: icalendar.cal.Component = requests[0]
    return fb


def _time(ctx: ServerContext, fb: icalendar.cal.Component, name: str) -> datetime:
    if fb.get(name) is None:
        raise Refused(c("valid-scheduling-message"), f"the VFREEBUSY has no {name}")
    try:
        value = zoned_time(fb, name)
    except ValueError as exc:
        raise Refused(c("valid-calendar-data"), str(exc)) from None
    if not isinstance(value, datetime):
        raise Refused(c("valid-scheduling-message"), f"{name} must be a date-time")
    try:
        return ctx.parse_time(value.isoformat(), name)  # a floating time: the hub's zone
    except BadRequest as exc:
        raise Refused(c("valid-scheduling-message"), exc.detail) from None


def parse_request(ctx: ServerContext, principal: Principal, body: bytes, originator: str | None) -> BusyRequest:
    """The lookup a POST asks for, or :class:`Refused` saying why not."""
    fb = _message(body)
    organizer = str(fb.get("ORGANIZER", "")).strip()
    if not organizer:
        raise Refused(c("valid-scheduling-message"), "the VFREEBUSY has no ORGANIZER")
    if not principal.owns(organizer):
        raise Refused(c("organizer-allowed"), f"ORGANIZER {organizer[:80]!r} is not one of your addresses "
                      f"({', '.join(principal.addresses)})", 403)
    if originator is not None and not principal.owns(originator):
        raise Refused(c("originator-allowed"), f"Originator {originator[:80]!r} is not one of your addresses "
                      f"({', '.join(principal.addresses)})", 403)
    attendees = fb.get("ATTENDEE")
    attendees = attendees if isinstance(attendees, list) else ([attendees] if attendees is not None else [])
    if not attendees:
        raise Refused(c("valid-scheduling-message"), "the VFREEBUSY names no ATTENDEE")
    if len(attendees) > MAX_ATTENDEES:
        raise Refused(c("valid-scheduling-message"), f"at most {MAX_ATTENDEES} attendees per request")
    start, end = _time(ctx, fb, "DTSTART"), _time(ctx, fb, "DTEND")
    try:
        window = ctx.window(start, end)
    except BadRequest as exc:
        raise Refused(c("valid-scheduling-message"), exc.detail) from None
    return BusyRequest(organizer, [str(a) for a in attendees], str(fb.get("UID", "")) or None, window)


async def outbox_post(ctx: ServerContext, user: User, principal: Principal, body: bytes,
                      originator: str | None) -> Response:
    try:
        request = parse_request(ctx, principal, body, originator)
    except Refused as exc:
        return dav_error(exc.condition, exc.detail, exc.status)
    window = request.window
    emails = [normalize_email(a) for a in request.attendees]
    known = [e for e in dict.fromkeys(emails) if e in ctx.hub.directory]
    people = {}
    if known:
        answer = await run_in_threadpool(ctx.freebusy, user, known, window, details=False)
        people = {p.email: p for p in answer.people}
    organizer = request.organizer[7:] if request.organizer.lower().startswith("mailto:") else None
    root = ET.Element(c("schedule-response"))
    for attendee, email in zip(request.attendees, emails, strict=True):
        response = ET.SubElement(root, c("response"))
        href(ET.SubElement(response, c("recipient")), attendee)
        person = people.get(email)
        if person is None:
            ET.SubElement(response, c("request-status")).text = "3.7;Invalid calendar user"
            continue
        reply = vfreebusy(person.busy, window, attendee=email, organizer=organizer, uid=request.uid,
                          method="REPLY")
        status = "2.0;Success"
        if person.errors:
            why = error_text(person) or ""
            reply.walk("VFREEBUSY")[0].add("COMMENT", f"Data missing: {why}")
            status = f"5.1;Service unavailable;{why.replace(chr(10), ' ')}"
        ET.SubElement(response, c("request-status")).text = status
        ET.SubElement(response, c("calendar-data")).text = reply.to_ical().decode()
    return xml_response(root, 200)

