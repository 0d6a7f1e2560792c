"""Exchange Web Services (Exchange on-premises 2010 SP2+ and Exchange Online) through ``exchangelib``.

Calendar ids are ``mailbox`` (the mailbox's default Calendar folder) or ``mailbox/FOLDER_ID``.
Authentication: OAuth2 client credentials (Exchange Online; application impersonation), NTLM or
Basic (on-premises, with a service account that has impersonation or delegate rights). The EWS
URL is given explicitly or found by autodiscover.

What this connector adds on top of exchangelib:

- errors become calmesh's connector errors; ``ErrorServerBusy`` (with its BackOffMilliseconds),
  timeouts and transport failures are retried a bounded number of times by
  :func:`calmesh.connectors.base.with_retries` (exchangelib runs with ``FailFast`` so that its
  own unbounded back-off never stalls a free/busy fan-out);
- free/busy for many mailboxes in one GetUserAvailability call (chunks of 100), one answer per
  mailbox: an unknown mailbox becomes an error naming it (and an UNKNOWN period), never free time;
- series are read as CalendarItems: the master's Recurrence becomes an RRULE, DeletedOccurrences
  become EXDATEs, ModifiedOccurrences are fetched and become overrides with their RECURRENCE-ID;
- the change feed is SyncFolderItems; its SyncState is the change token;
- the calmesh marker is the named property ``X-CALMESH-ORIGIN`` in the PublicStrings set, the
  same property the Graph connector uses, so either API sees the other's writes as calmesh's;
- a zone only the object defines (a VTIMEZONE no IANA zone matches) is written and read as the
  item's own ``TimeZoneDefinition`` in StartTimeZone/EndTimeZone (:mod:`._ews_zones`), so the
  series recurs in its own zone there and a copy read back keeps it.

Busy statuses: Free, Tentative, Busy, OOF map to FREE, BUSY-TENTATIVE, BUSY, BUSY-UNAVAILABLE;
WorkingElsewhere maps to FREE because it does not block time (Exchange's own merged view shows it
as 0); NoData maps to UNKNOWN.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as clock
from functools import lru_cache, partial
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

import requests.exceptions
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    OAUTH2,
    Account,
    Build,
    Configuration,
    Credentials,
    EWSDate,
    EWSDateTime,
    EWSTimeZone,
    ExtendedProperty,
    FailFast,
    OAuth2Credentials,
    Version,
)
from exchangelib import CalendarItem as EWSItem
from exchangelib import errors as ews_errors
from exchangelib.folders import Calendar
from exchangelib.items import SEND_TO_NONE
from exchangelib.properties import Attendee as EWSAttendee
from exchangelib.properties import (
    DaylightTime,
    FolderId,
    FreeBusyViewOptions,
    MailboxData,
    StandardTime,
    TimeWindow,
    TimeZone,
)
from exchangelib.properties import Mailbox as EWSMailbox
from exchangelib.protocol import BaseProtocol, NoVerifyHTTPAdapter
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    AbsoluteYearlyPattern,
    DailyPattern,
    EndDatePattern,
    NoEndPattern,
    NumberedPattern,
    Recurrence,
    RelativeMonthlyPattern,
    RelativeYearlyPattern,
    WeeklyPattern,
)
from exchangelib.services import GetUserAvailability
from exchangelib.winzone import MS_TIMEZONE_TO_IANA_MAP
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from calmesh.alarms import Reminder, alarm, reminders
from calmesh.config import secret
from calmesh.connectors import _ews_zones
from calmesh.connectors import _exchange_common as ex
from calmesh.connectors.base import (
    CLOCK_SKEW,
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
    plain_cause,
    with_retries,
)
from calmesh.connectors.settings import EWSSettings
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
from calmesh.timezones import DefinedZone

T = TypeVar("T")
MAX_MAILBOXES = 100
"""GetUserAvailability answers at most 100 mailboxes per request."""


class _WholeBody:
    """A response whose body is handed over in one piece (see :class:`_Availability`)."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def iter_content(self) -> Iterable[bytes]:
        return iter((self._response.content,))


class _Availability(GetUserAvailability):
    """GetUserAvailability with its answer read in one piece, each view read by :func:`_read_view`.

    exchangelib reads a SOAP answer through ``requests``' ``iter_content()``, whose default chunk
    is one byte: a non-streamed answer, already in memory, was fed to the XML parser a byte at a
    time (measured: a third of the EWS side of a cold free/busy answer, bench/freebusy.py
    --profile). The same parser, the same checks, the same errors; only the feeding differs."""

    @classmethod
    def _get_soap_parts(cls, response: Any) -> Any:
        return super()._get_soap_parts(_WholeBody(response))

    def _elem_to_obj(self, elem: Any) -> _View:
        return _read_view(elem)


@dataclass(frozen=True, slots=True)
class _ViewEvent:
    """A t:CalendarEvent of a FreeBusyView, as far as free/busy needs it."""

    start: datetime | None
    end: datetime | None
    busy_type: str
    private: bool
    """True when the server says so, or sends no details at all (nothing to show either way)."""
    subject: str | None
    location: str | None


@dataclass(frozen=True, slots=True)
class _View:
    """One mailbox's FreeBusyView (EWS GetUserAvailability), read straight from its XML.

    Why not exchangelib's ``FreeBusyView.from_xml``: building its model objects field by field
    was a third of the CPU a cold 50-person answer spent on the Exchange side (bench/freebusy.py
    --profile), for the handful of values read here. exchangelib still sends the request and
    checks the SOAP answer and each mailbox's ResponseMessage (an error stays an exception)."""

    events: list[_ViewEvent]
    merged: str | None
    working_periods: list[tuple[list[int], clock, clock]]
    """Weekdays as exchangelib numbers them (1 Monday ... 7 Sunday, 8 Day, 9 Weekday, 10
    WeekendDay), start and end."""
    working_zone: tuple[int, int, int] | None
    """The working hours' zone: standard and daylight UTC offsets in minutes, and the month
    daylight time starts (0: none); None when the server sent no zone."""


