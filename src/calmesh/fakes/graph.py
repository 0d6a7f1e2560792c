"""A fake Microsoft Graph calendar service (v1.0 shapes), with an OAuth2 ``/token`` endpoint.

Follows Microsoft's published request/response shapes: ``event`` resources with
``@odata.etag``/``changeKey``, ``iCalUId``, ``type`` (singleInstance, seriesMaster, occurrence,
exception), ``patternedRecurrence``, ``cancelledOccurrences`` (``OID.{master}.{date}``) and
``exceptionOccurrences``; ``calendarView`` expanding series, ``/instances``, ``events/delta``
with ``@odata.deltaLink`` (unknown state: 410 ``SyncStateNotFound``), ``calendar/getSchedule``
(at most 20 schedules, windows under 62 days, ``ErrorMailRecipientNotFound`` per unknown
schedule), a moved occurrence reaching the day of an adjacent one refused (400
``ErrorOccurrenceCrossingBoundary``, as Exchange does), OData error bodies, ``@odata.nextLink`` paging, ``If-Match`` (412), and
``Prefer: outlook.timezone``.

Fault injection for tests: :meth:`GraphFake.fail_next` (429/503 with Retry-After),
:meth:`GraphFake.expire_tokens` (401 ``InvalidAuthenticationToken``) and
:meth:`GraphFake.invalidate_delta`.

Series are expanded with the same pattern<->RRULE mapping the connector uses
(``calmesh.connectors._exchange_common``), so recurrence semantics are tested by round trips
through both directions rather than by the fake alone.
"""

from __future__ import annotations

import copy
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calmesh.connectors import _exchange_common as ex
from calmesh.connectors._fitting import crosses
from calmesh.connectors.graph import event_to_graph, pattern_from_graph
from calmesh.fakes import FakeService
from calmesh.model import CalendarItem, Event, WorkingHours, as_utc
from calmesh.timezones import to_iana, to_windows


@dataclass
class _Stored:
    data: dict[str, Any]
    change_key: int = 1
    exceptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """occurrence id -> the exception's own event JSON."""
    cancelled: set[str] = field(default_factory=set)
    """Original start dates (series zone, ISO) of deleted occurrences."""


@dataclass
class _Calendar:
    id: str
    name: str
    default: bool
    events: dict[str, _Stored] = field(default_factory=dict)


@dataclass
class _Mailbox:
    email: str
    timezone: str
    working_hours: WorkingHours | None
    calendars: dict[str, _Calendar] = field(default_factory=dict)
    name: str = ""
    """The display name (the calendars' ``owner.name``); the address when not given."""

    @property
    def default(self) -> _Calendar:
        return next(c for c in self.calendars.values() if c.default)


class _Fault(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def response(self) -> Response:
        return JSONResponse({"error": {"code": self.code, "message": self.message,
                                       "innerError": {"request-id": secrets.token_hex(8),
                                                      "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")}}},
                            status_code=self.status, headers=self.headers)


