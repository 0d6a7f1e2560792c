"""Google Calendar (Workspace) through the Calendar API v3 and ``httpx``.

Sign-in is a service account with domain-wide delegation: the connector signs an RS256 JWT
(RFC 7523 bearer grant) with the account's key, naming the user to act as in ``sub``, and trades
it for an access token at Google's token endpoint. One token is cached per user acted as, refreshed
a minute before it expires and once more when the API answers 401.

Calendar ids are Google's: a person's primary calendar is their address. With ``impersonate`` set
the connector acts as the owner of each calendar, so a secondary calendar is named
``owner@domain/CALENDAR_ID`` (that is how :meth:`GoogleConnector.calendars` lists it); otherwise
every call acts as ``subject``.

Vendor rules handled here, not by callers: freeBusy.query takes at most 50 calendars and ~90 days
(larger asks are split); 429 and 403 ``rateLimitExceeded``/``userRateLimitExceeded`` are retried
after Retry-After; lists are paged through ``nextPageToken``; the change token is the
``nextSyncToken`` (410 ``fullSyncRequired`` -> :class:`InvalidTokenError`); writes send If-Match
(412 -> :class:`PreconditionFailed`). New items are written with ``events.import`` so that Google
keeps their iCalendar UID (``events.insert`` would mint ``...@google.com``), and the calmesh marker
travels in ``extendedProperties.private``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import icalendar
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from calmesh.alarms import Reminder, alarm, reminders
from calmesh.config import secret
from calmesh.connectors import _fitting
from calmesh.connectors.base import (
    CLOCK_SKEW,
    AccessTokens,
    Adaptation,
    AuthenticationError,
    Capabilities,
    Connector,
    ConnectorError,
    ConnectorSettings,
    FreeBusyRequest,
    InvalidDataError,
    InvalidTokenError,
    NotFoundError,
    PreconditionFailed,
    RetryPolicy,
    TransientError,
    bounded_map,
    parse_retry_after,
    with_retries,
)
from calmesh.connectors.settings import GoogleSettings
from calmesh.model import (
    MARKER_PROPERTY,
    Attendee,
    BusyPeriod,
    BusyType,
    CalendarInfo,
    CalendarItem,
    ChangeSet,
    Classification,
    Event,
    EventStatus,
    ItemRef,
    PartStat,
    PersonFreeBusy,
    Problem,
    ProblemCode,
    Role,
    Temporal,
    Window,
    as_utc,
)
from calmesh.timezones import zoneinfo

MAX_FREEBUSY_CALENDARS = 50
MAX_FREEBUSY_DAYS = 90
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
BUSY_TYPE_PROPERTY = "calmesh-busy-type"
"""Private extended property keeping an explicit busy type (Google has no such field)."""
MAX_REMINDERS, MAX_REMINDER_MINUTES = 5, 40320
"""``reminders.overrides``: at most 5, each at most four weeks before the start."""
MAX_PROPERTY_KEY, MAX_PROPERTY_VALUE = 44, 1024
"""Google silently drops extended properties with longer keys: refuse them instead."""
_RETRYABLE_403 = {"rateLimitExceeded", "userRateLimitExceeded"}
_EXPIRED_SYNC = {"fullSyncRequired", "updatedMinTooLongAgo"}
_QUIET = {"sendUpdates": "none"}
"""On every write that could mail guests: calmesh's copies and edits must never send invitations,
updates or cancellations (the organizer's own calendar does that); ``events.import`` never sends."""
_PARTSTAT_IN = {"needsAction": PartStat.NEEDS_ACTION, "accepted": PartStat.ACCEPTED,
                "declined": PartStat.DECLINED, "tentative": PartStat.TENTATIVE}
_PARTSTAT_OUT = {v: k for k, v in _PARTSTAT_IN.items()} | {PartStat.DELEGATED: "needsAction"}
_VISIBILITY_IN = {"private": Classification.PRIVATE, "confidential": Classification.CONFIDENTIAL}
_VISIBILITY_OUT = {Classification.PUBLIC: "default", Classification.PRIVATE: "private",
                   Classification.CONFIDENTIAL: "confidential"}
_STATUS_IN = {"tentative": EventStatus.TENTATIVE, "cancelled": EventStatus.CANCELLED}


# ----------------------------------------------------------------------------------- credentials
class ServiceAccount:
    """A service account key (the JSON file Google issues) and the JWT assertions it signs."""

    def __init__(self, info: dict[str, Any]) -> None:
        if info.get("type") != "service_account":
            raise ValueError("the key is not a service account key (\"type\" is not \"service_account\")")
        missing = [k for k in ("client_email", "private_key") if not info.get(k)]
        if missing:
            raise ValueError(f"the service account key lacks {', '.join(missing)}")
        self.email = str(info["client_email"])
        self.key_id = str(info.get("private_key_id") or "")
        key = serialization.load_pem_private_key(str(info["private_key"]).encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the service account key is not an RSA key")
        self._key = key

    @classmethod
    def load(cls, value: str, base_dir: str | None = None) -> ServiceAccount:
        """From the JSON text itself or a path to it."""
        text = value.strip()
        if not text.startswith("{"):
            path = Path(text).expanduser()
            if not path.is_absolute() and base_dir:
                path = Path(base_dir) / path
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"cannot read the service account key {path}: {exc.strerror}") from exc
        try:
            info = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"the service account key is not JSON: {exc}") from exc
        if not isinstance(info, dict):
            raise ValueError("the service account key is not a JSON object")
        return cls(info)

    def assertion(self, audience: str, scopes: Sequence[str], subject: str | None, now: float | None = None) -> str:
        """A signed RS256 JWT for the RFC 7523 bearer grant, valid for one hour."""
        issued = int(now if now is not None else time.time())
        header = {"alg": "RS256", "typ": "JWT", **({"kid": self.key_id} if self.key_id else {})}
        claims: dict[str, Any] = {"iss": self.email, "scope": " ".join(scopes), "aud": audience,
                                  "iat": issued, "exp": issued + 3600}
        if subject:
            claims["sub"] = subject
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ----------------------------------------------------------------------------------- connector
class GoogleConnector(Connector):
    """Read and write Google Workspace calendars and free/busy through the Calendar API v3."""

    kind: ClassVar[str] = "google"
    Settings: ClassVar[type[ConnectorSettings]] = GoogleSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        read=True, write=True, changes=True, native_freebusy=True,
        freebusy_batch=MAX_FREEBUSY_CALENDARS, max_freebusy_days=MAX_FREEBUSY_DAYS,
    )
    settings: GoogleSettings

    def __init__(self, name: str, settings: ConnectorSettings) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, GoogleSettings)
        raw = secret(settings.credentials_env, f"platforms.{name}.credentials_env") or ""
        try:
            self._account = ServiceAccount.load(raw, settings.base_dir)
        except ValueError as exc:
            raise AuthenticationError(name, str(exc)) from exc
        self._http = httpx.Client(timeout=settings.timeout, headers={"Accept": "application/json"})
        self._tokens = AccessTokens(self._fetch_token)
        self._policy = RetryPolicy(attempts=settings.retries, max_delay=settings.max_retry_wait)
        self.sleep: Callable[[float], None] = time.sleep
        """How retries wait; tests replace it to observe Retry-After without sleeping."""
        self._default_zone = zoneinfo(settings.timezone)

    # ------------------------------------------------------------------------------- transport
    def _fetch_token(self, subject: str | None) -> tuple[str, float]:
        form = {"grant_type": JWT_BEARER,
                "assertion": self._account.assertion(self.settings.token_url, self.settings.scopes, subject)}
        try:
            response = self._http.post(self.settings.token_url, data=form)
        except httpx.HTTPError as exc:
            raise TransientError(self.name, f"token endpoint unreachable: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(self.name, f"token endpoint answered {response.status_code}",
                                 retry_after=parse_retry_after(response.headers.get("Retry-After")))
        body = _json(response)
        if response.status_code != 200 or "access_token" not in body:
            detail = body.get("error_description") or body.get("error") or response.text[:200]
            who = f" acting as {subject}" if subject else ""
            raise AuthenticationError(self.name, f"token request{who} refused: {detail}")
        return str(body["access_token"]), float(body.get("expires_in", 3599))

    def _request(self, method: str, path: str, *, subject: str | None, params: dict[str, str] | None = None,
                 body: Any = None, headers: dict[str, str] | None = None, item: str | None = None) -> httpx.Response:
        """One API call with bounded retries on throttling/transport errors and one token refresh
        on 401; HTTP errors become connector errors."""
        refreshed = False
        url = self.settings.base_url.rstrip("/") + path

        def attempt() -> httpx.Response:
            nonlocal refreshed
            token = self._tokens.get(subject)
            auth = {"Authorization": f"Bearer {token}", **(headers or {})}
            try:
                response = self._http.request(method, url, params=params, json=body, headers=auth)
            except httpx.HTTPError as exc:
                raise TransientError(self.name, f"{method} {path}: {exc}", item=item) from exc
            if response.status_code == 401 and not refreshed:
                refreshed = True
                self._tokens.get(subject, rejected=token)
                return attempt()
            self._raise_for(response, method, path, item)
            return response

        return with_retries(attempt, policy=self._policy, sleep=self.sleep)

    def _raise_for(self, response: httpx.Response, method: str, path: str, item: str | None) -> None:
        status = response.status_code
        if status < 400:
            return
        error = _json(response).get("error")
        error = error if isinstance(error, dict) else {}
        reasons = {str(e.get("reason", "")) for e in error.get("errors") or [] if isinstance(e, dict)}
        what = f"{method} {path}: {status} {','.join(sorted(reasons)) or 'error'}: {error.get('message', '')}"
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429 or (status == 403 and reasons & _RETRYABLE_403) or status in (500, 502, 503, 504):
            raise TransientError(self.name, what, item=item, retry_after=retry_after)
        if status == 401 or (status == 403 and not reasons & {"quotaExceeded", "dailyLimitExceeded"}):
            raise AuthenticationError(self.name, what, item=item)
        if status == 410 and reasons & _EXPIRED_SYNC:
            raise InvalidTokenError(self.name, what, item=item)
        if status in (404, 410):
            raise NotFoundError(self.name, what, item=item)
        if status == 412:
            raise PreconditionFailed(self.name, what, item=item)
        if status >= 500 or status == 403:
            raise ConnectorError(self.name, what, item=item)
        raise InvalidDataError(self.name, what, item=item)

    def _pages(self, path: str, params: dict[str, str], subject: str | None) -> Iterator[dict[str, Any]]:
        """Every page of a list, following ``nextPageToken``; the last carries ``nextSyncToken``."""
        params = {"maxResults": str(self.settings.page_size), **params}
        while True:
            page = _json(self._request("GET", path, params=params, subject=subject))
            yield page
            token = page.get("nextPageToken")
            if not token:
                return
            params = {**params, "pageToken": str(token)}

    # ------------------------------------------------------------------------------- addressing
    def _split(self, calendar: str) -> tuple[str | None, str]:
        """calmesh calendar id -> (user to act as, Google calendar id)."""
        owner, slash, google_id = calendar.partition("/")
        if not slash:
            owner, google_id = calendar, calendar
        if not google_id:
            raise NotFoundError(self.name, f"calendar id {calendar!r} names no calendar")
        acting = owner if self.settings.impersonate else self.settings.subject
        return acting, google_id

    def _events_path(self, calendar: str, event_id: str | None = None) -> tuple[str | None, str]:
        subject, google_id = self._split(calendar)
        path = f"/calendars/{quote(google_id, safe='@')}/events"
        return subject, path + (f"/{quote(event_id, safe='')}" if event_id else "")

    # ------------------------------------------------------------------------------- reading
    def calendars(self) -> list[CalendarInfo]:
        """The calendar list of each of ``mailboxes`` (acting as each) with ``impersonate``, else
        the calendar list of ``subject`` (or of the service account itself)."""
        if self.settings.impersonate:
            users = self.settings.mailboxes or ([self.settings.subject] if self.settings.subject else [])
            listings: list[str | None] = list(users)
        else:
            listings = [self.settings.subject]
        found: list[CalendarInfo] = []
        for acting in listings:
            for page in self._pages("/users/me/calendarList", {}, acting):
                for entry in page.get("items") or []:
                    found.append(self._calendar_info(entry, acting))
        return found

    def _calendar_info(self, entry: dict[str, Any], acting: str | None) -> CalendarInfo:
        google_id = str(entry["id"])
        role = entry.get("accessRole")
        if entry.get("primary") or (role == "owner" and acting):
            owner: str | None = acting
        else:  # a primary calendar's id is its owner's address; group calendars have no person
            owner = google_id if not google_id.endswith("calendar.google.com") else None
        prefixed = self.settings.impersonate and acting and google_id != acting
        return CalendarInfo(
            id=f"{acting}/{google_id}" if prefixed else google_id,
            name=entry.get("summaryOverride") or entry.get("summary") or google_id, platform=self.name,
            owner=owner.lower() if owner else None, read_only=role not in ("owner", "writer"),
            color=entry.get("backgroundColor") or None, timezone=entry.get("timeZone") or None,
        )

    def calendars_of(self, email: str) -> list[str]:
        """A person's primary calendar is named by their address: no calendar list needed."""
        return [email.lower()]

    def _list(self, calendar: str, params: dict[str, str]) -> tuple[list[dict[str, Any]], ZoneInfo, str | None]:
        """Every event of a list call, the calendar's zone and the final ``nextSyncToken``."""
        subject, path = self._events_path(calendar)
        values: list[dict[str, Any]] = []
        zone, sync_token = self._default_zone, None
        for page in self._pages(path, params, subject):
            values.extend(page.get("items") or [])
            if page.get("timeZone"):
                zone = zoneinfo(page["timeZone"], self._default_zone.key)
            sync_token = page.get("nextSyncToken") or sync_token
        return values, zone, sync_token

    def events(self, calendar: str, window: Window) -> tuple[list[Event], list[Problem]]:
        params = {"singleEvents": "true", "orderBy": "startTime",
                  "timeMin": _rfc3339(window.start), "timeMax": _rfc3339(window.end)}
        listing, zone, _ = self._list(calendar, params)
        events: list[Event] = []
        problems: list[Problem] = []
        for data in listing:
            if data.get("status") == "cancelled":
                continue
            try:
                events.append(event_from_google(data, zone))
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(_unreadable(self.name, exc, data, data.get("id")))
        return events, problems

    def items(self, calendar: str, window: Window | None = None) -> tuple[list[CalendarItem], list[Problem]]:
        params = {"singleEvents": "false", "showDeleted": "true"}
        if window is not None:
            params |= {"timeMin": _rfc3339(window.start), "timeMax": _rfc3339(window.end)}
        listing, zone, _ = self._list(calendar, params)
        if window is not None:
            listing = self._whole_series(calendar, listing)
        return self._assemble(calendar, listing, zone)

    def fetch(self, calendar: str, ids: Sequence[str]) -> tuple[list[CalendarItem], list[Problem]]:
        """The events at these ids (no listing of the calendar): each read on its own, then with
        its exceptions by its ``iCalUID`` (a list call, which also names the calendar's zone).
        Those gone (404, or kept as ``cancelled``, as Google keeps deleted events) are left out."""
        items: list[CalendarItem] = []
        problems: list[Problem] = []
        for event_id in dict.fromkeys(ids):
            subject, path = self._events_path(calendar, event_id)
            try:
                data = _json(self._request("GET", path, subject=subject, item=event_id))
            except NotFoundError:
                continue
            if data.get("status") == "cancelled" or data.get("recurringEventId"):
                continue  # deleted; or an instance, which is no item of its own
            listing, zone, _ = self._list(calendar, {"iCalUID": str(data.get("iCalUID") or ""),
                                                     "singleEvents": "false", "showDeleted": "true"})
            ours = [d for d in listing if event_id in (str(d.get("id")), str(d.get("recurringEventId")))] or [data]
            found, issues = self._assemble(calendar, ours, zone)
            items += found
            problems += issues
        return items, problems

    def _whole_series(self, calendar: str, listing: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A windowed or incremental listing holds only some exceptions of a series: re-read every
        series it touches whole (master and all exceptions, by ``iCalUID``)."""
        uids = {str(d["iCalUID"]) for d in listing
                if d.get("iCalUID") and (d.get("recurrence") or d.get("recurringEventId"))}
        whole = [d for d in listing if str(d.get("iCalUID")) not in uids]
        for uid in sorted(uids):
            whole.extend(self._list(calendar, {"iCalUID": uid, "singleEvents": "false", "showDeleted": "true"})[0])
        return whole

    def _assemble(self, calendar: str, listing: list[dict[str, Any]],
                  zone: ZoneInfo) -> tuple[list[CalendarItem], list[Problem]]:
        """Group masters with their exceptions (``recurringEventId``): modified instances become
        overrides, cancelled ones EXDATEs. Deleted single events are left out."""
        problems: list[Problem] = []
        masters: dict[str, dict[str, Any]] = {}
        exceptions: dict[str, list[dict[str, Any]]] = {}
        for data in listing:
            parent = data.get("recurringEventId")
            if parent:
                exceptions.setdefault(str(parent), []).append(data)
            elif data.get("status") != "cancelled":
                masters[str(data["id"])] = data
        for parent in exceptions.keys() - masters.keys():  # an exception in the window, its series before it
            subject, path = self._events_path(calendar, parent)
            try:
                master = _json(self._request("GET", path, subject=subject, item=parent))
            except NotFoundError:
                continue
            if master.get("status") != "cancelled":
                masters[parent] = master
        items: list[CalendarItem] = []
        for event_id, data in masters.items():
            try:
                items.append(self._item(calendar, data, exceptions.get(event_id, []), zone))
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(_unreadable(self.name, exc, data, event_id))
        return items, problems

    def _item(self, calendar: str, data: dict[str, Any], exceptions: list[dict[str, Any]], zone: ZoneInfo) -> CalendarItem:
        master = event_from_google(data, zone)
        overrides: list[Event] = []
        for exc_data in exceptions:
            if exc_data.get("status") == "cancelled":
                original = _temporal(exc_data.get("originalStartTime"), _event_zone(data, zone))
                if original is not None and original not in master.exdate:
                    master.exdate.append(original)
            else:
                override = event_from_google(exc_data, zone)
                override.uid = master.uid
                overrides.append(override)
        overrides.sort(key=lambda e: as_utc(e.recurrence_id or e.start, zone))
        return CalendarItem(master.uid, [master, *overrides], ItemRef(calendar, str(data["id"]), data.get("etag")))

    def changes(self, calendar: str, token: str | None) -> ChangeSet:
        deleted: list[ItemRef] = []
        if token is None:
            listing, zone, new_token = self._list(calendar, {"singleEvents": "false", "showDeleted": "true"})
        else:
            listing, zone, new_token = self._list(calendar, {"syncToken": token, "singleEvents": "false"})
            deleted = [ItemRef(calendar, str(d["id"]), d.get("etag")) for d in listing
                       if d.get("status") == "cancelled" and not d.get("recurringEventId")]
            gone = {ref.id for ref in deleted}
            listing = self._whole_series(calendar, [d for d in listing if str(d["id"]) not in gone])
        changed, problems = self._assemble(calendar, listing, zone)
        if problems:  # leaving an item out would lose its change, or read as its deletion
            raise InvalidDataError(self.name, "; ".join(p.message for p in problems), item=problems[0].item)
        return ChangeSet(changed, deleted, new_token, complete=token is None)

    # ------------------------------------------------------------------------------- free/busy
    def freebusy(self, people: Sequence[FreeBusyRequest], window: Window) -> list[PersonFreeBusy]:
        results = {p.email: PersonFreeBusy(p.email, window, platform=self.name) for p in people}
        pairs = [(p.email, self._split(c)[1]) for p in people for c in (p.calendars or [p.email])]
        calls = [(part, pairs[i:i + MAX_FREEBUSY_CALENDARS])
                 for part in window.split(timedelta(days=MAX_FREEBUSY_DAYS))
                 for i in range(0, len(pairs), MAX_FREEBUSY_CALENDARS)]

        def ask(call: tuple[Window, list[tuple[str, str]]]) -> Any:
            part, batch = call
            subject = self.settings.subject or (self.settings.mailboxes or [batch[0][0]])[0]
            body = {"timeMin": _rfc3339(part.start), "timeMax": _rfc3339(part.end), "timeZone": "UTC",
                    "items": [{"id": google_id} for google_id in dict.fromkeys(g for _, g in batch)]}
            return _json(self._request("POST", "/freeBusy", body=body, subject=subject))

        for (part, batch), answer in zip(calls, bounded_map(ask, calls, self.gate), strict=True):
            calendars = {str(k).lower(): v for k, v in (answer.get("calendars") or {}).items()}
            for email, google_id in batch:
                self._add_freebusy(results[email], google_id, calendars.get(google_id.lower()), part)
        return [results[p.email] for p in people]

    def _add_freebusy(self, person: PersonFreeBusy, google_id: str, info: dict[str, Any] | None, part: Window) -> None:
        errors = (info or {}).get("errors") or ([] if info is not None else [{"reason": "missing from the answer"}])
        if errors:
            reasons = ", ".join(str(e.get("reason", "error")) for e in errors)
            person.errors.append(Problem(self.name, f"{google_id}: {reasons}", person.email))
            person.busy.append(BusyPeriod(part.start, part.end, BusyType.UNKNOWN, self.name))
            return
        for period in (info or {}).get("busy") or []:
            clipped = part.clip(_instant(period["start"]), _instant(period["end"]))
            if clipped is not None:
                person.busy.append(BusyPeriod(clipped[0], clipped[1], BusyType.BUSY, self.name))

    # ------------------------------------------------------------------------------- writing
    def fit(self, item: CalendarItem) -> tuple[CalendarItem, list[Adaptation]]:
        """Google keeps RRULE, RDATE and EXDATE lines as they are, but has no
        ``RANGE=THISANDFUTURE`` (each instance is changed alone), takes only IANA zone names (a
        series in a zone of its object's own is spelled out), and up to 5 reminders."""
        item, notes = _fitting.without_ranges(self.name, item)
        own = _fitting.own_zone(self.name, item.master)
        if own is not None:
            item, spelled = _fitting.spell_out(self.name, item, own[0], _fitting.refuse(own[1]), "VTIMEZONE")
            notes += spelled
        return item, notes + _fitting.reminder_notes(item, MAX_REMINDERS, MAX_REMINDER_MINUTES)

    def put(self, calendar: str, item: CalendarItem, if_match: str | None = None) -> ItemRef:
        item = self.fit(item)[0]
        master = item.master or item.components[0]
        try:
            body = event_to_google(master, self._default_zone)
        except ValueError as exc:
            raise InvalidDataError(self.name, str(exc), item=item.uid) from exc
        subject, path = self._events_path(calendar)
        if item.ref is None:
            body["iCalUID"] = item.uid
            created = _json(self._request("POST", path + "/import", body=body, subject=subject, item=item.uid))
            event_id = str(created["id"])
        else:
            event_id = item.ref.id
            headers = {"If-Match": if_match} if if_match else None
            self._request("PUT", f"{path}/{quote(event_id, safe='')}", body=body, headers=headers,
                          params=_QUIET, subject=subject, item=item.uid)
        if master.is_recurring_master:
            for override in item.overrides:
                self._put_override(calendar, event_id, master, override)
        latest = _json(self._request("GET", f"{path}/{quote(event_id, safe='')}", subject=subject, item=item.uid))
        return ItemRef(calendar, event_id, latest.get("etag"))

    def _put_override(self, calendar: str, master_id: str, master: Event, override: Event) -> None:
        """A moved or changed occurrence is written onto its instance (found by ``originalStart``)."""
        assert override.recurrence_id is not None
        subject, path = self._events_path(calendar, master_id)
        zone = _zone_of(master, self._default_zone)
        original = override.recurrence_id
        params = {"originalStart": original.isoformat() if not isinstance(original, datetime)
                  else _rfc3339(as_utc(original, zone)), "showDeleted": "true"}
        instances = _json(self._request("GET", path + "/instances", params=params, subject=subject,
                                        item=master.uid)).get("items") or []
        if not instances:
            raise InvalidDataError(self.name, f"no occurrence at {original} to override", item=master.uid)
        try:
            body = event_to_google(override, self._default_zone)
        except ValueError as exc:
            raise InvalidDataError(self.name, str(exc), item=master.uid) from exc
        body.pop("recurrence", None)
        instance_id = str(instances[0]["id"])
        self._request("PUT", self._events_path(calendar, instance_id)[1], body=body, params=_QUIET, subject=subject,
                      item=master.uid)

    def delete(self, calendar: str, ref: ItemRef, if_match: str | None = None) -> None:
        subject, path = self._events_path(calendar, ref.id)
        headers = {"If-Match": if_match} if if_match else None
        self._request("DELETE", path, headers=headers, params=_QUIET, subject=subject, item=ref.id)

    def deleted_since(self, calendar: str, copies: Mapping[str, str], since: datetime) -> set[str]:
        """UIDs of ``copies`` that Google lists, asked by ``iCalUID`` with ``showDeleted``, as
        cancelled events carrying their marker and created after ``since`` (less
        :data:`CLOCK_SKEW`): Google keeps a deleted event, cancelled, where a change feed or
        this query finds it."""
        floor = since - CLOCK_SKEW
        gone = set()
        for uid, marker in sorted(copies.items()):
            listing, _, _ = self._list(calendar, {"iCalUID": uid, "showDeleted": "true", "singleEvents": "false"})
            for data in listing:
                private = (data.get("extendedProperties") or {}).get("private") or {}
                created = _instant(data["created"]) if data.get("created") else None
                if (data.get("status") == "cancelled" and private.get(MARKER_PROPERTY) == marker
                        and created is not None and created >= floor):
                    gone.add(uid)
        return gone

    def check(self) -> list[str]:
        subject = self.settings.subject or (self.settings.mailboxes[0] if self.settings.mailboxes else None)
        self._tokens.get(subject, force=True)
        who = f" acting as {subject}" if subject else ""
        return [f"token: service account {self._account.email}{who} accepted", *super().check()]

    def close(self) -> None:
        self._http.close()


# ----------------------------------------------------------------------------------- mapping
def event_from_google(data: dict[str, Any], calendar_zone: ZoneInfo) -> Event:
    """Google ``Event`` JSON -> model event; instances keep ``originalStartTime`` as recurrence id."""
    zone = _event_zone(data, calendar_zone)
    start = _temporal(data.get("start"), zone)
    if start is None:
        raise ValueError("event has no start")
    end = _temporal(data.get("end"), zone)
    private = dict((data.get("extendedProperties") or {}).get("private") or {})
    busy_type = BusyType.from_fbtype(private.pop(BUSY_TYPE_PROPERTY)) if BUSY_TYPE_PROPERTY in private else None
    if data.get("eventType") == "outOfOffice":
        busy_type = BusyType.BUSY_UNAVAILABLE
    # Google names an organizer (the calendar's owner) on every event; iCalendar has ORGANIZER only
    # on group-scheduled ones (RFC 5545 3.8.4.3), so a plain appointment is read without it:
    # otherwise every copy calmesh writes here would read back changed.
    organizer = (data.get("organizer") or {}) if data.get("attendees") else {}
    event = Event(
        uid=str(data.get("iCalUID") or data["id"]),
        start=start,
        end=end,
        summary=data.get("summary"),
        description=data.get("description"),
        location=data.get("location"),
        recurrence_id=_temporal(data.get("originalStartTime"), zone) if data.get("recurringEventId") else None,
        transparent=data.get("transparency") == "transparent" or data.get("eventType") == "workingLocation",
        status=_STATUS_IN.get(str(data.get("status")), EventStatus.CONFIRMED),
        classification=_VISIBILITY_IN.get(str(data.get("visibility")), Classification.PUBLIC),
        sequence=int(data.get("sequence") or 0),
        last_modified=_instant(data["updated"]) if data.get("updated") else None,
        created=_instant(data["created"]) if data.get("created") else None,
        organizer=Attendee(organizer["email"], organizer.get("displayName"), PartStat.ACCEPTED, Role.CHAIR)
        if organizer.get("email") else None,
        attendees=[Attendee(a["email"], a.get("displayName"),
                            _PARTSTAT_IN.get(str(a.get("responseStatus")), PartStat.NEEDS_ACTION),
                            Role.OPTIONAL if a.get("optional") else Role.REQUIRED)
                   for a in data.get("attendees") or [] if a.get("email")],
        busy_type=busy_type,
        tzid=zone.key if isinstance(start, datetime) else None,
        extra={str(k): str(v) for k, v in private.items() if str(k).upper().startswith("X-")},
        alarms=[alarm(Reminder(int(r.get("minutes") or 0), r.get("method") == "email"))
                for r in (data.get("reminders") or {}).get("overrides") or []]
        if not (data.get("reminders") or {}).get("useDefault", True) else [],
    )
    if data.get("recurrence"):
        event.rrule, event.rdate, event.exdate = parse_recurrence(data["recurrence"], zone)
    return event


def event_to_google(event: Event, default_zone: ZoneInfo) -> dict[str, Any]:
    """A model event -> Google ``Event`` JSON for import/update (UID, id and etag left to callers).
    Raises ValueError for what Google would drop or refuse."""
    zone = _zone_of(event, default_zone)
    body: dict[str, Any] = {
        "start": _when(event.start, zone),
        "end": _when(event.effective_end(), zone),
        "summary": event.summary or "",
        "description": event.description or "",
        "location": event.location or "",
        "transparency": "transparent" if event.transparent else "opaque",
        "status": event.status.value.lower(),
        "visibility": _VISIBILITY_OUT[event.classification],
        "sequence": event.sequence,
        "attendees": [{"email": a.email, **({"displayName": a.name} if a.name else {}),
                       "responseStatus": _PARTSTAT_OUT[a.partstat], "optional": a.role is Role.OPTIONAL}
                      for a in event.attendees],
    }
    kept = reminders(event.alarms, MAX_REMINDERS, MAX_REMINDER_MINUTES)[0]
    body["reminders"] = {"useDefault": False,  # else the calendar's default reminders apply
                         "overrides": [{"method": "email" if r.email else "popup", "minutes": r.minutes}
                                       for r in kept]}
    if event.organizer is not None:
        body["organizer"] = {"email": event.organizer.email,
                             **({"displayName": event.organizer.name} if event.organizer.name else {})}
    if event.rrule or event.rdate or event.exdate:
        body["recurrence"] = recurrence_lines(event, zone)
    private = dict(event.extra)
    if event.busy_type is not None:
        private[BUSY_TYPE_PROPERTY] = event.busy_type.fbtype
    for key, value in private.items():
        if len(key) > MAX_PROPERTY_KEY or len(value) > MAX_PROPERTY_VALUE:
            raise ValueError(f"extended property {key[:60]!r} is longer than Google keeps "
                             f"({MAX_PROPERTY_KEY} characters for a key, {MAX_PROPERTY_VALUE} for a value)")
    if private:
        body["extendedProperties"] = {"private": private}
    return body


def recurrence_lines(event: Event, zone: ZoneInfo) -> list[str]:
    """RRULE/RDATE/EXDATE lines of Google's ``recurrence`` field (iCalendar syntax, via icalendar);
    timed dates are written in the event's zone."""
    component = icalendar.Event()
    for rule in event.rrule:
        component.add("RRULE", icalendar.vRecur.from_ical(rule.removeprefix("RRULE:")))
    for name, values in (("RDATE", event.rdate), ("EXDATE", event.exdate)):
        for value in values:
            component.add(name, _in_zone(value, zone))
    text = component.to_ical().decode().replace("\r\n ", "")
    return [line for line in text.split("\r\n") if line and not line.startswith(("BEGIN:", "END:"))]


def parse_recurrence(lines: Sequence[str], zone: ZoneInfo) -> tuple[list[str], list[Temporal], list[Temporal]]:
    """Google's ``recurrence`` lines -> (RRULEs, RDATEs, EXDATEs); dates without a zone are local."""
    try:
        component = icalendar.Event.from_ical("BEGIN:VEVENT\r\n" + "\r\n".join(lines) + "\r\nEND:VEVENT\r\n")
    except ValueError as exc:
        raise ValueError(f"unreadable recurrence {list(lines)!r}: {exc}") from exc
    rules = component.get("RRULE")
    rrule = [r.to_ical().decode() for r in (rules if isinstance(rules, list) else [rules] if rules else [])]
    dates: dict[str, list[Temporal]] = {}
    for name in ("RDATE", "EXDATE"):
        raw = component.get(name)
        found: list[Temporal] = []
        for prop in raw if isinstance(raw, list) else [raw] if raw is not None else []:
            for dt in getattr(prop, "dts", []):
                value = dt.dt
                if isinstance(value, datetime):
                    value = (value.replace(tzinfo=zone) if value.tzinfo is None else value).astimezone(zone)
                if isinstance(value, date):
                    found.append(value)
        dates[name] = found
    return rrule, dates["RDATE"], dates["EXDATE"]


# ----------------------------------------------------------------------------------- helpers
def _json(response: httpx.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _event_zone(data: dict[str, Any], calendar_zone: ZoneInfo) -> ZoneInfo:
    """The event's own zone (``start.timeZone``), else the calendar's."""
    name = (data.get("start") or {}).get("timeZone") or (data.get("originalStartTime") or {}).get("timeZone")
    return zoneinfo(name, calendar_zone.key) if name else calendar_zone


def _temporal(value: dict[str, Any] | None, zone: ZoneInfo) -> Temporal | None:
    """A Google ``EventDateTime`` (``date`` or ``dateTime`` [+ ``timeZone``]) -> date or aware datetime."""
    if not value:
        return None
    if value.get("date"):
        return date.fromisoformat(value["date"])
    if not value.get("dateTime"):
        return None
    parsed = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
    own = zoneinfo(value["timeZone"], zone.key) if value.get("timeZone") else zone
    return parsed.replace(tzinfo=own) if parsed.tzinfo is None else parsed.astimezone(own)


def _zone_of(event: Event, default: ZoneInfo) -> ZoneInfo:
    if event.tzid:
        return zoneinfo(event.tzid, default.key)
    if isinstance(event.start, datetime) and isinstance(event.start.tzinfo, ZoneInfo):
        return event.start.tzinfo
    return default


def _in_zone(value: Temporal, zone: ZoneInfo) -> Temporal:
    if not isinstance(value, datetime):
        return value
    return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)


def _when(value: Temporal, zone: ZoneInfo) -> dict[str, str]:
    if not isinstance(value, datetime):
        return {"date": value.isoformat()}
    return {"dateTime": _in_zone(value, zone).isoformat(), "timeZone": zone.key}


def _unreadable(platform: str, exc: Exception, data: dict[str, Any], event_id: str | None) -> Problem:
    """An event Google sent that could not be read, named (and marked private) as Google says."""
    return Problem(platform, f"unreadable event: {exc}", data.get("iCalUID") or event_id,
                   code=ProblemCode.UNREADABLE, title=str(data.get("summary") or "")[:60] or None,
                   private=_VISIBILITY_IN.get(str(data.get("visibility")), Classification.PUBLIC)
                   is not Classification.PUBLIC)