_TYPES = "{http://schemas.microsoft.com/exchange/services/2006/types}"
_DAY_NUMBERS = {name: n for n, name in enumerate(
    ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "Day", "Weekday", "WeekendDay"),
    start=1)}


def _children(elem: Any) -> dict[str, Any]:
    """An element's children by tag (``{namespace}name``), the first of each tag (as ``find``
    answers).

    Why one walk instead of a ``find`` per field: lxml compiles and runs a path search for each
    ``find``, and a FreeBusyView holds ~20 events of ~12 fields each; one pass over the children
    reads a view about three times faster (measured on the EWS fake's answers)."""
    found: dict[str, Any] = {}
    for child in elem:
        found.setdefault(child.tag, child)
    return found


def _part(fields: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The children of the t: child ``name``, None when there is none."""
    node = fields.get(_TYPES + name)
    return None if node is None else _children(node)


def _field(fields: dict[str, Any] | None, name: str) -> str | None:
    """The text of the t: child ``name`` (None when absent or empty), as exchangelib reads a field."""
    node = None if fields is None else fields.get(_TYPES + name)
    return None if node is None else node.text or None


def _number(fields: dict[str, Any] | None, name: str) -> int:
    try:
        return int(_field(fields, name) or 0)
    except ValueError:
        return 0


def _view_time(text: str | None) -> datetime | None:
    """A StartTime/EndTime: an offset or Z when the server gives one, else the zone asked in
    (calmesh asks in UTC); unreadable -> None (the event is skipped, as exchangelib did)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _minutes(text: str | None) -> clock:
    """A working period's bound: minutes since midnight (or HH:MM:SS), as exchangelib's TimeField."""
    text = (text or "0").strip()
    if ":" in text:
        return datetime.strptime(text, "%H:%M:%S").time()
    return (datetime(2000, 1, 1) + timedelta(minutes=int(text))).time()


def _read_event(node: Any) -> _ViewEvent:
    fields = _children(node)
    details = _part(fields, "CalendarEventDetails")
    private = details is None or (_field(details, "IsPrivate") or "").strip().lower() in ("true", "on")
    return _ViewEvent(_view_time(_field(fields, "StartTime")), _view_time(_field(fields, "EndTime")),
                      _field(fields, "BusyType") or "Busy", private,
                      _field(details, "Subject"), _field(details, "Location"))


def _read_view(elem: Any) -> _View:
    view = _children(elem)
    array = view.get(_TYPES + "CalendarEventArray")
    events = [_read_event(node) for node in (array if array is not None else ())]
    periods: list[tuple[list[int], clock, clock]] = []
    zone = None
    hours = _part(view, "WorkingHours")
    if hours is not None:
        for node in hours.get(_TYPES + "WorkingPeriodArray", ()):
            period = _children(node)
            days = [_DAY_NUMBERS[d] for d in (_field(period, "DayOfWeek") or "").split() if d in _DAY_NUMBERS]
            periods.append((days, _minutes(_field(period, "StartTimeInMinutes")),
                            _minutes(_field(period, "EndTimeInMinutes"))))
        tz = _part(hours, "TimeZone")
        if tz is not None:
            bias = _number(tz, "Bias")
            standard_time, daylight_time = _part(tz, "StandardTime"), _part(tz, "DaylightTime")
            standard = -(bias + _number(standard_time, "Bias"))
            daylight = -(bias + _number(daylight_time, "Bias"))
            month = _number(daylight_time, "Month") if daylight_time is not None and standard != daylight else 0
            zone = (standard, daylight, month)
    return _View(events, _field(view, "MergedFreeBusy"), periods, zone)


_VERSIONS = {"Exchange2010_SP2": (14, 2), "Exchange2013": (15, 0), "Exchange2016": (15, 1), "Exchange2019": (15, 2)}
_UTC = EWSTimeZone("UTC")


class CalmeshMarker(ExtendedProperty):
    """The calmesh marker as a MAPI named property (PublicStrings set, string type)."""

    distinguished_property_set_id = "PublicStrings"
    property_name = MARKER_PROPERTY
    property_type = "String"


EWSItem.register("calmesh_marker", CalmeshMarker)
_ews_zones.install()


class _Written(EWSItem):  # type: ignore[misc]
    """A CalendarItem calmesh writes in a zone of the object's own (timed, never all-day): exchangelib's,
    less the rewrite its UpdateItem makes of exactly that class (Start/End converted into the
    StartTimeZone/EndTimeZone, which must then be zones it knows). Its zone is a
    :class:`_ews_zones.Definition`, its times are sent in UTC, and the zone fields are named in
    every update that changes a time."""


_ZONE_FIELDS = ["_start_timezone", "_end_timezone"]


class _ClientCredentials(OAuth2Credentials):
    """OAuth2 client credentials with a configurable token endpoint and scope.

    When a token expires it is fetched again rather than "refreshed": the client-credentials grant
    issues no refresh token, and exchangelib's auto-refresh would fail (exchangelib issue #1345).
    """

    def __init__(self, *, token_url: str, scope: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._token_url = token_url
        self._scope = scope

    @property
    def token_url(self) -> str:
        return self._token_url

    @property
    def scope(self) -> list[str]:
        return [self._scope]

    def session_params(self) -> dict[str, Any]:
        return {"token": self.access_token}

    def refresh(self, session: Any) -> None:
        self.access_token = None


class EWSConnector(Connector):
    """Read and write Exchange calendars and free/busy through EWS."""

    kind: ClassVar[str] = "ews"
    Settings: ClassVar[type[ConnectorSettings]] = EWSSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        read=True, write=True, changes=True, native_freebusy=True,
        freebusy_batch=MAX_MAILBOXES, max_freebusy_days=None, working_hours=True,
        sequence=False,  # an appointment has no SEQUENCE; a meeting's is the service's own
        answers=False,  # an attendee's ResponseType is Exchange's to set, from response messages
    )
    settings: EWSSettings

    def __init__(self, name: str, settings: ConnectorSettings) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, EWSSettings)
        self._credentials = self._make_credentials()
        self._accounts: dict[str, Account] = {}
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        """exchangelib keeps SyncFolderItems' state on the (shared, cached) folder object: two
        threads reading changes at once would read each other's state back."""
        self._policy = RetryPolicy(attempts=settings.retries, max_delay=settings.max_retry_wait)
        self.sleep: Callable[[float], None] = time.sleep
        """How retries wait; tests replace it to observe back-off without sleeping."""
        self._default_zone = settings.timezone or "UTC"
        if not settings.verify_tls:
            # exchangelib's documented hook; it is process-wide, so it is only ever switched off.
            BaseProtocol.HTTP_ADAPTER_CLS = NoVerifyHTTPAdapter

    # ------------------------------------------------------------------------------- plumbing
    def _make_credentials(self) -> Credentials | OAuth2Credentials:
        s = self.settings
        if s.auth == "oauth2":
            token_url = s.token_url or f"https://login.microsoftonline.com/{s.tenant_id}/oauth2/v2.0/token"
            return _ClientCredentials(
                token_url=token_url, scope=s.scope, client_id=s.client_id, tenant_id=s.tenant_id,
                client_secret=secret(s.client_secret_env, f"platforms.{self.name}.client_secret_env"))
        password = s.password(self.name) or ""
        return Credentials(s.username or "", password)

    def _config(self) -> Configuration:
        s = self.settings
        version = None
        if s.server_version:
            major, minor = _VERSIONS[s.server_version]
            version = Version(build=Build(major, minor))
        auth_type = {"oauth2": OAUTH2, "ntlm": NTLM, "basic": BASIC}[s.auth]
        return Configuration(service_endpoint=s.service_endpoint, credentials=self._credentials, auth_type=auth_type,
                             version=version, retry_policy=FailFast(), max_connections=4)

    def _account(self, mailbox: str) -> Account:
        """The exchangelib Account for a mailbox (created once; creating one may run autodiscover)."""
        key = mailbox.lower()
        with self._lock:
            if key not in self._accounts:
                impersonate = self.settings.impersonation
                if impersonate is None:
                    impersonate = self.settings.auth == "oauth2"
                access = IMPERSONATION if impersonate else DELEGATE
                if self.settings.service_endpoint:
                    account = Account(primary_smtp_address=mailbox, config=self._config(), autodiscover=False,
                                      access_type=access, default_timezone=_UTC)
                else:
                    config = Configuration(credentials=self._credentials, retry_policy=FailFast())
                    account = Account(primary_smtp_address=mailbox, config=config, autodiscover=True,
                                      access_type=access, default_timezone=_UTC)
                account.protocol.TIMEOUT = self.settings.timeout  # per-request timeout, seconds
                self._accounts[key] = account
            return self._accounts[key]

    def _protocol_account(self) -> Account:
        """Any account, for organisation-wide calls (GetUserAvailability)."""
        first = self.settings.mailboxes[0] if self.settings.mailboxes else (
            self.settings.autodiscover_email or "calmesh@invalid")
        return self._account(first)

    def _call(self, call: Callable[[], T], item: str | None = None) -> T:
        """Run one EWS interaction with bounded retries; exchangelib errors become connector errors.
        A 401 under OAuth2 gets one retry: exchangelib has already replaced the session and token."""
        reauthenticated = False

        def attempt() -> T:
            nonlocal reauthenticated
            try:
                return call()
            except ews_errors.UnauthorizedError as exc:
                if self.settings.auth == "oauth2" and not reauthenticated:
                    reauthenticated = True
                    return attempt()
                raise AuthenticationError(self.name, f"credentials refused for {self.settings.username or 'the service account'} "
                                                     f"by the server (HTTP 401)", item=item,
                                          setting="username, password_env") from exc
            except (ews_errors.EWSError, requests.exceptions.RequestException, OAuth2Error, OSError,
                    ValueError, TypeError) as exc:
                raise self._translate(exc, item) from exc

        return with_retries(attempt, policy=self._policy, sleep=self.sleep)

    def _translate(self, exc: BaseException, item: str | None) -> ConnectorError:
        if isinstance(exc, ConnectorError):
            return exc
        text = f"{type(exc).__name__}: {exc}"
        cause = plain_cause(exc)
        if cause is not None and isinstance(exc, (ews_errors.TransportError, ews_errors.ErrorTimeoutExpired,
                                                  requests.exceptions.RequestException, OSError)):
            where = self.settings.service_endpoint or "autodiscover"
            return TransientError(self.name, f"cannot reach {where}: {cause}", item=item,
                                  setting="service_endpoint" if self.settings.service_endpoint else "autodiscover_email")
        if isinstance(exc, ews_errors.ErrorServerBusy):
            return TransientError(self.name, text, retry_after=exc.back_off, item=item)
        if isinstance(exc, (ews_errors.ErrorTimeoutExpired, ews_errors.ErrorInternalServerTransientError,
                            ews_errors.ErrorTooManyObjectsOpened, ews_errors.RateLimitError,
                            requests.exceptions.ConnectionError, requests.exceptions.Timeout, TimeoutError)):
            return TransientError(self.name, text, item=item)
        if isinstance(exc, OAuth2Error):
            return AuthenticationError(self.name, f"token request refused: {text}", item=item)
        if isinstance(exc, (ews_errors.ErrorAccessDenied, ews_errors.ErrorImpersonateUserDenied,
                            ews_errors.ErrorImpersonationDenied, ews_errors.UnauthorizedError)):
            return AuthenticationError(self.name, text, item=item)
        if isinstance(exc, (ews_errors.ErrorItemNotFound, ews_errors.ErrorFolderNotFound,
                            ews_errors.ErrorNonExistentMailbox, ews_errors.ErrorMailRecipientNotFound,
                            ews_errors.ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange)):
            return NotFoundError(self.name, text, item=item)
        if isinstance(exc, (ews_errors.ErrorIrresolvableConflict, ews_errors.ErrorInvalidChangeKey)):
            return PreconditionFailed(self.name, text, item=item)
        if isinstance(exc, (ews_errors.ErrorInvalidSyncStateData, ews_errors.ErrorInvalidSubscription)):
            return InvalidTokenError(self.name, text, item=item)
        if isinstance(exc, ews_errors.TransportError):
            return TransientError(self.name, text, item=item)
        if isinstance(exc, (ews_errors.EWSError, ValueError, TypeError)):
            return InvalidDataError(self.name, text, item=item)
        return ConnectorError(self.name, text, item=item)

    def _folder(self, calendar: str) -> Calendar:
        mailbox, _, folder_id = calendar.partition("/")
        if not mailbox:
            raise NotFoundError(self.name, f"calendar id {calendar!r} names no mailbox")
        account = self._account(mailbox)
        if not folder_id:
            return account.calendar
        folder = account.root.get_folder(FolderId(id=folder_id))
        if not isinstance(folder, Calendar):
            raise NotFoundError(self.name, f"{calendar} is not a calendar folder")
        return folder

    # ------------------------------------------------------------------------------- reading
    def calendars(self) -> list[CalendarInfo]:
        found = []
        for mailbox in self.settings.mailboxes:
            folder = self._call(partial(self._folder, mailbox), item=mailbox)
            rights = folder.effective_rights
            found.append(CalendarInfo(id=mailbox, name=folder.name or "Calendar", platform=self.name, owner=mailbox,
                                      read_only=bool(rights is not None and not rights.create_contents)))
        return found

    def events(self, calendar: str, window: Window) -> tuple[list[Event], list[Problem]]:
        def fetch() -> list[Any]:
            folder = self._folder(calendar)
            return list(folder.view(start=_ews_dt(window.start), end=_ews_dt(window.end)))

        events: list[Event] = []
        problems: list[Problem] = []
        for item in self._call(fetch, item=calendar):
            if isinstance(item, Exception):
                problems.append(Problem(self.name, f"unreadable item: {item}", code=ProblemCode.UNREADABLE))
                continue
            try:
                events.append(self._to_event(item))
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(_unreadable(self.name, exc, item))
        return events, problems

    def items(self, calendar: str, window: Window | None = None) -> tuple[list[CalendarItem], list[Problem]]:
        def fetch() -> list[Any]:
            folder = self._folder(calendar)
            if window is not None:
                return list(folder.view(start=_ews_dt(window.start), end=_ews_dt(window.end)).only("id", "changekey", "type", "uid"))
            return list(folder.all().only("id", "changekey", "type", "uid"))

        listing = self._call(fetch, item=calendar)
        problems: list[Problem] = []
        singles: list[tuple[str, str]] = []
        masters: dict[str, tuple[str, str]] = {}
        for found in listing:
            if isinstance(found, Exception):
                problems.append(Problem(self.name, f"unreadable item: {found}", code=ProblemCode.UNREADABLE))
            elif found.type in ("Occurrence", "Exception"):
                masters.setdefault(found.uid or found.id, (found.id, found.changekey))
            else:
                singles.append((found.id, found.changekey))
        items = self._full_items(calendar, singles, problems)
        items.extend(self._full_items(calendar, self._master_ids(calendar, list(masters.values())), problems))
        unique = {i.ref.id: i for i in items if i.ref is not None}
        return list(unique.values()), problems

    def _master_ids(self, calendar: str, occurrences: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """One occurrence per series -> the series master's id (RecurringMasterItemId lookups)."""
        if not occurrences:
            return []

        def fetch() -> list[Any]:
            folder = self._folder(calendar)
            found = []
            for occ_id, changekey in occurrences:
                master = EWSItem(account=folder.account, folder=folder, id=occ_id, changekey=changekey).recurring_master()
                master.refresh()
                found.append((master.id, master.changekey))
            return found

        return self._call(fetch, item=calendar)

    def fetch(self, calendar: str, ids: Sequence[str]) -> tuple[list[CalendarItem], list[Problem]]:
        """The items at these ItemIds, by GetItem (no listing of the folder): those gone are left
        out. An item deleted in Outlook moves to Deleted Items under a new ItemId, so its old one
        is not found, as an item moved to another folder would be; one found in another folder
        (an id that survived a move) is not this calendar's either."""
        problems: list[Problem] = []
        items = self._full_items(calendar, [(i, None) for i in ids], problems, only_present=True)
        return items, problems

    def _full_items(self, calendar: str, ids: Iterable[tuple[str, str | None]], problems: list[Problem], *,
                    only_present: bool = False) -> list[CalendarItem]:
        """The items at ``ids`` read whole; with ``only_present``, an id not found in this
        calendar's folder is left out (else it is a problem)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []

        def fetch() -> tuple[list[Any], str | None]:
            folder = self._folder(calendar)
            return list(folder.account.fetch(ids=wanted)), folder.id

        found, folder_id = self._call(fetch, item=calendar)
        items: list[CalendarItem] = []
        for fetched in found:
            if only_present and (isinstance(fetched, ews_errors.ErrorItemNotFound) or (
                    not isinstance(fetched, Exception) and fetched.parent_folder_id is not None
                    and fetched.parent_folder_id.id != folder_id)):
                continue
            if isinstance(fetched, Exception):
                problems.append(Problem(self.name, f"unreadable item: {fetched}", code=ProblemCode.UNREADABLE))
                continue
            try:
                items.append(self._to_item(calendar, fetched))
            except (ValueError, KeyError, TypeError, ConnectorError) as exc:
                problems.append(_unreadable(self.name, exc, fetched))
        return items

    def _to_item(self, calendar: str, master: Any) -> CalendarItem:
        """A fetched item -> CalendarItem; for a series, modified occurrences are fetched as overrides."""
        event = self._to_event(master)
        overrides: list[Event] = []
        if master.type == "RecurringMaster":
            zone = ex.own_zone(event, self._default_zone)
            for deleted in master.deleted_occurrences or []:
                event.exdate.append(_original(deleted.start, event, zone))
            modified = [(o.id, o.changekey) for o in master.modified_occurrences or []]
            if modified:
                fetched = self._call(lambda: list(master.account.fetch(ids=modified)), item=event.uid)
                for occurrence in fetched:
                    if isinstance(occurrence, Exception):
                        raise InvalidDataError(self.name, f"modified occurrence unreadable: {occurrence}", item=event.uid)
                    override = self._to_event(occurrence)
                    override.uid = event.uid
                    overrides.append(override)
        return CalendarItem(event.uid, [event, *overrides], ItemRef(calendar, master.id, master.changekey))

    # ------------------------------------------------------------------------------- changes
    def changes(self, calendar: str, token: str | None) -> ChangeSet:
        def sync() -> tuple[list[tuple[str, Any]], str | None]:
            folder = self._folder(calendar)
            with self._sync_lock:
                # exchangelib resumes from the folder object's remembered state when given none, which
                # would turn a full listing (token None) into "changes since the last call"
                folder.item_sync_state = token
                found = list(folder.sync_items(sync_state=token, only_fields=["id", "changekey"]))
                return found, folder.item_sync_state

        found, new_token = self._call(sync, item=calendar)
        problems: list[Problem] = []
        changed_ids: list[tuple[str, str]] = []
        deleted: list[ItemRef] = []
        for change_type, value in found:
            if change_type == "delete":
                deleted.append(ItemRef(calendar, value.id))
            elif change_type in ("create", "update"):
                changed_ids.append((value.id, value.changekey))
        changed = self._full_items(calendar, changed_ids, problems)
        if problems:
            raise InvalidDataError(self.name, "; ".join(p.message for p in problems), item=calendar)
        return ChangeSet(changed, deleted, new_token, complete=token is None)

    # ------------------------------------------------------------------------------- free/busy
    def freebusy(self, people: Sequence[FreeBusyRequest], window: Window) -> list[PersonFreeBusy]:
        results = [PersonFreeBusy(p.email, window, platform=self.name) for p in people]
        chunks = [results[i:i + MAX_MAILBOXES] for i in range(0, len(results), MAX_MAILBOXES)]
        answers = bounded_map(lambda chunk: self._call(partial(self._availability, [p.email for p in chunk], window)),
                              chunks, self.gate)
        for chunk, views in zip(chunks, answers, strict=True):
            for person, view in zip(chunk, views, strict=True):
                self._add_view(person, view, window)
        return results

    def _availability(self, emails: list[str], window: Window) -> list[Any]:
        protocol = self._protocol_account().protocol
        mailbox_data = [MailboxData(email=e, attendee_type="Required", exclude_conflicts=False)
                        for e in emails]
        options = FreeBusyViewOptions(time_window=TimeWindow(start=_ews_dt(window.start), end=_ews_dt(window.end)),
                                      merged_free_busy_interval=self.settings.availability_interval,
                                      requested_view="DetailedMerged")
        return list(_Availability(protocol=protocol).call(
            tzinfo=_UTC, mailbox_data=mailbox_data, timezone=_utc_timezone(), free_busy_view_options=options))

    def _add_view(self, person: PersonFreeBusy, view: _View | Exception, window: Window) -> None:
        if isinstance(view, Exception):
            person.errors.append(Problem(self.name, f"{person.email}: {type(view).__name__}: {view}", person.email))
            person.busy.append(BusyPeriod(window.start, window.end, BusyType.UNKNOWN, self.name))
            return
        for event in view.events:
            busy = ex.busy_from_exchange(event.busy_type)
            if busy is BusyType.FREE or event.start is None or event.end is None:
                continue
            clipped = window.clip(event.start, event.end)
            if clipped is None:
                continue
            person.busy.append(BusyPeriod(clipped[0], clipped[1], busy, self.name,
                                          None if event.private else event.subject,
                                          None if event.private else event.location))
        if not view.events and view.merged:
            interval = timedelta(minutes=self.settings.availability_interval)
            person.busy.extend(ex.periods_from_view(view.merged, window.start, interval, self.name))
        if view.working_periods:
            zone = (self._default_zone if view.working_zone is None
                    else _zone_matching(*view.working_zone, window.start.year, self._default_zone))
            person.working_hours = WorkingHours(zone, tuple(
                WorkingPeriod(frozenset(d - 1 for d in _weekday_numbers(days)), start, end)
                for days, start, end in view.working_periods))

    # ------------------------------------------------------------------------------- writing
    def fit(self, item: CalendarItem) -> tuple[CalendarItem, list[Adaptation]]:
        """Exchange's patterns through EWS: a relative (monthly or yearly) pattern names one
        weekday or a group (Day, Weekday, WeekendDay), not a list (EWS ``DayOfWeekType``); one
        reminder per item."""
        return ex.fit(self.name, item, self._default_zone, _pattern_to_ews, reminders=1,
                      carries=lambda zone, master: _definition(zone, master), local_ends=False)

    def put(self, calendar: str, item: CalendarItem, if_match: str | None = None) -> ItemRef:
        item = self.fit(item)[0]
        master = item.master or item.components[0]

        def write() -> tuple[str, str]:
            folder = self._folder(calendar)
            ews_item = self._to_ews(master, folder)
            if item.ref is None:
                ews_item.save(send_meeting_invitations=SEND_TO_NONE)
            else:
                ews_item.id, ews_item.changekey = item.ref.id, if_match or item.ref.etag
                fields = ["subject", "body", "start", "end", "is_all_day", "legacy_free_busy_status", "location",
                          "sensitivity", "required_attendees", "optional_attendees", "recurrence",
                          "reminder_is_set", "reminder_minutes_before_start", *_ZONE_FIELDS]
                if MARKER_PROPERTY in master.extra:
                    fields.append("calmesh_marker")
                ews_item.save(update_fields=fields,
                              conflict_resolution="NeverOverwrite" if if_match else "AutoResolve",
                              send_meeting_invitations=SEND_TO_NONE)
            if master.rrule:
                self._apply_occurrences(ews_item, master, item.overrides)
                ews_item.refresh()
            return ews_item.id, ews_item.changekey

        item_id, changekey = self._call(write, item=item.uid)
        return ItemRef(calendar, item_id, changekey)

    def _apply_occurrences(self, master_item: Any, master: Event, overrides: list[Event]) -> None:
        """Cancelled occurrences (EXDATE) are deleted, then moved ones updated, addressed by
        OccurrenceItemId (series master + 1-based instance index): a deleted occurrence is no
        neighbour a move may not reach (ErrorOccurrenceCrossingBoundary, see
        :func:`calmesh.connectors._fitting.crosses`)."""
        zone = ex.own_zone(master, self._default_zone)
        positions = ex.occurrence_starts(master.with_changes(exdate=[]), zone,
                                         datetime(9000, 1, 1, tzinfo=UTC))

        def index_of(original: Temporal) -> int:
            target = as_utc(original, zone)
            for index, start in enumerate(positions, start=1):
                if as_utc(start, zone) == target:
                    return index
            raise InvalidDataError(self.name, f"no occurrence at {original}", item=master.uid)

        for excluded in master.exdate:
            occurrence = master_item.occurrence(index_of(excluded))
            try:
                occurrence.refresh()
            except ews_errors.ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange:
                continue  # already deleted
            occurrence.delete(send_meeting_cancellations=SEND_TO_NONE)
        for override in overrides:
            assert override.recurrence_id is not None
            occurrence = master_item.occurrence(index_of(override.recurrence_id))
            occurrence.refresh()
            changes = self._to_ews(override, master_item.folder)
            if isinstance(changes, _Written):
                # a zone of the object's own: saved as the master is (see _Written); copied onto
                # exchangelib's occurrence, its UpdateItem converted the times into the zone's
                # definition and failed (TypeError: not a tzinfo), the whole series unwritten
                changes.id, changes.changekey = occurrence.id, occurrence.changekey
                target = changes
            else:
                for name in ("subject", "body", "start", "end", "is_all_day", "legacy_free_busy_status", "location",
                             "sensitivity", "_start_timezone", "_end_timezone", "reminder_is_set",
                             "reminder_minutes_before_start"):
                    setattr(occurrence, name, getattr(changes, name))
                target = occurrence
            target.save(update_fields=["subject", "body", "start", "end", "legacy_free_busy_status", "location",
                                       "sensitivity", "reminder_is_set", "reminder_minutes_before_start",
                                       *_ZONE_FIELDS],
                        send_meeting_invitations=SEND_TO_NONE)

    def delete(self, calendar: str, ref: ItemRef, if_match: str | None = None) -> None:
        def remove() -> None:
            folder = self._folder(calendar)
            current = list(folder.account.fetch(ids=[(ref.id, ref.etag)], only_fields=["id", "changekey"]))
            if not current or isinstance(current[0], Exception):
                raise current[0] if current else ews_errors.ErrorItemNotFound("item not found")
            # DeleteItem ignores ChangeKeys, so If-Match is checked against a fresh read.
            if if_match and current[0].changekey != if_match:
                raise PreconditionFailed(self.name, f"item changed since read (ChangeKey {current[0].changekey})",
                                         item=ref.id)
            # as Outlook deletes: into Deleted Items, where the person can restore it, and
            # where a pending copy's deletion can be proven (:meth:`deleted_since`)
            current[0].move_to_trash(send_meeting_cancellations=SEND_TO_NONE)

        self._call(remove, item=ref.id)

    def deleted_since(self, calendar: str, copies: Mapping[str, str], since: datetime) -> set[str]:
        """UIDs of ``copies`` found, by their marker, in the mailbox's Deleted Items and created
        after ``since`` (less :data:`CLOCK_SKEW`: the server's clock stamps them): Outlook and
        Outlook on the web move what a person deletes there. An item deleted for good (Shift+Del,
        or the folder emptied) leaves no evidence, and its copy is written again, with a reason."""
        if not copies:
            return set()
        mailbox = calendar.partition("/")[0]
        floor = since - CLOCK_SKEW

        def search() -> set[str]:
            trash = self._account(mailbox).trash
            found = trash.filter(calmesh_marker__in=sorted(set(copies.values()))).only(
                "calmesh_marker", "datetime_created")
            markers = {i.calmesh_marker for i in found
                       if not isinstance(i, Exception) and i.datetime_created is not None and i.datetime_created >= floor}
            return {uid for uid, marker in copies.items() if marker in markers}

        return self._call(search, item=mailbox)

    def check(self) -> list[str]:
        lines = super().check()
        # With server_version set, exchangelib asks nothing until a real request: make one.
        version = self._call(lambda: self._protocol_account().version)
        return [f"EWS endpoint {self.settings.service_endpoint or '(autodiscover)'}, {version.api_version}", *lines]

    def close(self) -> None:
        for account in self._accounts.values():
            account.protocol.close()
        self._accounts.clear()

    # ------------------------------------------------------------------------------- mapping
    def _to_event(self, item: Any) -> Event:
        """An exchangelib CalendarItem -> model event."""
        tz = item._start_timezone
        zone: tzinfo
        if isinstance(tz, _ews_zones.Definition):  # a zone of its own: an IANA zone if one matches
            zone = _ews_zones.zone_of(tz, item.start.year if item.start is not None else date.today().year)
        elif tz is not None and getattr(tz, "key", None):
            zone = ZoneInfo(tz.key)
        else:
            zone = ZoneInfo(ex.zone_of(self._default_zone).key)
        all_day = bool(item.is_all_day)
        if item.start is None:
            raise ValueError("item has no start")
        if all_day:
            start: Temporal = _plain_date(item.start)
            end: Temporal | None = _plain_date(item.end) + timedelta(days=1) if item.end is not None else None
        else:
            start = _plain(item.start).astimezone(zone)
            end = _plain(item.end).astimezone(zone) if item.end is not None else None
        busy_type, transparent = ex.busy_fields(item.legacy_free_busy_status)
        attendees = [a for a in (
            _attendee(att, Role.REQUIRED) for att in item.required_attendees or []) if a is not None]
        attendees += [a for a in (
            _attendee(att, Role.OPTIONAL) for att in item.optional_attendees or []) if a is not None]
        organizer = None
        # Exchange names the mailbox owner organizer of every item; iCalendar has ORGANIZER only on
        # group-scheduled ones (RFC 5545 3.8.4.3), so a plain appointment is read without it:
        # otherwise every copy calmesh writes here would read back changed.
        if attendees and item.organizer is not None and item.organizer.email_address:
            organizer = Attendee(item.organizer.email_address, item.organizer.name, PartStat.ACCEPTED, Role.CHAIR)
        marker = getattr(item, "calmesh_marker", None)
        event = Event(
            uid=item.uid or item.id,
            start=start,
            end=end,
            summary=item.subject,
            description=str(item.body) if item.body else None,
            location=item.location or None,
            transparent=transparent,
            busy_type=busy_type,
            status=EventStatus.CANCELLED if item.is_cancelled else EventStatus.CONFIRMED,
            classification=ex.classification(item.sensitivity),
            last_modified=_plain(item.last_modified_time) if item.last_modified_time else None,
            created=_plain(item.datetime_created) if item.datetime_created else None,
            organizer=organizer,
            attendees=attendees,
            tzid=None if all_day else str(getattr(zone, "key", "")) or None,
            extra={MARKER_PROPERTY: marker} if marker is not None else {},
            alarms=[alarm(Reminder(int(item.reminder_minutes_before_start or 0)))] if item.reminder_is_set else [],
        )
        if item.type == "RecurringMaster" and item.recurrence is not None:
            event.rrule = [ex.rrule_from_pattern(_pattern_from_ews(item.recurrence), event.start, zone)]
        if item.type in ("Occurrence", "Exception") and item.original_start is not None:
            event.recurrence_id = _original(item.original_start, event, zone)
        return event

    def _to_ews(self, event: Event, folder: Calendar) -> Any:
        """A model event -> an unsaved exchangelib CalendarItem in ``folder``."""
        zone = ex.own_zone(event, self._default_zone)
        ews_zone: Any = EWSTimeZone(zone.key) if isinstance(zone, ZoneInfo) else _definition(zone, event)
        shown = ews_zone if isinstance(zone, ZoneInfo) else _UTC  # a zone of its own: times in UTC
        if event.all_day:
            start: Any = EWSDate.from_date(event.start)  # type: ignore[arg-type]
            last_day = event.effective_end() - timedelta(days=1)  # exchangelib writes an inclusive end date
            end: Any = EWSDate.from_date(max(last_day, event.start))  # type: ignore[type-var, arg-type]
        else:
            instants = (as_utc(event.start, zone), as_utc(event.effective_end(), zone))
            if any(as_utc(i.astimezone(zone).replace(fold=0)) != i for i in instants):
                # the second of two equal wall times: exchangelib compares start and end in one
                # zone by wall time (02:15 the second time round "before" 02:45) and refused the
                # item; in UTC they compare as instants, and StartTimeZone still names the zone
                shown = _UTC
            start = EWSDateTime.from_datetime(instants[0]).astimezone(shown)
            end = EWSDateTime.from_datetime(instants[1]).astimezone(shown)
        fields: dict[str, Any] = dict(
            account=folder.account, folder=folder, subject=event.summary or "", body=event.description or "",
            start=start, end=end, is_all_day=event.all_day, location=event.location or "",
            legacy_free_busy_status=ex.ews_status(ex.write_busy(event)),
            sensitivity=ex.sensitivity(event.classification),
            required_attendees=[EWSAttendee(mailbox=EWSMailbox(email_address=a.email, name=a.name), response_type="Unknown")
                                for a in event.attendees if a.role is not Role.OPTIONAL] or None,
            optional_attendees=[EWSAttendee(mailbox=EWSMailbox(email_address=a.email, name=a.name), response_type="Unknown")
                                for a in event.attendees if a.role is Role.OPTIONAL] or None,
            _start_timezone=ews_zone, _end_timezone=ews_zone,
        )
        kept = reminders(event.alarms, 1)[0]
        fields["reminder_is_set"] = bool(kept)
        fields["reminder_minutes_before_start"] = kept[0].minutes if kept else 0
        if event.recurrence_id is None:
            fields["uid"] = event.uid
        if MARKER_PROPERTY in event.extra:
            fields["calmesh_marker"] = event.extra[MARKER_PROPERTY]
        if event.rrule:
            if len(event.rrule) > 1:
                raise ValueError("Exchange stores one recurrence rule per series")
            fields["recurrence"] = _pattern_to_ews(ex.pattern_from_rrule(event.rrule[0], event.start, zone))
        return EWSItem(**fields) if isinstance(zone, ZoneInfo) else _Written(**fields)


# ----------------------------------------------------------------------------------- helpers
def _definition(zone: DefinedZone, event: Event) -> _ews_zones.Definition:
    """The EWS definition of a zone of the object's own, valid from the year before ``event``."""
    start = event.start if isinstance(event.start, datetime) else datetime.combine(event.start, clock())
    return _ews_zones.definition_of(zone, start.year - 1)


def _ews_dt(value: datetime) -> EWSDateTime:
    return EWSDateTime.from_datetime(value.astimezone(UTC)).astimezone(_UTC)


def _plain(value: datetime) -> datetime:
    """An EWSDateTime as a plain aware datetime in UTC."""
    return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                    tzinfo=value.tzinfo).astimezone(UTC) if value.tzinfo else datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, tzinfo=UTC)


