"""Microsoft Graph calendars (Microsoft 365 / Exchange Online) through ``httpx``.

Calendar ids are ``mailbox`` for a mailbox's default calendar and ``mailbox/CALENDAR_ID`` for
another calendar of that mailbox. The connector signs in with the OAuth2 client-credentials grant
(an app registration with the ``Calendars.ReadWrite`` application permission), refreshes the token
a minute before it expires and once more when Graph answers 401 ``InvalidAuthenticationToken``.

Vendor rules handled here, not by callers: getSchedule takes at most 20 schedules and a window
shorter than 62 days (longer windows are split); 429/503/504 answers are retried after their
Retry-After; lists are paged through ``@odata.nextLink``; a ``deltaLink`` is the change token
(410 / ``syncStateNotFound`` -> :class:`InvalidTokenError`). Reads ask for UTC
(``Prefer: outlook.timezone="UTC"``) and place times back in the event's original zone; writes
name zones the way ``zone_names`` says (Windows names, like Outlook, or IANA names).

Graph assigns ``iCalUId`` itself (it is read-only), so an event calmesh creates here gets a new
UID; the calmesh marker (a named extended property) links it to its source.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from calmesh.alarms import Reminder, alarm, reminders
from calmesh.config import secret
from calmesh.connectors import _exchange_common as ex
from calmesh.connectors.base import (
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
from calmesh.connectors.settings import GraphSettings
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
    WorkingHours,
    WorkingPeriod,
    as_utc,
)
from calmesh.timezones import to_iana, to_windows

MAX_SCHEDULES = 20
MAX_SCHEDULE_DAYS = 61
"""getSchedule refuses windows of 62 days or more."""
_EXPAND_MARKER = f"singleValueExtendedProperties($filter=id eq '{ex.GRAPH_MARKER_ID}')"


def _parse_dt(value: dict[str, Any] | None) -> datetime | None:
    """A Graph ``dateTimeTimeZone`` -> aware datetime (Windows or IANA zone names)."""
    if not value or not value.get("dateTime"):
        return None
    text = value["dateTime"].split(".")[0].rstrip("Z")
    return datetime.fromisoformat(text).replace(tzinfo=ex.zone_of(value.get("timeZone")))


def _parse_instant(text: str | None) -> datetime | None:
    """An ISO-8601 instant such as ``lastModifiedDateTime`` or ``originalStart``."""
    if not text:
        return None
    head, _, _ = text.replace("Z", "").partition(".")
    return datetime.fromisoformat(head).replace(tzinfo=UTC)


class GraphConnector(Connector):
    """Read and write Exchange Online calendars and free/busy through Microsoft Graph."""

    kind: ClassVar[str] = "graph"
    Settings: ClassVar[type[ConnectorSettings]] = GraphSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        read=True, write=True, changes=True, native_freebusy=True,
        freebusy_batch=MAX_SCHEDULES, max_freebusy_days=MAX_SCHEDULE_DAYS, working_hours=True,
        sequence=False,  # an appointment has no SEQUENCE; a meeting's is the service's own
        answers=False,  # an attendee's status is the service's to set, from the responses it receives
    )
    settings: GraphSettings


    @property
    def keeps_uids(self) -> bool:
        return False  # an event's iCalUId is Graph's own, read-only
    def __init__(self, name: str, settings: ConnectorSettings) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, GraphSettings)
        self._secret = secret(settings.client_secret_env, f"platforms.{name}.client_secret_env")
        self._http = httpx.Client(timeout=settings.timeout, headers={"Accept": "application/json"})
        self._token = AccessTokens(lambda _subject: self._fetch_token())
        self._policy = RetryPolicy(attempts=settings.retries, max_delay=settings.max_retry_wait)
        self.sleep: Callable[[float], None] = time.sleep
        """How retries wait; tests replace it to observe Retry-After without sleeping."""
        self._default_zone = settings.timezone or "UTC"

    # ------------------------------------------------------------------------------- transport
    def _fetch_token(self) -> tuple[str, float]:
        url = self.settings.token_url or (
            f"https://login.microsoftonline.com/{self.settings.tenant_id}/oauth2/v2.0/token")
        form = {"grant_type": "client_credentials", "client_id": self.settings.client_id,
                "client_secret": self._secret or "", "scope": self.settings.scope}
        try:
            response = self._http.post(url, data=form)
        except httpx.HTTPError as exc:
            raise TransientError(self.name, f"token endpoint unreachable: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(self.name, f"token endpoint answered {response.status_code}",
                                 retry_after=parse_retry_after(response.headers.get("Retry-After")))
        body = _json(response)
        if response.status_code != 200 or "access_token" not in body:
            detail = body.get("error_description") or body.get("error") or response.text[:200]
            raise AuthenticationError(self.name, f"token request refused: {detail}")
        return str(body["access_token"]), float(body.get("expires_in", 3599))

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else self.settings.base_url.rstrip("/") + path

    def _request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                 body: Any = None, headers: dict[str, str] | None = None, item: str | None = None) -> httpx.Response:
        """One Graph call with bounded retries on throttling/transport errors and one token
        refresh on 401; HTTP errors become connector errors."""
        refreshed = False

        def attempt() -> httpx.Response:
            nonlocal refreshed
            token = self._token.get()
            auth = {"Authorization": f"Bearer {token}",
                    "Prefer": 'outlook.timezone="UTC"', **(headers or {})}
            try:
                response = self._http.request(method, self._url(path), params=params, json=body, headers=auth)
            except httpx.HTTPError as exc:
                raise TransientError(self.name, f"{method} {path}: {exc}", item=item) from exc
            if response.status_code == 401 and not refreshed and _error_code(response) == "InvalidAuthenticationToken":
                refreshed = True
                self._token.get(rejected=token)
                return attempt()
            self._raise_for(response, method, path, item)
            return response

        return with_retries(attempt, policy=self._policy, sleep=self.sleep)

    def _raise_for(self, response: httpx.Response, method: str, path: str, item: str | None) -> None:
        status = response.status_code
        if status < 400:
            return
        code = _error_code(response)
        what = f"{method} {path.split('?')[0]}: {status} {code}: {_error_message(response)}"
        if status in (429, 503, 504):
            raise TransientError(self.name, what, item=item,
                                 retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise AuthenticationError(self.name, what, item=item)
        if status == 404:
            raise NotFoundError(self.name, what, item=item)
        if status == 412:
            raise PreconditionFailed(self.name, what, item=item)
        if status == 410 or code.lower() in ("syncstatenotfound", "resyncrequired", "syncstateinvalid"):
            raise InvalidTokenError(self.name, what, item=item)
        if status >= 500:
            raise TransientError(self.name, what, item=item)
        raise InvalidDataError(self.name, what, item=item)

    def _pages(self, path: str, params: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every page of a collection, following ``@odata.nextLink``; the last page (which may
        carry ``@odata.deltaLink``) is yielded too."""
        url: str | None = path
        while url is not None:
            page = _json(self._request("GET", url, params=params,
                                       headers={"Prefer": f'outlook.timezone="UTC", odata.maxpagesize={self.settings.page_size}'}))
            params = None  # the nextLink carries them
            yield page
            url = page.get("@odata.nextLink")

    def _values(self, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        return [value for page in self._pages(path, params) for value in page.get("value", [])]

    # ------------------------------------------------------------------------------- addressing
    @staticmethod
    def _split(calendar: str) -> tuple[str, str | None]:
        mailbox, _, cal_id = calendar.partition("/")
        if not mailbox:
            raise NotFoundError("graph", f"calendar id {calendar!r} names no mailbox")
        return mailbox, cal_id or None

    def _calendar_path(self, calendar: str) -> str:
        mailbox, cal_id = self._split(calendar)
        base = f"/users/{quote(mailbox)}"
        return f"{base}/calendars/{quote(cal_id, safe='')}" if cal_id else f"{base}/calendar"

    def _event_path(self, calendar: str, event_id: str) -> str:
        mailbox, _ = self._split(calendar)
        return f"/users/{quote(mailbox)}/events/{quote(event_id, safe='')}"

    # ------------------------------------------------------------------------------- reading
    def calendars(self) -> list[CalendarInfo]:
        found: list[CalendarInfo] = []
        for mailbox in self.settings.mailboxes:
            for cal in self._values(f"/users/{quote(mailbox)}/calendars"):
                cal_id = mailbox if cal.get("isDefaultCalendar") else f"{mailbox}/{cal['id']}"
                # a calendar shared into the mailbox is listed with its own owner
                owner = str((cal.get("owner") or {}).get("address") or mailbox).lower()
                found.append(CalendarInfo(
                    id=cal_id, name=cal.get("name") or cal_id, platform=self.name, owner=owner,
                    read_only=not cal.get("canEdit", True), color=cal.get("hexColor") or None,
                ))
        return found

    def events(self, calendar: str, window: Window) -> tuple[list[Event], list[Problem]]:
        events: list[Event] = []
        problems: list[Problem] = []
        master_uids: dict[str, str] = {}
        for data in self._calendar_view(calendar, window):
            try:
                event = self._to_event(data)
                master_id = data.get("seriesMasterId")
                if master_id:
                    # Graph gives each occurrence its own iCalUId: the series' UID is the master's.
                    if master_id not in master_uids:
                        master_uids[master_id] = self._get_event(calendar, master_id).get("iCalUId") or event.uid
                    event.uid = master_uids[master_id]
                events.append(event)
            except (ValueError, KeyError, ConnectorError) as exc:
                problems.append(_unreadable(self.name, exc, data))
        return events, problems

    def _calendar_view(self, calendar: str, window: Window) -> list[dict[str, Any]]:
        params = {"startDateTime": _iso(window.start), "endDateTime": _iso(window.end),
                  "$expand": _EXPAND_MARKER}
        return self._values(self._calendar_path(calendar) + "/calendarView", params)

    def _get_event(self, calendar: str, event_id: str, *, with_exceptions: bool = False) -> dict[str, Any]:
        expand = _EXPAND_MARKER + (",exceptionOccurrences" if with_exceptions else "")
        return _json(self._request("GET", self._event_path(calendar, event_id), params={"$expand": expand},
                                   item=event_id))

    def items(self, calendar: str, window: Window | None = None) -> tuple[list[CalendarItem], list[Problem]]:
        if window is not None:
            listing = self._calendar_view(calendar, window)
        else:
            listing = self._values(self._calendar_path(calendar) + "/events", {"$expand": _EXPAND_MARKER})
        items, unreadable = self._read_listing(calendar, listing)
        return items, [problem for _ref, problem in unreadable]

    def fetch(self, calendar: str, ids: Sequence[str]) -> tuple[list[CalendarItem], list[Problem]]:
        """The events at these ids, each read on its own (no listing of the calendar): those gone
        (404) are left out; a series is read whole, with its exceptions."""
        found: list[dict[str, Any]] = []
        for event_id in dict.fromkeys(ids):
            try:
                found.append(self._get_event(calendar, event_id))
            except NotFoundError:
                continue
        items, unreadable = self._read_listing(calendar, found)
        return items, [problem for _ref, problem in unreadable]

    def _read_listing(self, calendar: str, listing: Iterable[dict[str, Any]], *, reread: bool = False
                      ) -> tuple[list[CalendarItem], list[tuple[ItemRef, Problem]]]:
        """The items of a listing (a series read once, whole, whichever of its occurrences come
        first), and those that could not be read, by reference: a consumer must not take an
        unreadable item for a deleted one. ``reread``: the listing lacks the marker (a delta
        feed), so single events are read again on their own."""
        items: list[CalendarItem] = []
        unreadable: list[tuple[ItemRef, Problem]] = []
        seen_masters: set[str] = set()
        for data in listing:
            master_id = data.get("seriesMasterId") if data.get("type") in ("occurrence", "exception") else None
            if data.get("type") == "seriesMaster":
                master_id = data["id"]
            try:
                if master_id:
                    if master_id in seen_masters:
                        continue
                    seen_masters.add(master_id)
                    items.append(self._series(calendar, self._get_event(calendar, master_id, with_exceptions=True)))
                else:
                    items.append(self._single(calendar, self._get_event(calendar, data["id"]) if reread else data))
            except NotFoundError:
                continue  # deleted since it was listed: the next change feed says so
            except (ValueError, KeyError, ConnectorError) as exc:
                unreadable.append((ItemRef(calendar, master_id or str(data.get("id"))), _unreadable(self.name, exc, data)))
        return items, unreadable

    def _single(self, calendar: str, data: dict[str, Any]) -> CalendarItem:
        event = self._to_event(data)
        return CalendarItem(event.uid, [event], ItemRef(calendar, data["id"], data.get("@odata.etag")))

    def _series(self, calendar: str, master: dict[str, Any]) -> CalendarItem:
        """A seriesMaster with its exceptions (overrides) and cancelled occurrences (EXDATE)."""
        event = self._to_event(master)
        zone = ex.event_zone(event, self._default_zone)
        for cancelled in master.get("cancelledOccurrences") or []:
            # "OID.{masterId}.2026-11-17": the original start date in the series' zone
            day = date.fromisoformat(cancelled.rsplit(".", 1)[-1][:10])
            event.exdate.append(day if event.all_day else datetime.combine(
                day, ex.local_naive(event.start, zone).time(), zone))
        overrides = []
        for exc_data in master.get("exceptionOccurrences") or []:
            override = self._to_event(exc_data)
            override.uid = event.uid
            overrides.append(override)
        return CalendarItem(event.uid, [event, *overrides], ItemRef(calendar, master["id"], master.get("@odata.etag")))

    # ------------------------------------------------------------------------------- changes
    def changes(self, calendar: str, token: str | None) -> ChangeSet:
        """The delta feed's changes, each item read again with its marker: Graph's ``delta`` takes
        no ``$expand``, so the extended property holding calmesh's marker never comes with it, and
        a copy whose write landed but was not recorded (a killed run) would read as a new event
        of this calendar. The first round (no token) takes the token from the feed and the items
        from the plain listing, which carries the markers (the feed is read first, so a change
        made between the two reads is in the listing and again in the next round); later rounds
        read each changed item (few) on its own."""
        url = token or self._calendar_path(calendar) + "/events/delta"
        changed: list[dict[str, Any]] = []
        deleted: list[ItemRef] = []
        new_token: str | None = None
        for page in self._pages(url):
            for data in page.get("value", []):
                if "@removed" in data:
                    deleted.append(ItemRef(calendar, data["id"]))
                else:
                    changed.append(data)
            new_token = page.get("@odata.deltaLink", new_token)
        if token is None:
            listing = self._values(self._calendar_path(calendar) + "/events", {"$expand": _EXPAND_MARKER})
            items, unreadable = self._read_listing(calendar, listing)
        else:
            items, unreadable = self._read_listing(calendar, changed, reread=True)
        return ChangeSet(items, deleted, new_token, complete=token is None, unreadable=unreadable)

    # ------------------------------------------------------------------------------- free/busy
    def freebusy(self, people: Sequence[FreeBusyRequest], window: Window) -> list[PersonFreeBusy]:
        results = {p.email: PersonFreeBusy(p.email, window, platform=self.name) for p in people}
        emails = list(results)
        anchor = self.settings.mailboxes[0] if self.settings.mailboxes else (emails[0] if emails else None)
        if anchor is None:
            return []
        calls = [(part, emails[i:i + MAX_SCHEDULES]) for part in window.split(timedelta(days=MAX_SCHEDULE_DAYS))
                 for i in range(0, len(emails), MAX_SCHEDULES)]

        def ask(call: tuple[Window, list[str]]) -> Any:
            part, batch = call
            body = {"schedules": batch,
                    "startTime": {"dateTime": _local(part.start), "timeZone": "UTC"},
                    "endTime": {"dateTime": _local(part.end), "timeZone": "UTC"},
                    "availabilityViewInterval": self.settings.availability_interval}
            return _json(self._request("POST", f"/users/{quote(anchor)}/calendar/getSchedule", body=body))

        for (part, batch), answer in zip(calls, bounded_map(ask, calls, self.gate), strict=True):
            for info in answer.get("value", []):
                email = _match(info.get("scheduleId", ""), batch)
                if email is not None:
                    self._add_schedule(results[email], info, part)
        return [results[e] for e in emails]

    def _add_schedule(self, person: PersonFreeBusy, info: dict[str, Any], part: Window) -> None:
        error = info.get("error")
        if error:
            message = f"{person.email}: {error.get('responseCode', 'error')}: {error.get('message', '')}".strip()
            person.errors.append(Problem(self.name, message, person.email))
            person.busy.append(BusyPeriod(part.start, part.end, BusyType.UNKNOWN, self.name))
            return
        for item in info.get("scheduleItems") or []:
            start, end = _parse_dt(item.get("start")), _parse_dt(item.get("end"))
            busy = ex.busy_from_exchange(item.get("status"))
            if start is None or end is None or busy is BusyType.FREE:
                continue
            clipped = part.clip(start.astimezone(UTC), end.astimezone(UTC))
            if clipped is None:
                continue
            private = bool(item.get("isPrivate"))
            person.busy.append(BusyPeriod(clipped[0], clipped[1], busy, self.name,
                                          None if private else item.get("subject"),
                                          None if private else item.get("location")))
        if not info.get("scheduleItems") and info.get("availabilityView"):
            interval = timedelta(minutes=self.settings.availability_interval)
            person.busy.extend(ex.periods_from_view(info["availabilityView"], part.start, interval, self.name))
        hours = info.get("workingHours")
        if hours and person.working_hours is None:
            person.working_hours = _working_hours(hours)

    # ------------------------------------------------------------------------------- writing
    def fit(self, item: CalendarItem) -> tuple[CalendarItem, list[Adaptation]]:
        """Exchange's patterns through Graph (``patternedRecurrence``: a relative pattern may
        name several days), one reminder per event."""
        return ex.fit(self.name, item, self._default_zone, lambda pattern: pattern, reminders=1)

    def put(self, calendar: str, item: CalendarItem, if_match: str | None = None) -> ItemRef:
        item = self.fit(item)[0]
        master = item.master or item.components[0]
        try:
            body = self.event_to_graph(master)
        except (ValueError, KeyError) as exc:
            raise InvalidDataError(self.name, str(exc), item=item.uid) from exc
        if item.ref is None:
            created = _json(self._request("POST", self._calendar_path(calendar) + "/events", body=body, item=item.uid))
            event_id = created["id"]
        else:
            event_id = item.ref.id
            headers = {"If-Match": if_match} if if_match else None
            self._request("PATCH", self._event_path(calendar, event_id), body=body, headers=headers, item=item.uid)
        if master.rrule:
            self._apply_occurrences(calendar, event_id, master, item.overrides)
        latest = self._get_event(calendar, event_id)
        return ItemRef(calendar, event_id, latest.get("@odata.etag"))

    def _apply_occurrences(self, calendar: str, master_id: str, master: Event, overrides: list[Event]) -> None:
        """Cancelled occurrences (EXDATE) are DELETEd, then moved ones PATCHed, on their instances:
        a deleted occurrence is no neighbour a move may not reach (ErrorOccurrenceCrossingBoundary,
        see :func:`calmesh.connectors._fitting.crosses`)."""
        zone = ex.event_zone(master, self._default_zone)
        for excluded in master.exdate:
            instance = self._instance(calendar, master_id, excluded, zone)
            if instance is not None:
                self._request("DELETE", self._event_path(calendar, instance["id"]), item=master.uid)
        for override in overrides:
            assert override.recurrence_id is not None
            instance = self._instance(calendar, master_id, override.recurrence_id, zone)
            if instance is None:
                raise InvalidDataError(self.name, f"no occurrence at {override.recurrence_id} to override",
                                       item=master.uid)
            body = self.event_to_graph(override)
            body.pop("recurrence", None)
            self._request("PATCH", self._event_path(calendar, instance["id"]), body=body, item=master.uid)

    def _instance(self, calendar: str, master_id: str, original: Temporal, zone: ZoneInfo) -> dict[str, Any] | None:
        """The occurrence of a series whose original start is ``original`` (found via /instances)."""
        around = as_utc(original, zone)
        params = {"startDateTime": _iso(around - timedelta(days=1)), "endDateTime": _iso(around + timedelta(days=2))}
        for instance in self._values(self._event_path(calendar, master_id) + "/instances", params):
            start = _parse_instant(instance.get("originalStart"))
            if start is None:
                continue
            if start == around if isinstance(original, datetime) else start.astimezone(zone).date() == original:
                return instance
        return None

    def delete(self, calendar: str, ref: ItemRef, if_match: str | None = None) -> None:
        headers = {"If-Match": if_match} if if_match else None
        self._request("DELETE", self._event_path(calendar, ref.id), headers=headers, item=ref.id)

    def check(self) -> list[str]:
        self._token.get(force=True)
        lines = ["token: client-credentials grant accepted"]
        return lines + super().check()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------------------- mapping
    def event_to_graph(self, event: Event) -> dict[str, Any]:
        return event_to_graph(event, self._default_zone, self.settings.zone_names)

    def _to_event(self, data: dict[str, Any]) -> Event:
        """Graph ``event`` JSON -> model event (occurrences and exceptions keep their recurrence id)."""
        tzid = to_iana(data.get("originalStartTimeZone")) or to_iana((data.get("start") or {}).get("timeZone"))
        zone = ZoneInfo(tzid or to_iana(self._default_zone) or "UTC")
        start, end = _parse_dt(data.get("start")), _parse_dt(data.get("end"))
        if start is None:
            raise ValueError("event has no start")
        all_day = bool(data.get("isAllDay"))
        start_value: Temporal = start.date() if all_day else start.astimezone(zone)
        end_value: Temporal | None = None
        if end is not None:
            end_value = end.date() if all_day else end.astimezone(zone)
        busy_type, transparent = ex.busy_fields(data.get("showAs"))
        extra = {prop["id"].rsplit(" ", 1)[-1]: prop.get("value", "")
                 for prop in data.get("singleValueExtendedProperties") or []
                 if prop.get("id", "").lower() == ex.GRAPH_MARKER_ID.lower()}
        attendees = [a for a in (
            _attendee(att.get("emailAddress"), ex.partstat((att.get("status") or {}).get("response")),
                      Role.OPTIONAL if att.get("type") == "optional" else Role.REQUIRED)
            for att in data.get("attendees") or []) if a is not None]
        event = Event(
            uid=data.get("iCalUId") or data["id"],
            start=start_value,
            end=end_value,
            summary=data.get("subject"),
            description=(data.get("body") or {}).get("content") or None,
            location=(data.get("location") or {}).get("displayName") or None,
            transparent=transparent,
            busy_type=busy_type,
            status=EventStatus.CANCELLED if data.get("isCancelled") else EventStatus.CONFIRMED,
            classification=ex.classification(data.get("sensitivity")),
            last_modified=_parse_instant(data.get("lastModifiedDateTime")),
            created=_parse_instant(data.get("createdDateTime")),
            # Exchange names the mailbox owner organizer of every event; iCalendar has ORGANIZER only
            # on group-scheduled ones (RFC 5545 3.8.4.3), so a plain appointment is read without it:
            # otherwise every copy calmesh writes here would read back changed.
            organizer=_attendee((data.get("organizer") or {}).get("emailAddress"), PartStat.ACCEPTED, Role.CHAIR)
            if attendees else None,
            attendees=attendees,
            tzid=None if all_day else zone.key,
            extra=extra,
            alarms=[alarm(Reminder(int(data.get("reminderMinutesBeforeStart") or 0)))]
            if data.get("isReminderOn") else [],
        )
        recurrence = data.get("recurrence")
        if recurrence and data.get("type", "seriesMaster") == "seriesMaster":
            event.rrule = [ex.rrule_from_pattern(pattern_from_graph(recurrence), event.start, zone)]
        original = _parse_instant(data.get("originalStart"))
        if data.get("type") in ("occurrence", "exception") and original is not None:
            event.recurrence_id = original.astimezone(zone).date() if all_day else original.astimezone(zone)
        return event


# ----------------------------------------------------------------------------------- helpers
def _json(response: httpx.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_code(response: httpx.Response) -> str:
    error = _json(response).get("error")
    return str(error.get("code", "")) if isinstance(error, dict) else str(error or "")


def _error_message(response: httpx.Response) -> str:
    error = _json(response).get("error")
    return str(error.get("message", "")) if isinstance(error, dict) else response.text[:200]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _match(schedule_id: str, batch: list[str]) -> str | None:
    lowered = schedule_id.lower()
    return next((e for e in batch if e.lower() == lowered), None)


def _attendee(address: dict[str, Any] | None, status: PartStat, role: Role) -> Attendee | None:
    if not address or not address.get("address"):
        return None
    return Attendee(address["address"], address.get("name"), status, role)


def _working_hours(hours: dict[str, Any]) -> WorkingHours:
    zone = to_iana((hours.get("timeZone") or {}).get("name")) or "UTC"
    start = datetime.strptime(hours["startTime"].split(".")[0], "%H:%M:%S").time()
    end = datetime.strptime(hours["endTime"].split(".")[0], "%H:%M:%S").time()
    return WorkingHours(zone, (WorkingPeriod(ex.weekday_set(hours.get("daysOfWeek", [])), start, end),))


def event_to_graph(event: Event, default_zone: str = "UTC", zone_names: str = "windows") -> dict[str, Any]:
    """A model event -> Graph ``event`` JSON (for POST/PATCH); ``zone_names`` "windows" or "iana".
    Raises ValueError for an RRULE Exchange cannot store."""
    zone = ex.event_zone(event, default_zone)
    zone_name = zone.key if zone_names == "iana" else to_windows(zone.key)

    def when(value: Temporal) -> dict[str, str]:
        local = ex.local_naive(value, zone)
        if not event.rrule and isinstance(value, datetime) and value.tzinfo is not None \
                and as_utc(local.replace(tzinfo=zone, fold=0)) != as_utc(value):
            # the second of two equal wall times (the hour the clocks repeat): as a local time it
            # reads as the first, an hour early (half an hour from 02:45 ended before it began);
            # an item's start and end each name their zone (originalEndTimeZone), so it goes in UTC.
            # A series' times stay local: its pattern recurs in its zone (see _fitting.from_a_plain_start)
            return {"dateTime": as_utc(value).replace(tzinfo=None).isoformat(), "timeZone": "UTC"}
        return {"dateTime": local.isoformat(), "timeZone": zone_name}

    body: dict[str, Any] = {
        "subject": event.summary or "",
        "body": {"contentType": "text", "content": event.description or ""},
        "start": when(event.start),
        "end": when(event.effective_end()),
        "isAllDay": event.all_day,
        "showAs": ex.graph_show_as(ex.write_busy(event)),
        "sensitivity": ex.sensitivity(event.classification).lower(),
        "location": {"displayName": event.location or ""},
        "attendees": [{"emailAddress": {"address": a.email, "name": a.name or a.email},
                       "type": "optional" if a.role is Role.OPTIONAL else "required"} for a in event.attendees],
    }
    kept = reminders(event.alarms, 1)[0]
    body["isReminderOn"] = bool(kept)  # else Exchange sets the mailbox's default reminder
    if kept:
        body["reminderMinutesBeforeStart"] = kept[0].minutes
    if event.rrule:
        pattern = ex.one_series(event, zone)
        body["recurrence"] = pattern_to_graph(pattern, zone_name)
    marker = event.extra.get(MARKER_PROPERTY)
    if marker is not None:
        body["singleValueExtendedProperties"] = [{"id": ex.GRAPH_MARKER_ID, "value": marker}]
    return body


def pattern_to_graph(pattern: ex.Pattern, zone_name: str) -> dict[str, Any]:
    graph_pattern: dict[str, Any] = {"type": pattern.kind, "interval": pattern.interval,
                                     "firstDayOfWeek": ex.WEEKDAYS[pattern.first_day_of_week]}
    if pattern.days_of_week:
        graph_pattern["daysOfWeek"] = [ex.WEEKDAYS[d] for d in pattern.days_of_week]
    if pattern.day_of_month:
        graph_pattern["dayOfMonth"] = pattern.day_of_month
    if pattern.month:
        graph_pattern["month"] = pattern.month
    if pattern.index:
        graph_pattern["index"] = pattern.index
    assert pattern.start_date is not None
    graph_range: dict[str, Any] = {"type": pattern.range_kind, "startDate": pattern.start_date.isoformat(),
                                   "recurrenceTimeZone": zone_name}
    if pattern.end_date:
        graph_range["endDate"] = pattern.end_date.isoformat()
    if pattern.count:
        graph_range["numberOfOccurrences"] = pattern.count
    return {"pattern": graph_pattern, "range": graph_range}


def pattern_from_graph(recurrence: dict[str, Any]) -> ex.Pattern:
    pattern, rng = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    end_date = rng.get("endDate")
    return ex.Pattern(
        kind=pattern.get("type", ""),
        interval=int(pattern.get("interval") or 1),
        days_of_week=tuple(ex.weekday_index(d) for d in pattern.get("daysOfWeek") or []),
        day_of_month=pattern.get("dayOfMonth") or None,
        month=pattern.get("month") or None,
        index=pattern.get("index") if pattern.get("type", "").startswith("relative") else None,
        first_day_of_week=ex.weekday_index(pattern.get("firstDayOfWeek") or "sunday"),
        range_kind=rng.get("type", "noEnd"),
        start_date=date.fromisoformat(rng["startDate"]) if rng.get("startDate") else None,
        end_date=date.fromisoformat(end_date) if end_date and end_date != "0001-01-01" else None,
        count=rng.get("numberOfOccurrences") or None,
    )


def _unreadable(platform: str, exc: Exception, data: dict[str, Any]) -> Problem:
    """An event Graph sent that could not be read, named (and marked private) as Graph says."""
    return Problem(platform, f"unreadable event: {exc}", data.get("iCalUId") or data.get("id"),
                   code=ProblemCode.UNREADABLE, title=str(data.get("subject") or "")[:60] or None,
                   private=ex.classification(data.get("sensitivity")) is not Classification.PUBLIC)
