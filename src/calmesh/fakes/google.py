"""A fake Google Calendar API v3, with the OAuth2 token endpoint of a service account.

Follows Google's published request/response shapes: ``calendar#event`` resources with quoted
``etag``, ``iCalUID``, ``recurrence`` lines (RRULE/RDATE/EXDATE), instances named
``{eventId}_{originalStart}`` carrying ``recurringEventId``/``originalStartTime``, modified and
cancelled instances as exceptions; ``events.list`` (``singleEvents``, ``timeMin``/``timeMax``,
``showDeleted``, ``iCalUID``, ``orderBy``, ``pageToken``/``nextPageToken``, ``syncToken`` ->
``nextSyncToken``, 410 ``fullSyncRequired``), ``events.get/insert/import/update/patch/delete``
with If-Match (412 ``conditionNotMet``), ``events.instances`` (``originalStart``),
``calendarList.list``, ``freeBusy.query`` (at most 50 calendars, 90 days, per-calendar
``notFound`` errors) and the error body ``{"error": {"code", "message", "errors": [...]}}``.

``/token`` implements the RFC 7523 JWT bearer grant as Google does for service accounts: the
assertion's RS256 signature is checked against the account's public key, and its ``iss``,
``aud``, ``scope``, ``iat``/``exp`` and ``sub`` (domain-wide delegation) claims are validated.
The key is generated when the fake is created (:meth:`GoogleFake.credentials_json`): no key
files exist anywhere.

Fault injection for tests: :meth:`GoogleFake.fail_next` (429, 403 ``rateLimitExceeded``, 500),
:meth:`GoogleFake.expire_tokens` (401) and :meth:`GoogleFake.expire_sync_tokens` (410).
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calmesh.connectors.google import event_to_google
from calmesh.fakes import FakeService
from calmesh.model import CalendarItem, Temporal, as_utc

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
READ_SCOPES = {CALENDAR_SCOPE, CALENDAR_SCOPE + ".readonly", CALENDAR_SCOPE + ".events",
               CALENDAR_SCOPE + ".events.readonly"}
WRITE_SCOPES = {CALENDAR_SCOPE, CALENDAR_SCOPE + ".events"}
MAX_FREEBUSY_CALENDARS = 50
MAX_FREEBUSY_DAYS = 90
_API = "/calendar/v3"
_SERVER_FIELDS = ("kind", "id", "iCalUID", "created", "creator", "htmlLink", "eventType", "organizer")
"""Fields Google sets itself: an update or patch body does not change them."""
_HORIZON = timedelta(days=3 * 366)
"""How far an open-ended series is expanded when a listing names no end."""


class _Fault(Exception):
    """An API error, rendered as Google's error body."""

    def __init__(self, status: int, reason: str, message: str, domain: str = "global",
                 headers: dict[str, str] | None = None, **extra: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.domain = status, reason, message, domain
        self.headers, self.extra = headers or {}, extra

    def response(self) -> Response:
        detail = {"domain": self.domain, "reason": self.reason, "message": self.message, **self.extra}
        return JSONResponse({"error": {"errors": [detail], "code": self.status, "message": self.message}},
                            status_code=self.status, headers=self.headers)


def _not_found() -> _Fault:
    return _Fault(404, "notFound", "Not Found")


@dataclass
class _Stored:
    """A single event or series master, and its exceptions (modified or cancelled instances)."""

    data: dict[str, Any]
    exceptions: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Calendar:
    id: str
    summary: str
    owner: str
    timezone: str
    primary: bool
    acl: dict[str, str] = field(default_factory=dict)
    """email -> owner / writer / reader."""
    events: dict[str, _Stored] = field(default_factory=dict)

    def role(self, user: str | None) -> str | None:
        if user is None:
            return None
        return "owner" if user == self.owner else self.acl.get(user)


@dataclass
class _Token:
    subject: str | None
    scopes: frozenset[str]
    expires: float


class GoogleFake(FakeService):
    """In-memory Google Workspace calendars. Create, seed with :meth:`add_user`/:meth:`add_item`,
    then :meth:`start` it (or mount it as an ASGI app yourself)."""

    def __init__(self, domain: str = "calmesh.test", token_lifetime: int = 3599, page_size: int = 10,
                 delegated_scopes: tuple[str, ...] = (CALENDAR_SCOPE,)) -> None:
        super().__init__()
        self.domain = domain
        self.token_lifetime = token_lifetime
        self.page_size = page_size
        self.delegated_scopes = set(delegated_scopes)
        """Scopes the Workspace admin granted the service account for domain-wide delegation."""
        self.client_email = "calmesh-sync@calmesh-test.iam.gserviceaccount.com"
        self.key_id = secrets.token_hex(20)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.users: dict[str, str] = {}
        """email -> IANA zone."""
        self.calendars: dict[str, _Calendar] = {}
        self.freebusy_calls: list[dict[str, Any]] = []
        self.invitations_sent: list[tuple[str, str, list[str]]] = []
        """(method, event id, guests) of every invitation, update or cancellation Google mails:
        insert, update, patch or delete of an event with guests that the calendar's owner
        organises, asked with ``sendUpdates=all|externalOnly`` (the API's default sends none;
        ``events.import`` never does)."""
        self.token_claims: list[dict[str, Any]] = []
        self._tokens: dict[str, _Token] = {}
        self._sync_tokens: dict[str, tuple[str, int]] = {}
        self._faults: list[_Fault] = []
        self._changes: list[tuple[int, str, str, str]] = []
        """(sequence, calendar id, event id, instance id or "")."""
        self._seq = 0

    # ----------------------------------------------------------------------------- credentials
    def service_account_info(self) -> dict[str, str]:
        """The JSON key Google would let an admin download for the service account."""
        pem = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": "calmesh-test", "private_key_id": self.key_id,
                "private_key": pem, "client_email": self.client_email, "client_id": "104729418301762940017",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": self.token_url,
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs"}

    def credentials_json(self) -> str:
        return json.dumps(self.service_account_info())

    # ----------------------------------------------------------------------------- seeding
    def add_user(self, email: str, timezone: str = "UTC", extra_calendars: tuple[str, ...] = ()) -> None:
        """A Workspace user with a primary calendar (id = address) and optional secondary ones."""
        email = email.lower()
        with self._lock:
            self.users[email] = timezone
            self.calendars[email] = _Calendar(email, email, email, timezone, True)
            for name in extra_calendars:
                cal_id = f"c_{secrets.token_hex(12)}@group.calendar.google.com"
                self.calendars[cal_id] = _Calendar(cal_id, name, email, timezone, False)

    def share(self, calendar_id: str, email: str, role: str = "writer") -> None:
        self.calendars[calendar_id].acl[email.lower()] = role

    def add_item(self, calendar_id: str, item: CalendarItem) -> str:
        """Seed an item as a Google Calendar user would leave it: the series, moved occurrences as
        modified instances and cancelled ones as cancelled instances (not EXDATE lines). Keeps the
        UID. Returns the event id."""
        calendar = self.calendars[calendar_id]
        zone = ZoneInfo(calendar.timezone)
        master = item.master or item.components[0]
        with self._lock:
            body = event_to_google(master.with_changes(exdate=[]), zone)
            body["iCalUID"] = item.uid
            stored = self._create(calendar, body)
            series_zone = _zone(stored.data, calendar)
            for excluded in master.exdate:
                instance = self._instance(calendar, stored, _original(excluded, series_zone))
                self._cancel_instance(calendar, stored, instance)
            for override in item.overrides:
                assert override.recurrence_id is not None
                instance = self._instance(calendar, stored, _original(override.recurrence_id, series_zone))
                patch = event_to_google(override, zone)
                patch.pop("recurrence", None)
                self._write_instance(calendar, stored, instance, patch, replace=True)
            return str(stored.data["id"])

    def cancel_occurrence(self, calendar_id: str, event_id: str, original: Temporal) -> None:
        """A user deletes one occurrence of a series ("This event" in the Google Calendar UI)."""
        calendar = self.calendars[calendar_id]
        with self._lock:
            stored = calendar.events[event_id]
            zone = _zone(stored.data, calendar)
            self._cancel_instance(calendar, stored, self._instance(calendar, stored, _original(original, zone)))

    # ----------------------------------------------------------------------------- faults
    def fail_next(self, count: int = 1, status: int = 429, retry_after: int | None = 1) -> None:
        """The next ``count`` API requests fail: 429 or 403 ``rateLimitExceeded`` (usageLimits),
        or 500 ``backendError``; ``Retry-After`` is sent when given."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if status == 429:
            fault = _Fault(429, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits", headers)
        elif status == 403:
            fault = _Fault(403, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits", headers)
        else:
            fault = _Fault(status, "backendError", "Backend Error", "global", headers)
        with self._lock:
            self._faults.extend([fault] * count)

    def expire_tokens(self) -> None:
        """Every issued access token is now expired (the next call gets 401)."""
        with self._lock:
            for token in self._tokens.values():
                token.expires = 0.0

    def expire_sync_tokens(self) -> None:
        """Forget every sync token: they now answer 410 ``fullSyncRequired``."""
        with self._lock:
            self._sync_tokens.clear()

    # ----------------------------------------------------------------------------- serving
    @property
    def api_url(self) -> str:
        return self.base_url + _API

    def _dispatch(self, request: Request, body: bytes) -> Response:
        try:
            return self._respond(request, body)
        except _Fault as fault:
            return fault.response()

    def _respond(self, request: Request, body: bytes) -> Response:
        path = request.url.path
        if path == "/token" and request.method == "POST":
            return self._token(dict(parse_qsl(body.decode())))
        if not path.startswith(_API + "/"):
            raise _not_found()
        if self._faults:
            raise self._faults.pop(0)
        token = self._authorize(request)
        parts = [unquote(p) for p in path[len(_API) + 1:].split("/")]
        data = _load_json(body) if body else {}
        method = request.method
        if parts == ["users", "me", "calendarList"] and method == "GET":
            return self._calendar_list(request, token)
        if parts == ["freeBusy"] and method == "POST":
            return self._freebusy(token, data)
        if len(parts) >= 3 and parts[0] == "calendars" and parts[2] == "events":
            calendar = self.calendars.get(parts[1])
            if calendar is None or calendar.role(token.subject) is None:
                raise _not_found()
            write = method in ("POST", "PUT", "PATCH", "DELETE")
            if write and (calendar.role(token.subject) not in ("owner", "writer")):
                raise _Fault(403, "requiredAccessLevel", "You need to have writer access to this calendar.")
            if not (token.scopes & (WRITE_SCOPES if write else READ_SCOPES)):
                raise _Fault(403, "insufficientPermissions", "Request had insufficient authentication scopes.")
            return self._events_route(request, calendar, parts[3:], data)
        raise _not_found()

    # ----------------------------------------------------------------------------- OAuth2
    def _token(self, form: dict[str, str]) -> Response:
        def refuse(error: str, description: str, status: int = 400) -> Response:
            return JSONResponse({"error": error, "error_description": description}, status_code=status)

        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return refuse("unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", ""))
        try:
            header_b64, claims_b64, signature_b64 = form.get("assertion", "").split(".")
            header, claims = json.loads(_unb64(header_b64)), json.loads(_unb64(claims_b64))
            signature = _unb64(signature_b64)
        except ValueError:
            return refuse("invalid_grant", "Invalid JWT: the assertion is not a well-formed JWT.")
        if header.get("alg") != "RS256" or header.get("kid", self.key_id) != self.key_id:
            return refuse("invalid_grant", "Invalid JWT Signature.")
        try:
            self._key.public_key().verify(signature, f"{header_b64}.{claims_b64}".encode(),
                                          padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return refuse("invalid_grant", "Invalid JWT Signature.")
        self.token_claims.append(claims)
        now = time.time()
        if claims.get("iss") != self.client_email:
            return refuse("invalid_client", "The OAuth client was not found.", 401)
        if claims.get("aud") != self.token_url:
            return refuse("invalid_grant", "Invalid JWT: aud is not the token endpoint.")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat > 3600 or iat > now + 300 or exp < now:
            return refuse("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                                           "reasonable timeframe. Check your iat and exp values in the JWT claim.")
        scopes = frozenset(str(claims.get("scope", "")).split())
        if not scopes:
            return refuse("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        subject = claims.get("sub")
        if subject is not None:
            subject = str(subject).lower()
            if subject not in self.users:
                return refuse("invalid_grant", "Invalid email or User ID")
            if not scopes <= self.delegated_scopes:
                return refuse("unauthorized_client", "Client is unauthorized to retrieve access tokens using this "
                                                     "method, or client not authorized for any of the scopes requested.",
                              401)
        access = "ya29." + secrets.token_urlsafe(32)
        self._tokens[access] = _Token(subject, scopes, time.monotonic() + self.token_lifetime)
        return JSONResponse({"access_token": access, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    def _authorize(self, request: Request) -> _Token:
        token = self._tokens.get(request.headers.get("authorization", "").removeprefix("Bearer ").strip())
        if token is None or token.expires < time.monotonic():
            raise _Fault(401, "authError", "Invalid Credentials", "global", {"WWW-Authenticate": "Bearer"},
                         locationType="header", location="Authorization")
        return token

    # ----------------------------------------------------------------------------- calendarList
    def _calendar_list(self, request: Request, token: _Token) -> Response:
        entries: list[dict[str, Any]] = []
        for calendar in self.calendars.values():
            role = calendar.role(token.subject)
            if role is None:
                continue
            entries.append({"kind": "calendar#calendarListEntry", "etag": f'"{len(entries) + 1}"',
                            "id": calendar.id, "summary": calendar.summary, "timeZone": calendar.timezone,
                            "colorId": "14", "backgroundColor": "#9fe1e7", "foregroundColor": "#000000",
                            "selected": True, "accessRole": role, "defaultReminders": [],
                            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
                            **({"primary": True} if calendar.primary and role == "owner" else {})})
        # the last page carries nextSyncToken (calendarList.list: "omitted if further results are
        # available, in which case nextPageToken is provided")
        return self._page(request, {"kind": "calendar#calendarList", "etag": '"p32g"'}, entries,
                          sync_token=f"CPDAlvWDx70CEPDAlvWDx70CGAU{len(entries)}")

    # ----------------------------------------------------------------------------- events
    def _events_route(self, request: Request, calendar: _Calendar, rest: list[str], body: dict[str, Any]) -> Response:
        method = request.method
        if not rest and method == "GET":
            return self._list(request, calendar)
        if not rest and method == "POST":
            created = self._create(calendar, body).data
            self._mail(request, calendar, created)
            return JSONResponse(self._render(created))
        if rest == ["import"] and method == "POST":
            return JSONResponse(self._render(self._import(calendar, body).data))
        stored, instance = self._find(calendar, rest[0])
        if rest[1:] == ["instances"] and method == "GET":
            if instance is not None:
                raise _not_found()
            return self._instances(request, calendar, stored)
        if rest[1:]:
            raise _not_found()
        if method == "GET":
            return JSONResponse(self._render(instance if instance is not None else stored.data))
        current = instance if instance is not None else stored.data
        if_match = request.headers.get("if-match")
        if if_match and if_match != current["etag"]:
            raise _Fault(412, "conditionNotMet", "Precondition Failed", locationType="header", location="If-Match")
        if method in ("PUT", "PATCH"):
            _validate(body if method == "PUT" else {**current, **body}, calendar)
            if instance is not None:
                written = self._write_instance(calendar, stored, instance, body, replace=method == "PUT")
            else:
                written = self._write_master(calendar, stored, body, replace=method == "PUT")
            self._mail(request, calendar, written)
            return JSONResponse(self._render(written))
        if method == "DELETE":
            self._mail(request, calendar, current)
            if current.get("status") == "cancelled":
                raise _Fault(410, "deleted", "Resource has been deleted")
            if instance is not None:
                self._cancel_instance(calendar, stored, instance)
            else:
                stored.data["status"] = "cancelled"
                self._touch(calendar, stored.data, stored.data["id"])
            return Response(status_code=204)
        raise _Fault(405, "methodNotAllowed", "Method Not Allowed")

    def _create(self, calendar: _Calendar, body: dict[str, Any]) -> _Stored:
        _validate(body, calendar)
        event_id = body.get("id") or secrets.token_hex(13)
        if not isinstance(event_id, str) or not all(c in "0123456789abcdefghijklmnopqrstuv" for c in event_id):
            raise _Fault(400, "invalid", "Invalid resource id value.")
        if event_id in calendar.events:
            raise _Fault(409, "duplicate", "The requested identifier already exists.")
        now = _stamp(datetime.now(UTC))
        data = {k: copy.deepcopy(v) for k, v in body.items() if k not in ("etag", "kind")}
        data.update({"kind": "calendar#event", "id": event_id, "status": body.get("status", "confirmed"),
                     "iCalUID": body.get("iCalUID") or f"{event_id}@google.com", "created": now,
                     "creator": {"email": calendar.owner}, "sequence": body.get("sequence", 0),
                     "eventType": body.get("eventType", "default"),
                     "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}"})
        data.setdefault("organizer", {"email": calendar.owner, "self": True})
        stored = _Stored(data)
        calendar.events[event_id] = stored
        self._touch(calendar, data, event_id)
        return stored

    def _mail(self, request: Request, calendar: _Calendar, data: dict[str, Any]) -> None:
        guests = [str(a.get("email")) for a in data.get("attendees") or []]
        organizer = str((data.get("organizer") or {}).get("email", calendar.owner)).lower()
        asked = request.query_params.get("sendUpdates") in ("all", "externalOnly") \
            or request.query_params.get("sendNotifications") == "true"
        if guests and asked and organizer == calendar.owner:
            self.invitations_sent.append((request.method, str(data.get("id")), guests))

    def _import(self, calendar: _Calendar, body: dict[str, Any]) -> _Stored:
        """events.import: a private copy keyed by iCalUID; importing the same UID again updates it."""
        uid = body.get("iCalUID")
        if not uid:
            raise _Fault(400, "required", "Missing iCalUID.", locationType="other", location="iCalUID")
        for stored in calendar.events.values():
            if stored.data.get("iCalUID") == uid and stored.data.get("status") != "cancelled":
                _validate(body, calendar)
                self._write_master(calendar, stored, body, replace=True)
                return stored
        return self._create(calendar, {k: v for k, v in body.items() if k != "id"})

    def _write_master(self, calendar: _Calendar, stored: _Stored, body: dict[str, Any], replace: bool) -> dict[str, Any]:
        keep = {k: stored.data[k] for k in _SERVER_FIELDS if k in stored.data}
        base: dict[str, Any] = {} if replace else stored.data
        stored.data = {**base, **copy.deepcopy(body), **keep}
        stored.data.setdefault("status", "confirmed")
        self._touch(calendar, stored.data, stored.data["id"])
        return stored.data

    def _write_instance(self, calendar: _Calendar, stored: _Stored, instance: dict[str, Any], body: dict[str, Any],
                        replace: bool) -> dict[str, Any]:
        keep = {k: instance[k] for k in (*_SERVER_FIELDS, "recurringEventId", "originalStartTime") if k in instance}
        base: dict[str, Any] = {} if replace else instance
        written = {**base, **{k: copy.deepcopy(v) for k, v in body.items() if k != "recurrence"}, **keep}
        written.setdefault("status", "confirmed")
        stored.exceptions[written["id"]] = written
        self._touch(calendar, written, stored.data["id"], written["id"])
        return written

    def _cancel_instance(self, calendar: _Calendar, stored: _Stored, instance: dict[str, Any]) -> None:
        cancelled = {k: instance[k] for k in ("kind", "id", "iCalUID", "recurringEventId", "originalStartTime")}
        cancelled["status"] = "cancelled"
        stored.exceptions[cancelled["id"]] = cancelled
        self._touch(calendar, cancelled, stored.data["id"], cancelled["id"])

    def _touch(self, calendar: _Calendar, data: dict[str, Any], event_id: str, instance_id: str = "") -> None:
        self._seq += 1
        data["etag"] = f'"{3181161784712000 + self._seq}"'
        data["updated"] = _stamp(datetime.now(UTC))
        self._changes.append((self._seq, calendar.id, event_id, instance_id))

    def _find(self, calendar: _Calendar, event_id: str) -> tuple[_Stored, dict[str, Any] | None]:
        """(stored event, the instance when ``event_id`` names one)."""
        if event_id in calendar.events:
            return calendar.events[event_id], None
        master_id, _, stamp = event_id.rpartition("_")
        stored = calendar.events.get(master_id)
        if stored is None or not stored.data.get("recurrence"):
            raise _not_found()
        try:
            original: Temporal = (datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if "T" in stamp
                                  else datetime.strptime(stamp, "%Y%m%d").date())
        except ValueError:
            raise _not_found() from None
        return stored, self._instance(calendar, stored, original)

    # ----------------------------------------------------------------------------- expansion
    def _occurrences(self, calendar: _Calendar, stored: _Stored, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
        """Every instance of a series (exceptions applied, cancelled ones included) whose original
        start falls in ``[lo - 1 day, hi + 1 day)``: callers filter precisely."""
        data = stored.data
        zone = _zone(data, calendar)
        start, end = _when(data["start"], zone), _when(data["end"], zone)
        component = icalendar.Event()
        component.add("UID", "x")
        component.add("DTSTART", start)
        component.add("DTEND", end)
        text = component.to_ical().decode().replace("END:VEVENT\r\n", "\r\n".join(data["recurrence"]) + "\r\nEND:VEVENT\r\n")
        cal = icalendar.Calendar.from_ical(f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//fake//EN\r\n{text}END:VCALENDAR\r\n")
        found = []
        for occurrence in recurring_ical_events.of(cal).between(lo - timedelta(days=1), hi + timedelta(days=1)):
            occ_start = occurrence.decoded("DTSTART")
            found.append(self._instance_json(stored, occ_start, occurrence.decoded("DTEND"), zone))
        return found

    def _instance_json(self, stored: _Stored, start: Temporal, end: Temporal, zone: ZoneInfo) -> dict[str, Any]:
        data = stored.data
        if isinstance(start, datetime):
            instance_id = f"{data['id']}_{start.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
        else:
            instance_id = f"{data['id']}_{start.strftime('%Y%m%d')}"
        if instance_id in stored.exceptions:
            return copy.deepcopy(stored.exceptions[instance_id])
        instance = {k: copy.deepcopy(v) for k, v in data.items() if k != "recurrence"}
        instance.update({"id": instance_id, "recurringEventId": data["id"], "originalStartTime": _json_when(start, zone),
                         "start": _json_when(start, zone), "end": _json_when(end, zone)})
        return instance

    def _instance(self, calendar: _Calendar, stored: _Stored, original: Temporal) -> dict[str, Any]:
        zone = _zone(stored.data, calendar)
        around = as_utc(original, zone)
        for instance in self._occurrences(calendar, stored, around, around + timedelta(seconds=1)):
            if _original(_when(instance["originalStartTime"], zone), zone) == _original(original, zone):
                return instance
        raise _not_found()

    def _expanded(self, calendar: _Calendar, lo: datetime | None, hi: datetime | None,
                  show_deleted: bool) -> list[dict[str, Any]]:
        """``singleEvents=true``: every single event and instance overlapping the window."""
        lo_, hi_ = lo or datetime(1970, 1, 1, tzinfo=UTC), hi or datetime.now(UTC) + _HORIZON
        found = []
        for stored in calendar.events.values():
            if stored.data.get("status") == "cancelled":
                if show_deleted:
                    found.append(stored.data)
                continue
            candidates = self._occurrences(calendar, stored, lo_, hi_) if stored.data.get("recurrence") else [stored.data]
            for data in candidates:
                if data.get("status") == "cancelled" and not show_deleted:
                    continue
                if data.get("status") == "cancelled" or _overlaps(data, calendar, lo_, hi_):
                    found.append(data)
        return found

    def _unexpanded(self, calendar: _Calendar, lo: datetime | None, hi: datetime | None,
                    show_deleted: bool) -> list[dict[str, Any]]:
        """``singleEvents=false``: masters, singles and exceptions touching the window."""
        found = []
        for stored in calendar.events.values():
            if stored.data.get("status") == "cancelled":
                if show_deleted:
                    found.append(stored.data)
                continue
            if not stored.data.get("recurrence"):
                if lo is None or hi is None or _overlaps(stored.data, calendar, lo, hi):
                    found.append(stored.data)
                continue
            exceptions = list(stored.exceptions.values())
            if lo is not None and hi is not None:
                instances = [i for i in self._occurrences(calendar, stored, lo, hi) if _overlaps(i, calendar, lo, hi)]
                moved_in = [e for e in exceptions if e.get("status") != "cancelled" and _overlaps(e, calendar, lo, hi)]
                if not instances and not moved_in:
                    continue
                zone = _zone(stored.data, calendar)
                exceptions = [e for e in exceptions if e in moved_in or (
                    e.get("status") == "cancelled" and lo <= as_utc(_when(e["originalStartTime"], zone), zone) < hi)]
            found.append(stored.data)
            found.extend(e for e in exceptions if show_deleted or e.get("status") != "cancelled")
        return found

    def _list(self, request: Request, calendar: _Calendar) -> Response:
        q = request.query_params
        show_deleted = q.get("showDeleted") == "true"
        single = q.get("singleEvents") == "true"
        header: dict[str, Any] = {"kind": "calendar#events", "etag": f'"{self._seq}"', "summary": calendar.summary,
                  "timeZone": calendar.timezone, "accessRole": calendar.role(self._authorize(request).subject),
                  "updated": _stamp(datetime.now(UTC)), "defaultReminders": []}
        if "syncToken" in q:
            if any(k in q for k in ("timeMin", "timeMax", "iCalUID", "orderBy", "q", "updatedMin")):
                raise _Fault(400, "invalid", "Sync token cannot be used with other request restrictions.",
                             locationType="parameter", location="syncToken")
            known = self._sync_tokens.get(q["syncToken"])
            if known is None or known[0] != calendar.id:
                raise _Fault(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.",
                             "calendar")
            values = self._changed_since(calendar, known[1])
        else:
            lo = _query_time(q, "timeMin")
            hi = _query_time(q, "timeMax")
            if lo is not None and hi is not None and hi <= lo:
                raise _Fault(400, "timeRangeEmpty", "The specified time range is empty.", "calendar",
                             locationType="parameter", location="timeMax")
            values = (self._expanded if single else self._unexpanded)(calendar, lo, hi, show_deleted)
            if "iCalUID" in q:
                values = [v for v in values if v.get("iCalUID") == q["iCalUID"]]
            if q.get("orderBy") == "startTime":
                if not single:
                    raise _Fault(400, "invalid", "The requested ordering is not available for the particular query.")
                values.sort(key=lambda v: _span(v, calendar)[0])
        sync = None if "iCalUID" in q else f"CPDAlvWDx{secrets.token_urlsafe(12)}"
        if sync is not None:
            self._sync_tokens[sync] = (calendar.id, self._seq)
        return self._page(request, header, [self._render(v) for v in values], sync)

    def _changed_since(self, calendar: _Calendar, seq: int) -> list[dict[str, Any]]:
        latest: dict[tuple[str, str], None] = {}
        for change_seq, cal_id, event_id, instance_id in self._changes:
            if change_seq > seq and cal_id == calendar.id:
                latest.pop((event_id, instance_id), None)
                latest[(event_id, instance_id)] = None
        values = []
        for event_id, instance_id in latest:
            stored = calendar.events[event_id]
            values.append(stored.exceptions[instance_id] if instance_id else stored.data)
        return values

    def _instances(self, request: Request, calendar: _Calendar, stored: _Stored) -> Response:
        q = request.query_params
        if not stored.data.get("recurrence"):
            raise _Fault(400, "invalid", "The event is not recurring.")
        zone = _zone(stored.data, calendar)
        lo = _query_time(q, "timeMin") or datetime(1970, 1, 1, tzinfo=UTC)
        hi = _query_time(q, "timeMax") or datetime.now(UTC) + _HORIZON
        if "originalStart" in q:
            original = _parse_temporal(q["originalStart"])
            around = as_utc(original, zone)
            values = [i for i in self._occurrences(calendar, stored, around, around + timedelta(seconds=1))
                      if as_utc(_when(i["originalStartTime"], zone), zone) == around]
        else:
            values = [i for i in self._occurrences(calendar, stored, lo, hi) if _overlaps(i, calendar, lo, hi)]
        if q.get("showDeleted") != "true":
            values = [v for v in values if v.get("status") != "cancelled"]
        header = {"kind": "calendar#events", "summary": calendar.summary, "timeZone": calendar.timezone}
        return self._page(request, header, [self._render(v) for v in values])

    # ----------------------------------------------------------------------------- freeBusy
    def _freebusy(self, token: _Token, body: dict[str, Any]) -> Response:
        self.freebusy_calls.append(body)
        lo, hi = _body_time(body, "timeMin"), _body_time(body, "timeMax")
        if hi <= lo:
            raise _Fault(400, "timeRangeEmpty", "The specified time range is empty.", "calendar",
                         locationType="parameter", location="timeMax")
        if hi - lo > timedelta(days=MAX_FREEBUSY_DAYS):
            raise _Fault(400, "timeRangeTooLong", "The requested time range is too long.", "calendar")
        calendars: dict[str, Any] = {}
        for index, entry in enumerate(body.get("items") or []):
            cal_id = str(entry.get("id", ""))
            calendar = self.calendars.get(cal_id) or self.calendars.get(cal_id.lower())
            if index >= MAX_FREEBUSY_CALENDARS:
                calendars[cal_id] = {"errors": [{"domain": "calendar", "reason": "tooManyCalendarsRequested"}], "busy": []}
            elif calendar is None or token.subject is None:
                calendars[cal_id] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
            else:
                calendars[cal_id] = {"busy": self._busy(calendar, lo, hi)}
        return JSONResponse({"kind": "calendar#freeBusy", "timeMin": _stamp(lo), "timeMax": _stamp(hi),
                             "calendars": calendars})

    def _busy(self, calendar: _Calendar, lo: datetime, hi: datetime) -> list[dict[str, str]]:
        spans = []
        for data in self._expanded(calendar, lo, hi, show_deleted=False):
            declined = any(a.get("email", "").lower() == calendar.owner and a.get("responseStatus") == "declined"
                           for a in data.get("attendees") or [])
            if data.get("transparency") == "transparent" or declined:
                continue
            start, end = _span(data, calendar)
            spans.append((max(start, lo), min(end, hi)))
        merged: list[list[datetime]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return [{"start": _stamp(s), "end": _stamp(e)} for s, e in merged if e > s]

    # ----------------------------------------------------------------------------- rendering
    def _render(self, data: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(data)

    def _page(self, request: Request, header: dict[str, Any], values: list[dict[str, Any]],
              sync_token: str | None = None) -> Response:
        """One page of ``values``: ``nextPageToken`` while more remain, else ``nextSyncToken``."""
        q = request.query_params
        size = min(self.page_size, int(q.get("maxResults", "250") or 250))
        token = q.get("pageToken")
        offset = int(token.removeprefix("EhEK")) if token and token.startswith("EhEK") and token[4:].isdigit() else 0
        if token and offset == 0:
            raise _Fault(400, "invalid", "Invalid page token value.", locationType="parameter", location="pageToken")
        page = {**header, "items": values[offset:offset + size]}
        if offset + size < len(values):
            page["nextPageToken"] = f"EhEK{offset + size}"
        elif sync_token is not None:
            page["nextSyncToken"] = sync_token
        return JSONResponse(page)


# ----------------------------------------------------------------------------------- helpers
def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _load_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise _Fault(400, "parseError", f"Parse Error: {exc}") from exc
    if not isinstance(data, dict):
        raise _Fault(400, "parseError", "Parse Error")
    return data


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_temporal(text: str) -> Temporal:
    if "T" not in text:
        return date.fromisoformat(text)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise _Fault(400, "invalid", f"Bad Request: {text} has no time zone offset.")
    return value


def _query_time(q: Any, name: str) -> datetime | None:
    if name not in q:
        return None
    value = _parse_temporal(q[name])
    if not isinstance(value, datetime):
        raise _Fault(400, "invalid", f"Bad Request: {name} must be an RFC3339 timestamp.", locationType="parameter",
                     location=name)
    return value


def _body_time(body: dict[str, Any], name: str) -> datetime:
    if not body.get(name):
        raise _Fault(400, "required", f"Missing {name} parameter.")
    value = _parse_temporal(str(body[name]))
    if not isinstance(value, datetime):
        raise _Fault(400, "invalid", f"Bad Request: {name} must be an RFC3339 timestamp.")
    return value


def _zone(data: dict[str, Any], calendar: _Calendar) -> ZoneInfo:
    return ZoneInfo((data.get("start") or {}).get("timeZone") or calendar.timezone)


def _when(value: dict[str, Any], zone: ZoneInfo) -> Temporal:
    """A stored ``EventDateTime`` -> date or aware datetime in its own (or the series') zone."""
    if value.get("date"):
        return date.fromisoformat(value["date"])
    parsed = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
    own = ZoneInfo(value["timeZone"]) if value.get("timeZone") else zone
    return parsed.replace(tzinfo=own) if parsed.tzinfo is None else parsed.astimezone(own)


def _json_when(value: Temporal, zone: ZoneInfo) -> dict[str, str]:
    if not isinstance(value, datetime):
        return {"date": value.isoformat()}
    return {"dateTime": value.astimezone(zone).isoformat(), "timeZone": zone.key}


def _original(value: Temporal, zone: ZoneInfo) -> Temporal:
    return value if not isinstance(value, datetime) else as_utc(value, zone)


def _span(data: dict[str, Any], calendar: _Calendar) -> tuple[datetime, datetime]:
    """Where an event or instance sits; a cancelled instance (no start/end) at its original start."""
    zone = _zone(data, calendar)
    start, end = data.get("start") or data["originalStartTime"], data.get("end") or data["originalStartTime"]
    return as_utc(_when(start, zone), zone), as_utc(_when(end, zone), zone)


def _overlaps(data: dict[str, Any], calendar: _Calendar, lo: datetime, hi: datetime) -> bool:
    start, end = _span(data, calendar)
    return start < hi and (end > lo or (end == start and start >= lo))


MAX_REMINDERS = 5
"""Events resource: ``reminders.overrides`` holds at most 5, each 0 to 40320 minutes (4 weeks)."""


def _validate(body: dict[str, Any], calendar: _Calendar) -> None:
    """What Google refuses in an event body: missing start/end, a zone-less time in a series,
    mixed all-day/timed bounds, an end before the start, an unknown zone."""
    for name in ("start", "end"):
        value = body.get(name)
        if not isinstance(value, dict) or not (value.get("date") or value.get("dateTime")):
            raise _Fault(400, "required", f"Missing {name} time.")
        if value.get("timeZone"):
            try:
                ZoneInfo(value["timeZone"])
            except (KeyError, ValueError):
                raise _Fault(400, "invalid", f"Invalid time zone definition for {name} time.") from None
        if body.get("recurrence") and value.get("dateTime") and not value.get("timeZone"):
            raise _Fault(400, "invalid", f"Missing time zone definition for {name} time.")
    if bool(body["start"].get("date")) != bool(body["end"].get("date")):
        raise _Fault(400, "invalid", "Start and end times must either both be date or both be dateTime.")
    start, end = _span(body, calendar)
    if end < start:
        raise _Fault(400, "timeRangeEmpty", "The specified time range is empty.", "calendar")
    overrides = (body.get("reminders") or {}).get("overrides") or []
    if len(overrides) > MAX_REMINDERS:
        raise _Fault(400, "cannotUseMoreThan5Reminders", "Cannot specify more than 5 override reminders.")
    for reminder in overrides:
        if reminder.get("method") not in ("email", "popup") or not 0 <= int(reminder.get("minutes", -1)) <= 40320:
            raise _Fault(400, "invalid", "Invalid reminder: method email or popup, 0 to 40320 minutes.")