def _plain_date(value: date) -> date:
    return date(value.year, value.month, value.day)


def _original(value: datetime, event: Event, zone: tzinfo) -> Temporal:
    """An occurrence's original start as a RECURRENCE-ID/EXDATE value shaped like the series start."""
    instant = _plain(value).astimezone(zone)
    return instant.date() if event.all_day else instant


def _attendee(att: Any, role: Role) -> Attendee | None:
    mailbox = getattr(att, "mailbox", None)
    if mailbox is None or not mailbox.email_address:
        return None
    return Attendee(mailbox.email_address, mailbox.name, ex.partstat(att.response_type), role)


def _utc_timezone() -> TimeZone:
    """The availability request's zone: UTC (a zero bias with no transitions)."""
    standard = StandardTime(bias=0, time=datetime(2000, 1, 1).time(), occurrence=1, iso_month=1, weekday=7)
    daylight = DaylightTime(bias=0, time=datetime(2000, 1, 1).time(), occurrence=1, iso_month=1, weekday=7)
    return TimeZone(bias=0, standard_time=standard, daylight_time=daylight)


def _weekday_numbers(values: Iterable[Any]) -> set[int]:
    """exchangelib weekday enums (1 = Monday ... 7 = Sunday, 8 Day, 9 Weekday, 10 WeekendDay)."""
    days: set[int] = set()
    for value in values:
        value = int(value)
        if value <= 7:
            days.add(value)
        elif value == 8:
            days.update(range(1, 8))
        elif value == 9:
            days.update(range(1, 6))
        else:
            days.update((6, 7))
    return days