def _fmt(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.0000000")


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_local(value: dict[str, str]) -> tuple[datetime, ZoneInfo]:
    zone = ex.zone_of(value.get("timeZone"))
    return datetime.fromisoformat(value["dateTime"].split(".")[0].rstrip("Z")), zone


def _parse_query_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class GraphFake(FakeService):
    """In-memory Graph tenant. Create, seed with :meth:`add_mailbox`/:meth:`add_event`, then
    :meth:`start` it (or mount :attr:`app` yourself)."""

    def __init__(self, client_id: str = "calmesh-test", client_secret: str = "test-secret",
                 token_lifetime: int = 3599, page_size: int = 10) -> None:
        super().__init__()
        self.client_id, self.client_secret = client_id, client_secret
        self.token_lifetime = token_lifetime
        self.page_size = page_size
        self.mailboxes: dict[str, _Mailbox] = {}
        self.schedule_calls: list[dict[str, Any]] = []
        self.invitations_sent: list[tuple[str, str, list[str]]] = []
        """(request, event id, attendees) of every meeting request, update or cancellation Exchange
        mails for a Graph write: creating, changing or deleting an event with attendees that the
        mailbox organises sends them (Graph v1.0 has no way to say "send none")."""
        self._tokens: dict[str, float] = {}
        self._faults: list[tuple[int, str]] = []
        self._changes: list[tuple[int, str, str, str, bool]] = []
        self._seq = 0
        self._delta_floor = 0

    # ----------------------------------------------------------------------------- seeding
    def add_mailbox(self, email: str, timezone: str = "UTC", working_hours: WorkingHours | None = None,
                    extra_calendars: tuple[str, ...] = (), name: str | None = None) -> None:
        mailbox = _Mailbox(email.lower(), timezone, working_hours, name=name or email)
        mailbox.calendars["AAMkCal-default"] = _Calendar("AAMkCal-default", "Calendar", True)
        for name in extra_calendars:
            cid = "AAMkCal-" + secrets.token_hex(6)
            mailbox.calendars[cid] = _Calendar(cid, name, False)
        self.mailboxes[mailbox.email] = mailbox

    def add_item(self, mailbox: str, item: CalendarItem) -> str:
        """Seed an item (single event, or series master with moved/cancelled occurrences) as if
        the user had created it in Outlook; the event keeps its UID. Returns the Graph event id."""
        box = self.mailboxes[mailbox.lower()]
        master = item.master or item.components[0]
        zone = ex.event_zone(master, box.timezone)
        with self._lock:
            stored = self._create(box, box.default, event_to_graph(master, box.timezone, "windows"), seeded=True)
            stored.data["iCalUId"] = item.uid
            if master.organizer is not None:  # an invitation received from someone else
                stored.data["organizer"] = {"emailAddress": {"address": master.organizer.email,
                                                             "name": master.organizer.name or master.organizer.email}}
                stored.data["isOrganizer"] = master.organizer.email == box.email
            for excluded in master.exdate:
                stored.cancelled.add(ex.local_naive(excluded, zone).date().isoformat())
            for override in item.overrides:
                assert override.recurrence_id is not None
                stamp = as_utc(override.recurrence_id, zone).strftime("%Y%m%dT%H%M%SZ")
                occurrence_id = f"{stored.data['id']}_OCC_{stamp}"
                current = self._occurrence(stored, occurrence_id)
                body = event_to_graph(override, box.timezone, "windows")
                body.pop("recurrence", None)
                current.update(body)
                current["type"] = "exception"
                stored.exceptions[occurrence_id] = current
            return str(stored.data["id"])

    # ----------------------------------------------------------------------------- faults
    def fail_next(self, count: int = 1, status: int = 429, retry_after: int = 1) -> None:
        """The next ``count`` Graph requests answer ``status`` with ``Retry-After``."""
        with self._lock:
            self._faults.extend([(status, str(retry_after))] * count)

    def expire_tokens(self) -> None:
        """Every issued access token is now expired (the next call gets 401)."""
        with self._lock:
            self._tokens = {t: 0.0 for t in self._tokens}

    def invalidate_delta(self) -> None:
        """Forget every sync state: older deltaLinks now answer 410."""
        with self._lock:
            self._delta_floor = self._seq + 1

    # ----------------------------------------------------------------------------- serving
    @property
    def graph_url(self) -> str:
        return self.base_url + "/v1.0"

    def _dispatch(self, request: Request, body: bytes) -> Response:
        try:
            return self._respond(request, body)
        except _Fault as fault:
            return fault.response()

    def _respond(self, request: Request, body: bytes) -> Response:
        path = request.url.path
        if path == "/token" and request.method == "POST":
            return self._token(dict(parse_qsl(body.decode())))
        if not path.startswith("/v1.0/users/"):
            raise _Fault(400, "BadRequest", f"Invalid request path {path}")
        if self._faults:
            status, retry_after = self._faults.pop(0)
            code = "TooManyRequests" if status == 429 else "ServiceUnavailable"
            raise _Fault(status, code, "Please retry after the time given in Retry-After.", {"Retry-After": retry_after})
        self._authorize(request)
        parts = path.split("/")[3:]
        mailbox = self.mailboxes.get(parts[0].lower())
        if mailbox is None:
            raise _Fault(404, "ErrorInvalidUser", f"The requested user '{parts[0]}' is invalid.")
        json_body = _load_json(body) if body else {}
        return self._route(request, mailbox, parts[1:], json_body)

    def _token(self, form: dict[str, str]) -> Response:
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return JSONResponse({"error": "invalid_client",
                                 "error_description": "AADSTS7000215: Invalid client secret provided."}, status_code=401)
        token = secrets.token_urlsafe(24)
        self._tokens[token] = time.monotonic() + self.token_lifetime
        return JSONResponse({"token_type": "Bearer", "expires_in": self.token_lifetime,
                             "ext_expires_in": self.token_lifetime, "access_token": token})

    def _authorize(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip()
        expires = self._tokens.get(token)
        if expires is None:
            raise _Fault(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.")
        if expires < time.monotonic():
            raise _Fault(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")

    def _route(self, request: Request, mailbox: _Mailbox, parts: list[str], body: dict[str, Any]) -> Response:
        method = request.method
        if parts == ["calendars"] and method == "GET":
            return self._page(request, [self._calendar_json(c, mailbox) for c in mailbox.calendars.values()],
                              context=f"users('{mailbox.email}')/calendars")
        if parts and parts[0] in ("calendar", "calendars"):
            if parts[0] == "calendar":
                calendar, rest = mailbox.default, parts[1:]
            else:
                if len(parts) < 2 or parts[1] not in mailbox.calendars:
                    raise _Fault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
                calendar, rest = mailbox.calendars[parts[1]], parts[2:]
            return self._calendar_route(request, mailbox, calendar, rest, body)
        if parts and parts[0] == "events" and len(parts) >= 2:
            return self._event_route(request, mailbox, parts[1], parts[2:], body)
        raise _Fault(400, "BadRequest", f"Unsupported segment {'/'.join(parts)}")

    def _calendar_route(self, request: Request, mailbox: _Mailbox, calendar: _Calendar, rest: list[str],
                        body: dict[str, Any]) -> Response:
        method = request.method
        if not rest and method == "GET":
            return JSONResponse(self._calendar_json(calendar, mailbox))
        if rest == ["calendarView"] and method == "GET":
            start, end = self._window(request)
            return self._page(request, [self._render(request, e) for e in self._expand(calendar, start, end)])
        if rest == ["events"] and method == "GET":
            return self._page(request, [self._render(request, s.data, s) for s in calendar.events.values()])
        if rest == ["events"] and method == "POST":
            stored = self._create(mailbox, calendar, body)
            return JSONResponse(self._render(request, stored.data, stored), status_code=201)
        if rest == ["events", "delta"] and method == "GET":
            return self._delta(request, mailbox, calendar)
        if rest == ["getSchedule"] and method == "POST":
            return self._get_schedule(body)
        raise _Fault(405, "MethodNotAllowed", f"{method} not allowed here")

    # ----------------------------------------------------------------------------- events
    def _create(self, mailbox: _Mailbox, calendar: _Calendar, body: dict[str, Any], seeded: bool = False) -> _Stored:
        if "start" not in body or "end" not in body:
            raise _Fault(400, "ErrorInvalidRequest", "An event needs start and end.")
        _check_recurrence(body.get("recurrence"))
        event_id = "AAMkAGI2" + secrets.token_urlsafe(18).replace("-", "A").replace("_", "B")
        now = _instant(datetime.now(UTC))
        data = {key: value for key, value in body.items() if key != "iCalUId"}
        # Outlook's default reminder, as Exchange sets it on events created without one
        data.setdefault("isReminderOn", True)
        data.setdefault("reminderMinutesBeforeStart", 15)
        data.update({
            "id": event_id,
            "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(24).upper(),
            "type": "seriesMaster" if body.get("recurrence") else "singleInstance",
            "createdDateTime": now, "lastModifiedDateTime": now,
            "originalStartTimeZone": body["start"].get("timeZone"),
            "originalEndTimeZone": body["end"].get("timeZone"),
            "organizer": {"emailAddress": {"address": mailbox.email, "name": mailbox.email}},
            "isOrganizer": True,
            "isCancelled": False,
        })
        stored = _Stored(data)
        if not seeded:
            self._mail("POST", stored)
        calendar.events[event_id] = stored
        self._log(mailbox, calendar, event_id)
        return stored

    def _log(self, mailbox: _Mailbox, calendar: _Calendar, event_id: str, removed: bool = False) -> None:
        self._seq += 1
        self._changes.append((self._seq, mailbox.email, calendar.id, event_id, removed))

    def _find(self, mailbox: _Mailbox, event_id: str) -> tuple[_Calendar, _Stored, str | None]:
        """(calendar, stored series or single, occurrence id or None)."""
        master_id, _, _ = event_id.partition("_OCC_")
        for calendar in mailbox.calendars.values():
            if master_id in calendar.events:
                return calendar, calendar.events[master_id], (event_id if "_OCC_" in event_id else None)
        raise _Fault(404, "ErrorItemNotFound", "The specified object was not found in the store.")

    def _event_route(self, request: Request, mailbox: _Mailbox, event_id: str, rest: list[str],
                     body: dict[str, Any]) -> Response:
        calendar, stored, occurrence = self._find(mailbox, event_id)
        method = request.method
        if rest == ["instances"] and method == "GET":
            start, end = self._window(request)
            found = [e for e in self._expand_one(stored, start, end)]
            return self._page(request, [self._render(request, e) for e in found])
        if rest:
            raise _Fault(400, "BadRequest", "Unsupported segment")
        if method == "GET":
            if occurrence is not None:
                return JSONResponse(self._render(request, self._occurrence(stored, occurrence)))
            return JSONResponse(self._render(request, stored.data, stored))
        if_match = request.headers.get("if-match")
        if if_match and if_match != _etag(stored):
            raise _Fault(412, "ErrorIrresolvableConflict",
                         "The change key passed in the request does not match the current change key for the item.")
        if method == "PATCH":
            if occurrence is not None:
                current = self._occurrence(stored, occurrence)
                was = _span(current)
                current.update({k: v for k, v in body.items() if k != "recurrence"})
                if _span(current) != was:
                    self._refuse_crossing(stored, current)
                current["type"] = "exception"
                stored.exceptions[occurrence] = current
            else:
                _check_recurrence(body.get("recurrence"))
                stored.data.update({k: v for k, v in body.items() if k not in ("id", "iCalUId")})
                if "start" in body:
                    stored.data["originalStartTimeZone"] = body["start"].get("timeZone")
            self._touch(mailbox, calendar, stored)
            self._mail("PATCH", stored)
            return JSONResponse(self._render(request, stored.data, stored))
        if method == "DELETE":
            self._mail("DELETE", stored)
            if occurrence is not None:
                original = self._occurrence(stored, occurrence)["originalStart"]
                zone = _series_zone(stored.data)
                stored.cancelled.add(_parse_query_time(original).astimezone(zone).date().isoformat())
                stored.exceptions.pop(occurrence, None)
                self._touch(mailbox, calendar, stored)
            else:
                del calendar.events[stored.data["id"]]
                self._log(mailbox, calendar, stored.data["id"], removed=True)
            return Response(status_code=204)
        raise _Fault(405, "MethodNotAllowed", f"{method} not allowed here")

    def _refuse_crossing(self, stored: _Stored, moved: dict[str, Any]) -> None:
        """Exchange's rule for a moved occurrence (:func:`calmesh.connectors._fitting.crosses`),
        answered as Microsoft's "Update event" page documents it: HTTP 400, code
        ``ErrorOccurrenceCrossingBoundary``, "Modified occurrence is crossing or overlapping
        adjacent occurrence" (an occurrence cannot be moved to or before the day of the previous
        occurrence, nor to or after the day of the following one; microsoftgraph/microsoft-graph-docs
        #2275, #2285)."""
        zone = _series_zone(stored.data)
        original = _parse_query_time(moved["originalStart"])
        present = [(local, utc) for local, utc in self._occurrence_starts(stored, datetime(9000, 1, 1, tzinfo=UTC))
                   if (local if not isinstance(local, datetime) else local.astimezone(zone).date()).isoformat()
                   not in stored.cancelled]

        def start(neighbour: tuple[datetime | date, datetime] | None) -> datetime | None:
            if neighbour is None:
                return None
            instance = self._instance_json(stored, *neighbour)
            return _span(stored.exceptions.get(instance["id"]) or instance)[0]

        before = max((o for o in present if o[1] < original), key=lambda o: o[1], default=None)
        after = min((o for o in present if o[1] > original), key=lambda o: o[1], default=None)
        if crosses(_span(moved)[0], start(before), start(after), zone) is not None:
            raise _Fault(400, "ErrorOccurrenceCrossingBoundary",
                         "Modified occurrence is crossing or overlapping adjacent occurrence.")

    def _mail(self, request: str, stored: _Stored) -> None:
        attendees = [str((a.get("emailAddress") or {}).get("address")) for a in stored.data.get("attendees") or []]
        if attendees and stored.data.get("isOrganizer", True):
            self.invitations_sent.append((request, str(stored.data["id"]), attendees))

    def _touch(self, mailbox: _Mailbox, calendar: _Calendar, stored: _Stored) -> None:
        stored.change_key += 1
        stored.data["lastModifiedDateTime"] = _instant(datetime.now(UTC))
        self._log(mailbox, calendar, stored.data["id"])

    # ----------------------------------------------------------------------------- expansion
    def _occurrence_starts(self, stored: _Stored, until: datetime) -> list[tuple[datetime | date, datetime]]:
        """(local start, UTC original start) of every occurrence of a series up to ``until``."""
        data = stored.data
        local_start, zone = _parse_local(data["start"])
        all_day = bool(data.get("isAllDay"))
        pattern = pattern_from_graph(data["recurrence"])
        start: datetime | date = local_start.date() if all_day else local_start.replace(tzinfo=zone)
        rule = ex.rrule_from_pattern(pattern, start, zone)
        starts = ex.occurrence_starts(Event(uid="x", start=start, rrule=[rule]), zone, until)
        return [(s, as_utc(s, zone)) for s in starts]

    def _occurrence(self, stored: _Stored, occurrence_id: str) -> dict[str, Any]:
        if occurrence_id in stored.exceptions:
            return copy.deepcopy(stored.exceptions[occurrence_id])
        stamp = occurrence_id.rsplit("_OCC_", 1)[1]
        original = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        for local, utc in self._occurrence_starts(stored, original + timedelta(days=1)):
            if utc == original:
                return self._instance_json(stored, local, utc)
        raise _Fault(404, "ErrorItemNotFound", "The specified object was not found in the store.")

    def _instance_json(self, stored: _Stored, local: datetime | date, original: datetime) -> dict[str, Any]:
        data = stored.data
        zone = _series_zone(data)
        master_start, _ = _parse_local(data["start"])
        master_end, _ = _parse_local(data["end"])
        begin = datetime.combine(local, master_start.time()) if isinstance(local, date) and not isinstance(local, datetime) \
            else local.replace(tzinfo=None)
        instance = {k: copy.deepcopy(v) for k, v in data.items() if k not in ("recurrence",)}
        instance.update({
            "id": f"{data['id']}_OCC_{original.strftime('%Y%m%dT%H%M%SZ')}",
            "type": "occurrence",
            "seriesMasterId": data["id"],
            "originalStart": _instant(original),
            "start": {"dateTime": _fmt(begin), "timeZone": zone.key},
            "end": {"dateTime": _fmt(begin + (master_end - master_start)), "timeZone": zone.key},
            "recurrence": None,
        })
        return instance

    def _expand_one(self, stored: _Stored, start: datetime, end: datetime) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        zone = _series_zone(stored.data)
        # as far as the window, and as the latest moved occurrence: one moved from years later
        # into the window (or before its series) is in it too
        horizon = max([end + timedelta(days=366)] + [_parse_query_time(e["originalStart"]) + timedelta(days=1)
                                                     for e in stored.exceptions.values()])
        for local, original in self._occurrence_starts(stored, horizon):
            local_day = local if not isinstance(local, datetime) else local.astimezone(zone).date()
            if local_day.isoformat() in stored.cancelled:
                continue
            instance = self._instance_json(stored, local, original)
            exception = stored.exceptions.get(instance["id"])
            candidate = copy.deepcopy(exception) if exception else instance
            s, e = _span(candidate)
            if s < end and e > start:
                found.append(candidate)
        return found

    def _expand(self, calendar: _Calendar, start: datetime, end: datetime) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for stored in calendar.events.values():
            if stored.data.get("recurrence"):
                found.extend(self._expand_one(stored, start, end))
                continue
            s, e = _span(stored.data)
            if s < end and e > start:
                found.append(self._with_etag(stored.data, stored))
        found.sort(key=lambda d: _span(d)[0])
        return found

    def _with_etag(self, data: dict[str, Any], stored: _Stored) -> dict[str, Any]:
        out = copy.deepcopy(data)
        out["@odata.etag"], out["changeKey"] = _etag(stored), str(stored.change_key)
        return out

    # ----------------------------------------------------------------------------- rendering
    def _render(self, request: Request, data: dict[str, Any], stored: _Stored | None = None) -> dict[str, Any]:
        """Apply ``Prefer: outlook.timezone``, ``$expand`` and series extras to an event JSON."""
        out = self._with_etag(data, stored) if stored is not None else copy.deepcopy(data)
        out.setdefault("@odata.etag", 'W/"occurrence"')
        expand = request.query_params.get("$expand", "")
        if "singleValueExtendedProperties" not in expand:
            out.pop("singleValueExtendedProperties", None)
        if stored is not None and data.get("type") == "seriesMaster":
            out["cancelledOccurrences"] = [f"OID.{data['id']}.{d}" for d in sorted(stored.cancelled)]
            if "exceptionOccurrences" in expand:
                out["exceptionOccurrences"] = [self._render(request, e) for e in stored.exceptions.values()]
        target = _preferred_zone(request)
        if target is not None:
            for key in ("start", "end"):
                local, zone = _parse_local(out[key])
                if not out.get("isAllDay"):
                    local = local.replace(tzinfo=zone).astimezone(target[0]).replace(tzinfo=None)
                out[key] = {"dateTime": _fmt(local), "timeZone": target[1]}
        if out.get("recurrence") is None:
            out.pop("recurrence", None)
        return out

    def _calendar_json(self, calendar: _Calendar, mailbox: _Mailbox) -> dict[str, Any]:
        """A calendar resource as the List calendars example of Microsoft's documentation shows
        it (``user-list-calendars``): the mailbox's own calendars, owned by the mailbox."""
        return {"id": calendar.id, "name": calendar.name, "color": "auto", "hexColor": "",
                "isDefaultCalendar": calendar.default, "changeKey": "1", "canShare": True,
                "canViewPrivateItems": True, "canEdit": True,
                "allowedOnlineMeetingProviders": ["teamsForBusiness"],
                "defaultOnlineMeetingProvider": "teamsForBusiness", "isTallyingResponses": True,
                "isRemovable": not calendar.default, "owner": {"name": mailbox.name, "address": mailbox.email}}

    def _window(self, request: Request) -> tuple[datetime, datetime]:
        try:
            return (_parse_query_time(request.query_params["startDateTime"]),
                    _parse_query_time(request.query_params["endDateTime"]))
        except (KeyError, ValueError) as exc:
            raise _Fault(400, "ErrorInvalidParameter",
                         "This request requires a time window specified by the query string parameters "
                         "StartDateTime and EndDateTime.") from exc

    def _page(self, request: Request, values: list[dict[str, Any]], extra: dict[str, Any] | None = None,
              context: str = "Collection(event)") -> Response:
        """One page of ``values`` with ``@odata.nextLink`` when more remain."""
        prefer = request.headers.get("prefer", "")
        size = self.page_size
        for part in prefer.split(","):
            name, _, value = part.strip().partition("=")
            if name == "odata.maxpagesize" and value.isdigit():
                size = min(size, int(value))
        if "$top" in request.query_params:
            size = min(size, int(request.query_params["$top"]))
        offset = int(request.query_params.get("$skiptoken", "0"))
        page: dict[str, Any] = {"@odata.context": f"{self.graph_url}/$metadata#{context}",
                                "value": values[offset:offset + size]}
        if offset + size < len(values):
            params = dict(request.query_params)
            params["$skiptoken"] = str(offset + size)
            page["@odata.nextLink"] = f"{self.base_url}{request.url.path}?{urlencode(params)}"
        elif extra:
            page.update(extra)
        return JSONResponse(page)

    # ----------------------------------------------------------------------------- delta
    def _delta(self, request: Request, mailbox: _Mailbox, calendar: _Calendar) -> Response:
        token = request.query_params.get("$deltatoken")
        values: list[dict[str, Any]] = []
        if token is None:
            values = [self._render(request, s.data, s) for s in calendar.events.values()]
        else:
            if not token.isdigit() or int(token) < self._delta_floor:
                raise _Fault(410, "SyncStateNotFound",
                             "The sync state generation is not found. Restart the sync without a delta token.")
            latest: dict[str, bool] = {}
            for seq, email, cal_id, event_id, removed in self._changes:
                if seq > int(token) and email == mailbox.email and cal_id == calendar.id:
                    latest[event_id] = removed
            for event_id, removed in latest.items():
                if removed or event_id not in calendar.events:
                    values.append({"@odata.type": "#microsoft.graph.event", "id": event_id,
                                   "@removed": {"reason": "deleted"}})
                else:
                    stored = calendar.events[event_id]
                    values.append(self._render(request, stored.data, stored))
        params = {"$deltatoken": str(self._seq)}
        delta_link = f"{self.base_url}{request.url.path}?{urlencode(params)}"
        return self._page(request, values, {"@odata.deltaLink": delta_link})

    # ----------------------------------------------------------------------------- getSchedule
    def _get_schedule(self, body: dict[str, Any]) -> Response:
        schedules = body.get("schedules") or []
        self.schedule_calls.append(body)
        if not schedules or len(schedules) > 20:
            raise _Fault(400, "ErrorInvalidParameter", "The number of schedules must be between 1 and 20.")
        start_local, start_zone = _parse_local(body["startTime"])
        end_local, end_zone = _parse_local(body["endTime"])
        start = start_local.replace(tzinfo=start_zone).astimezone(UTC)
        end = end_local.replace(tzinfo=end_zone).astimezone(UTC)
        if end - start >= timedelta(days=62):
            raise _Fault(400, "ErrorInvalidParameter", "The time duration specified is too long (62 days or more).")
        interval = timedelta(minutes=int(body.get("availabilityViewInterval") or 30))
        label = body["startTime"].get("timeZone", "UTC")
        values = []
        for schedule in schedules:
            mailbox = self.mailboxes.get(str(schedule).lower())
            if mailbox is None:
                values.append({"scheduleId": schedule, "availabilityView": "", "scheduleItems": [],
                               "error": {"message": f"The mailbox {schedule} wasn't found.",
                                         "responseCode": "ErrorMailRecipientNotFound"}})
                continue
            items = []
            for data in self._expand(mailbox.default, start, end):
                if data.get("isCancelled"):
                    continue
                s, e = _span(data)
                items.append({"isPrivate": data.get("sensitivity") in ("private", "personal", "confidential"),
                              "status": data.get("showAs", "busy"),
                              "subject": data.get("subject", ""),
                              "location": (data.get("location") or {}).get("displayName", ""),
                              "start": {"dateTime": _fmt(s.astimezone(start_zone).replace(tzinfo=None)), "timeZone": label},
                              "end": {"dateTime": _fmt(e.astimezone(start_zone).replace(tzinfo=None)), "timeZone": label}})
            values.append({"scheduleId": schedule, "availabilityView": _view(items, start, end, interval, start_zone),
                           "scheduleItems": items, "workingHours": _working_hours_json(mailbox)})
        return JSONResponse({"@odata.context": f"{self.graph_url}/$metadata#Collection(microsoft.graph.scheduleInformation)",
                             "value": values})


# ----------------------------------------------------------------------------------- helpers
_PATTERN_NEEDS = {
    "daily": ("interval",), "weekly": ("interval", "daysOfWeek"),
    "absoluteMonthly": ("interval", "dayOfMonth"), "relativeMonthly": ("interval", "daysOfWeek"),
    "absoluteYearly": ("interval", "dayOfMonth", "month"), "relativeYearly": ("interval", "daysOfWeek", "month"),
}
"""recurrencePattern: the properties each type requires (Graph v1.0 resource documentation)."""
_RANGE_NEEDS = {"noEnd": ("startDate",), "endDate": ("startDate", "endDate"),
                "numbered": ("startDate", "numberOfOccurrences")}


def _check_recurrence(recurrence: Any) -> None:
    """What Graph refuses in a ``patternedRecurrence``: an unknown pattern or range type, or one
    without the properties its type requires."""
    if recurrence is None:
        return
    pattern, rng = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    needed = _PATTERN_NEEDS.get(pattern.get("type", ""))
    needed_range = _RANGE_NEEDS.get(rng.get("type", ""))
    if needed is None or needed_range is None:
        raise _Fault(400, "ErrorInvalidRequest", "The recurrence pattern or range type is invalid.")
    missing = [n for n in needed if not pattern.get(n)] + [n for n in needed_range if not rng.get(n)]
    if missing:
        raise _Fault(400, "ErrorPropertyValidationFailure", f"Missing recurrence properties: {', '.join(missing)}.")


def _load_json(body: bytes) -> dict[str, Any]:
    import json

    try:
        data = json.loads(body)
    except ValueError as exc:
        raise _Fault(400, "BadRequest", f"Unable to read JSON request payload: {exc}") from exc
    if not isinstance(data, dict):
        raise _Fault(400, "BadRequest", "Expected a JSON object.")
    return data


def _etag(stored: _Stored) -> str:
    return f'W/"{stored.data["id"][-8:]}{stored.change_key}"'


def _series_zone(data: dict[str, Any]) -> ZoneInfo:
    return ex.zone_of((data.get("recurrence") or {}).get("range", {}).get("recurrenceTimeZone")
                      or data["start"].get("timeZone"))


def _span(data: dict[str, Any]) -> tuple[datetime, datetime]:
    start, zone = _parse_local(data["start"])
    end, end_zone = _parse_local(data["end"])
    return start.replace(tzinfo=zone).astimezone(UTC), end.replace(tzinfo=end_zone).astimezone(UTC)


def _preferred_zone(request: Request) -> tuple[ZoneInfo, str] | None:
    for part in request.headers.get("prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "outlook.timezone":
            label = value.strip('"')
            return ex.zone_of(label), label
    return None


def _view(items: list[dict[str, Any]], start: datetime, end: datetime, interval: timedelta, zone: ZoneInfo) -> str:
    spans = []
    for item in items:
        s = datetime.fromisoformat(item["start"]["dateTime"].split(".")[0]).replace(tzinfo=zone)
        e = datetime.fromisoformat(item["end"]["dateTime"].split(".")[0]).replace(tzinfo=zone)
        spans.append((s, e, min(int(ex.busy_from_exchange(item["status"])), 3)))
    digits = []
    cursor = start
    while cursor < end:
        nxt = cursor + interval
        digits.append(str(max((d for s, e, d in spans if s < nxt and e > cursor), default=0)))
        cursor = nxt
    return "".join(digits)


def _working_hours_json(mailbox: _Mailbox) -> dict[str, Any]:
    hours = mailbox.working_hours
    if hours is None:
        hours = WorkingHours.simple(mailbox.timezone, datetime.min.time().replace(hour=8),
                                    datetime.min.time().replace(hour=17))
    period = hours.periods[0]
    zone = to_iana(hours.timezone) or "UTC"
    return {"daysOfWeek": [ex.WEEKDAYS[d] for d in sorted(period.days)],
            "startTime": period.start.strftime("%H:%M:%S.0000000"),
            "endTime": period.end.strftime("%H:%M:%S.0000000"),
            "timeZone": {"name": to_windows(zone)}}
