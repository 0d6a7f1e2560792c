"""The EWS availability door: ``POST /EWS/Exchange.asmx`` answering ``GetUserAvailability``.

This is what lets an Exchange organisation add calmesh as an availability address space, and
Outlook's Scheduling Assistant (or any EWS client) show people whose calendars live elsewhere.
Besides GetUserAvailability it answers what clients send before it: an unauthenticated request
gets a 401 with a Basic challenge; the login calls (``ConvertId``, ``GetFolder``, ``FindItem``,
``FindFolder``, ``SyncFolderItems``) are answered from an empty mailbox (ews_mailbox.py), as
Exchange answers them for an account that exposes free/busy only; ``GetServerTimeZones``
returns full definitions built from zoneinfo. Requests calmesh refuses as a whole get a SOAP
fault with HTTP 500 and the EWS ``ResponseCode`` Exchange would give (``ErrorSchemaValidation``,
``ErrorInvalidRequest``, ``ErrorInvalidTimeInterval``, ``ErrorTimeIntervalTooBig``,
``ErrorMailboxDataArrayTooBig``), so clients raise the matching error.

Answers follow Exchange: merged digits 0 free, 1 tentative, 2 busy, 3 OOF, 4 no data (highest
wins in an interval); CalendarEvent times are local to the zone the request describes, written
without an offset; an unknown mailbox gets its own ``ErrorMailRecipientNotFound`` while the
others are answered; where a person's platform failed, that time is NoData (4) and the reason is
in the message's ``MessageText``. Details (subject, location) appear only where the asker is granted
them, and never for private events.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, tzinfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from calmesh.core.freebusy import availability_view
from calmesh.model import BusyType, PersonFreeBusy, Window, WorkingHours, normalize_email
from calmesh.server.auth import CHALLENGES, User
from calmesh.server.context import MAX_ATTENDEES, BadRequest, ServerContext
from calmesh.server.ews_mailbox import Mailbox
from calmesh.server.ews_soap import (
    DEFAULT_API_VERSION,
    FAULT_STATUS,
    WEEKDAYS,
    Envelope,
    RuleZone,
    SoapError,
    availability_timezone,
    envelope,
    fault,
    local_text,
    m,
    parse_envelope,
    read_timezone,
    response_message,
    sub,
    t,
    timezone_definition,
    zone_rules,
)
from calmesh.services.answer_json import error_text
from calmesh.timezones import to_iana, to_windows, zoneinfo

PATH = "/EWS/Exchange.asmx"
_XML = "text/xml; charset=utf-8"
_BUSY_NAMES = {BusyType.FREE: "Free", BusyType.BUSY_TENTATIVE: "Tentative", BusyType.BUSY: "Busy",
               BusyType.BUSY_UNAVAILABLE: "OOF", BusyType.UNKNOWN: "NoData"}
_MAILBOX_CALLS = {"ConvertId": "convert_id", "GetFolder": "get_folder", "FindItem": "find_item",
                  "FindFolder": "find_folder", "SyncFolderItems": "sync_folder_items"}
"""The calls clients make while logging in, answered from calmesh's empty mailbox (ews_mailbox)."""
_VIEWS = {"None", "MergedOnly", "FreeBusy", "FreeBusyMerged", "Detailed", "DetailedMerged"}