@lru_cache(maxsize=256)
def _zone_matching(standard: int, daylight: int, dst_month: int, year: int, preferred: str) -> str:
    """The IANA zone matching an availability TimeZone (UTC offsets in minutes and the month
    daylight time starts), which carries no name. Zones with identical offsets and change months
    are interchangeable for working hours; ``preferred`` wins when it matches. Remembered: trying
    the zones one by one took ~10 ms a mailbox (a third of reading a 17-mailbox availability
    answer, bench/freebusy.py), and an organisation's mailboxes share a handful of zones."""
    candidates = [preferred, *MS_TIMEZONE_TO_IANA_MAP.values()]
    for name in candidates:
        try:
            zone = ZoneInfo(name)
        except (ValueError, KeyError):
            continue
        offsets = {_offset(zone, year, 1), _offset(zone, year, 7)}
        if offsets != {standard, daylight}:
            continue
        if dst_month and _offset(zone, year, dst_month) == _offset(zone, year + dst_month // 12, dst_month % 12 + 1):
            continue  # no change during the month the rule names
        return name
    return preferred


def _offset(zone: ZoneInfo, year: int, month: int) -> int:
    """UTC offset in minutes on the first of a month."""
    return int((datetime(year, month, 1, tzinfo=UTC).astimezone(zone).utcoffset() or timedelta()).total_seconds() // 60)


def _pattern_to_ews(pattern: ex.Pattern) -> Recurrence:
    """Exchange pattern -> exchangelib Recurrence (weekday enums are 1-based)."""
    days = [d + 1 for d in pattern.days_of_week]
    week_number = ex.INDEXES.index(pattern.index or "first") + 1

    def one_day() -> int:
        chosen = set(pattern.days_of_week)
        if len(chosen) == 1:
            return days[0]
        named = {frozenset(range(7)): 8, frozenset(range(5)): 9, frozenset((5, 6)): 10}
        if frozenset(chosen) in named:
            return named[frozenset(chosen)]
        raise ValueError("Exchange relative patterns name one weekday (or day / weekday / weekend day)")

    kind = pattern.kind
    if kind == "daily":
        ews_pattern: Any = DailyPattern(interval=pattern.interval)
    elif kind == "weekly":
        ews_pattern = WeeklyPattern(interval=pattern.interval, weekdays=days, first_day_of_week=pattern.first_day_of_week + 1)
    elif kind == "absoluteMonthly":
        ews_pattern = AbsoluteMonthlyPattern(interval=pattern.interval, day_of_month=pattern.day_of_month)
    elif kind == "relativeMonthly":
        ews_pattern = RelativeMonthlyPattern(interval=pattern.interval, weekday=one_day(), week_number=week_number)
    elif kind == "absoluteYearly":
        ews_pattern = AbsoluteYearlyPattern(day_of_month=pattern.day_of_month, month=pattern.month)
    elif kind == "relativeYearly":
        ews_pattern = RelativeYearlyPattern(weekday=one_day(), week_number=week_number, month=pattern.month)
    else:
        raise ValueError(f"unknown pattern {kind}")
    assert pattern.start_date is not None
    start = EWSDate.from_date(pattern.start_date)
    if pattern.range_kind == "numbered" and pattern.count:
        boundary: Any = NumberedPattern(start=start, number=pattern.count)
    elif pattern.range_kind == "endDate" and pattern.end_date:
        boundary = EndDatePattern(start=start, end=EWSDate.from_date(pattern.end_date))
    else:
        boundary = NoEndPattern(start=start)
    return Recurrence(pattern=ews_pattern, boundary=boundary)


def _pattern_from_ews(recurrence: Recurrence) -> ex.Pattern:
    pattern, boundary = recurrence.pattern, recurrence.boundary
    kind = {DailyPattern: "daily", WeeklyPattern: "weekly", AbsoluteMonthlyPattern: "absoluteMonthly",
            RelativeMonthlyPattern: "relativeMonthly", AbsoluteYearlyPattern: "absoluteYearly",
            RelativeYearlyPattern: "relativeYearly"}.get(type(pattern))
    if kind is None:
        raise ValueError(f"unsupported Exchange recurrence {type(pattern).__name__}")
    if isinstance(pattern, WeeklyPattern):
        days = tuple(sorted(d - 1 for d in _weekday_numbers(pattern.weekdays)))
    elif isinstance(pattern, (RelativeMonthlyPattern, RelativeYearlyPattern)):
        days = tuple(sorted(d - 1 for d in _weekday_numbers([pattern.weekday])))
    else:
        days = ()
    start = boundary.start
    range_kind, end_date, count = "noEnd", None, None
    if isinstance(boundary, NumberedPattern):
        range_kind, count = "numbered", boundary.number
    elif isinstance(boundary, EndDatePattern):
        range_kind, end_date = "endDate", _plain_date(boundary.end)
    return ex.Pattern(
        kind=kind,
        interval=getattr(pattern, "interval", 1) or 1,
        days_of_week=days,
        day_of_month=getattr(pattern, "day_of_month", None),
        month=getattr(pattern, "month", None),
        index=ex.INDEXES[pattern.week_number - 1] if hasattr(pattern, "week_number") else None,
        first_day_of_week=(pattern.first_day_of_week - 1) if isinstance(pattern, WeeklyPattern) else 6,
        range_kind=range_kind,
        start_date=_plain_date(start) if start is not None else None,
        end_date=end_date,
        count=count,
    )


def _unreadable(platform: str, exc: Exception, item: Any) -> Problem:
    """An item Exchange sent that could not be read, named (and marked private) as Exchange says."""
    return Problem(platform, f"unreadable item: {exc}", getattr(item, "uid", None), code=ProblemCode.UNREADABLE,
                   title=str(getattr(item, "subject", None) or "")[:60] or None,
                   private=ex.classification(getattr(item, "sensitivity", None)) is not Classification.PUBLIC)