class CaseInsensitivePath:
    """Routes Exchange paths (``/ews/exchange.asmx``, ``/Autodiscover/Autodiscover.xml``...) in any
    case to their door: Exchange paths are case-insensitive and clients spell them every way."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...]) -> None:
        self.app = app
        self.paths = {p.lower(): p for p in paths}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            canonical = self.paths.get(scope.get("path", "").lower())
            if canonical is not None:
                scope = {**scope, "path": canonical}
        await self.app(scope, receive, send)


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=_XML)


def challenge() -> Response:
    """401 with the Basic (and Bearer) challenges EWS clients look for before they log in."""
    response = _xml(b"", 401)
    for challenge in CHALLENGES:
        response.headers.append("WWW-Authenticate", challenge)
    return response


def _find(parent: ET.Element, name: str) -> ET.Element | None:
    """A child in either EWS namespace (clients disagree on m: vs t: for some containers)."""
    found = parent.find(m(name))
    return found if found is not None else parent.find(t(name))


def _api_version(env: Envelope) -> str:
    requested = env.header_child(t("RequestServerVersion"))
    version = requested.get("Version") if requested is not None else None
    return version if version and version.replace("_", "").isalnum() and len(version) < 40 else DEFAULT_API_VERSION


# ------------------------------------------------------------------------- GetUserAvailability
def _window(ctx: ServerContext, options: ET.Element, zone: tzinfo) -> Window:
    tw = options.find(t("TimeWindow"))
    if tw is None:
        raise SoapError("FreeBusyViewOptions has no TimeWindow")

    def read(tag: str) -> datetime:
        text = (tw.findtext(t(tag)) or "").strip()
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise SoapError(f"TimeWindow {tag} {text[:40]!r} is not a date-time") from None
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)

    start, end = read("StartTime"), read("EndTime")
    try:
        return ctx.window(ctx.parse_time(start.isoformat(), "StartTime"), ctx.parse_time(end.isoformat(), "EndTime"))
    except BadRequest as exc:  # the codes Exchange gives, from which exchangelib picks its error class
        code = ("ErrorInvalidTimeInterval" if end <= start
                else "ErrorTimeIntervalTooBig" if end - start > timedelta(days=ctx.config.server.max_window_days)
                else "ErrorInvalidRequest")
        raise SoapError(exc.detail, code) from None


def _mailboxes(request: ET.Element) -> list[str]:
    array = _find(request, "MailboxDataArray")
    if array is None:
        raise SoapError("GetUserAvailabilityRequest has no MailboxDataArray")
    out = []
    for data in array.findall(t("MailboxData")):
        address = (data.findtext(f"{t('Email')}/{t('Address')}") or "").strip()
        if not address:
            raise SoapError("a MailboxData has no Email/Address")
        out.append(address)
    if not out:
        raise SoapError("MailboxDataArray is empty")
    if len(out) > MAX_ATTENDEES:
        raise SoapError(f"at most {MAX_ATTENDEES} mailboxes per request", "ErrorMailboxDataArrayTooBig")
    return out


def _working_hours(view: ET.Element, hours: WorkingHours, year: int) -> None:
    el = sub(view, t("WorkingHours"))
    availability_timezone(el, zone_rules(hours.zone, year))
    periods = sub(el, t("WorkingPeriodArray"))
    for period in hours.periods:
        wp = sub(periods, t("WorkingPeriod"))
        sub(wp, t("DayOfWeek"), " ".join(WEEKDAYS[d] for d in sorted(period.days)))
        sub(wp, t("StartTimeInMinutes"), str(period.start.hour * 60 + period.start.minute))
        sub(wp, t("EndTimeInMinutes"), str(period.end.hour * 60 + period.end.minute))


def _free_busy_view(parent: ET.Element, person: PersonFreeBusy, window: Window, zone: tzinfo,
                    interval: timedelta, requested: str, detailed: bool) -> None:
    view_type = requested
    if not detailed and requested.startswith("Detailed"):
        view_type = requested.replace("Detailed", "FreeBusy", 1)  # what Exchange does without permission
    view = sub(parent, m("FreeBusyView"))
    sub(view, t("FreeBusyViewType"), view_type)
    if view_type.endswith("Merged") or view_type == "MergedOnly":
        sub(view, t("MergedFreeBusy"), availability_view(person.busy, window, interval))
    if view_type != "MergedOnly":
        events = sub(view, t("CalendarEventArray"))
        for period in person.busy:
            event = sub(events, t("CalendarEvent"))
            sub(event, t("StartTime"), local_text(period.start, zone))
            sub(event, t("EndTime"), local_text(period.end, zone))
            sub(event, t("BusyType"), _BUSY_NAMES[period.type])
            if view_type.startswith("Detailed") and (period.summary or period.location):
                details = sub(event, t("CalendarEventDetails"))
                sub(details, t("Subject"), period.summary or "")
                sub(details, t("Location"), period.location or "")
                for flag in ("IsMeeting", "IsRecurring", "IsException", "IsReminderSet", "IsPrivate"):
                    sub(details, t(flag), "false")
    if person.working_hours is not None:
        _working_hours(view, person.working_hours, window.start.year)


def _request_zone(env: Envelope) -> tzinfo:
    """The zone the request's local times are in: its ``t:TimeZone`` (every shape clients send,
    see ``read_timezone``) or, as the EWS Managed API sends against Exchange 2010 and later,
    only a ``TimeZoneContext`` SOAP header naming a Windows zone."""
    tz_el = env.operation.find(t("TimeZone"))
    if tz_el is not None:
        return RuleZone(read_timezone(tz_el))
    context = env.header_child(t("TimeZoneContext"))
    definition = context.find(t("TimeZoneDefinition")) if context is not None else None
    if definition is None:
        raise SoapError("GetUserAvailabilityRequest has no TimeZone and no TimeZoneContext header")
    name = definition.get("Id", "")
    iana = to_iana(name)
    if iana is None:
        raise SoapError(f"TimeZoneContext names {name[:60]!r}, a zone calmesh does not know", "ErrorTimeZone")
    return zoneinfo(iana)


async def _get_user_availability(ctx: ServerContext, user: User, env: Envelope) -> ET.Element:
    request = env.operation
    zone = _request_zone(env)
    options = request.find(t("FreeBusyViewOptions"))
    if options is None:
        raise SoapError("calmesh answers free/busy only: FreeBusyViewOptions is required",
                        "ErrorInvalidRequest")
    window = _window(ctx, options, zone)
    requested = (options.findtext(t("RequestedView")) or "FreeBusy").strip()
    if requested not in _VIEWS:
        raise SoapError(f"unknown RequestedView {requested[:40]!r}")
    try:
        minutes = int((options.findtext(t("MergedFreeBusyIntervalInMinutes")) or "30").strip())
    except ValueError:
        raise SoapError("MergedFreeBusyIntervalInMinutes is not a number") from None
    if not 5 <= minutes <= 1440:
        raise SoapError("MergedFreeBusyIntervalInMinutes must be between 5 and 1440", "ErrorInvalidRequest")
    mailboxes = _mailboxes(request)
    known = [a for a in mailboxes if a in ctx.hub.directory]
    answers = {}
    if known:
        answer = await run_in_threadpool(ctx.freebusy, user, known, window)
        answers = {normalize_email(a): p for a, p in zip(known, answer.people, strict=True)}
    details = ctx.details_for(user)

    out = ET.Element(m("GetUserAvailabilityResponse"))
    array = sub(out, m("FreeBusyResponseArray"))
    for address in mailboxes:
        item = sub(array, m("FreeBusyResponse"))
        person = answers.get(normalize_email(address))
        if person is None:
            response_message(item, m("ResponseMessage"), "ErrorMailRecipientNotFound",
                             f"{address} is not in the calmesh directory")
            sub(sub(item, m("FreeBusyView")), t("FreeBusyViewType"), "None")
            continue
        # A failed platform is no reason to lose the rest: its time is NoData (digit 4) and the
        # reason travels in MessageText, which the schema allows on a successful message too.
        response_message(item, m("ResponseMessage"),
                         text=f"Data missing: {error_text(person, details(person.email))}" if person.errors else None)
        _free_busy_view(item, person, window, zone, timedelta(minutes=minutes), requested, details(person.email))
    return out


# ------------------------------------------------------------------------------ time zones
def _server_time_zones(ctx: ServerContext, request: ET.Element) -> ET.Element:
    ids_el = _find(request, "Ids")
    if ids_el is not None:
        wanted = [(el.text or "").strip() for el in ids_el]
    else:
        zones = {ctx.config.hub.timezone, *(p.timezone for p in ctx.hub.directory if p.timezone)}
        wanted = []
        for name in sorted(zones):
            try:
                wanted.append(to_windows(name))
            except KeyError:
                continue
    out = ET.Element(m("GetServerTimeZonesResponse"))
    msg = response_message(sub(out, m("ResponseMessages")), m("GetServerTimeZonesResponseMessage"))
    definitions = sub(msg, m("TimeZoneDefinitions"))
    year = datetime.now(UTC).year
    for zone_id in dict.fromkeys(wanted):
        iana = to_iana(zone_id)
        if iana is None:
            continue
        timezone_definition(definitions, zone_id, zone_id, zone_rules(zoneinfo(iana), year))
    return out


# ------------------------------------------------------------------------------------- the door
def routes(ctx: ServerContext) -> list[BaseRoute]:
    async def ews(request: Request) -> Response:
        user = ctx.user(request)
        if user is None:
            return challenge()
        version = DEFAULT_API_VERSION
        try:
            env = parse_envelope(await request.body())
            version = _api_version(env)
            mailbox = Mailbox(ctx, user)
            operation = env.operation
            if env.name == "GetUserAvailabilityRequest":
                out = await _get_user_availability(ctx, user, env)
            elif env.name == "GetServerTimeZones":
                out = _server_time_zones(ctx, operation)
            elif env.name in _MAILBOX_CALLS:
                out = getattr(mailbox, _MAILBOX_CALLS[env.name])(operation)
            else:
                raise SoapError(f"calmesh answers free/busy only: {env.name[:60]} is not served here",
                                "ErrorInvalidRequest")
        except SoapError as exc:
            return _xml(fault(exc.code, str(exc), version), FAULT_STATUS)
        except BadRequest as exc:
            return _xml(fault("ErrorInvalidRequest", str(exc), version), FAULT_STATUS)
        return _xml(envelope(out, version))

    async def probe(request: Request) -> Response:
        """GET on the endpoint (autodiscovery checks, browsers): challenge, or say what this is."""
        if ctx.user(request) is None:
            return challenge()
        return Response("calmesh EWS availability endpoint: POST SOAP requests here\n", media_type="text/plain")

    return [Route(PATH, ews, methods=["POST"]), Route(PATH, probe, methods=["GET"])]

