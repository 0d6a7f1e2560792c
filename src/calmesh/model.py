"""The calmesh domain model: what every platform's calendar data becomes once it is read.

Pure data, no I/O. Connectors translate their platform's shapes into these classes, the pure
core (``calmesh.core``) reasons over them, and the doors translate them back out. Keeping one
vocabulary here is what lets a Zoho event, an Exchange appointment and an in-house row be compared.

Times: timed values are timezone-aware ``datetime``; all-day values are ``date``; floating times
(RFC 5545 "local time" with no zone) are naive ``datetime`` and are resolved in the calendar
owner's zone when they must be placed on the time line (see :func:`as_utc`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

Temporal = date | datetime
"""An iCalendar DATE or DATE-TIME value as read: ``date`` for all-day, naive ``datetime`` for floating."""

MARKER_PROPERTY = "X-CALMESH-ORIGIN"
"""Every write calmesh makes carries this property (``platform/calendar/id`` of the source item) so a
re-run, a second calmesh or the echo of its own write is never mistaken for a new user event."""


class BusyType(enum.IntEnum):
    """How busy a stretch of time is. The integer values are Exchange's availability-view digits
    (0 free, 1 tentative, 2 busy, 3 out of office, 4 no data) so that "the highest status inside an
    interval wins" is simply ``max``. UNKNOWN ranks highest: missing data is never shown as free."""

    FREE = 0
    BUSY_TENTATIVE = 1
    BUSY = 2
    BUSY_UNAVAILABLE = 3
    UNKNOWN = 4

    @property
    def fbtype(self) -> str:
        """The RFC 5545 FBTYPE parameter value (UNKNOWN uses the x-name ``X-UNKNOWN``)."""
        return _FBTYPE_NAMES[self]

    @classmethod
    def from_fbtype(cls, value: str | None) -> BusyType:
        """Parse an FBTYPE value; RFC 5545 says an absent or unknown value means BUSY."""
        if not value:
            return cls.BUSY
        return _FBTYPE_VALUES.get(value.strip().upper(), cls.BUSY)

    @property
    def label(self) -> str:
        return _LABELS[self]


_FBTYPE_NAMES = {
    BusyType.FREE: "FREE",
    BusyType.BUSY_TENTATIVE: "BUSY-TENTATIVE",
    BusyType.BUSY: "BUSY",
    BusyType.BUSY_UNAVAILABLE: "BUSY-UNAVAILABLE",
    BusyType.UNKNOWN: "X-UNKNOWN",
}
_FBTYPE_VALUES = {v: k for k, v in _FBTYPE_NAMES.items()}
_LABELS = {
    BusyType.FREE: "Free",
    BusyType.BUSY_TENTATIVE: "Tentative",
    BusyType.BUSY: "Busy",
    BusyType.BUSY_UNAVAILABLE: "Out of office",
    BusyType.UNKNOWN: "Unknown",
}


class EventStatus(enum.StrEnum):
    TENTATIVE = "TENTATIVE"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


class Classification(enum.StrEnum):
    PUBLIC = "PUBLIC"
    PRIVATE = "PRIVATE"
    CONFIDENTIAL = "CONFIDENTIAL"


class PartStat(enum.StrEnum):
    NEEDS_ACTION = "NEEDS-ACTION"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    TENTATIVE = "TENTATIVE"
    DELEGATED = "DELEGATED"


class Role(enum.StrEnum):
    CHAIR = "CHAIR"
    REQUIRED = "REQ-PARTICIPANT"
    OPTIONAL = "OPT-PARTICIPANT"
    NON_PARTICIPANT = "NON-PARTICIPANT"


def normalize_email(value: str) -> str:
    """Lower-case an address and strip a ``mailto:`` prefix: platforms disagree on both."""
    value = value.strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    return value.strip().lower()


@dataclass(frozen=True, slots=True)
class Attendee:
    email: str
    name: str | None = None
    partstat: PartStat = PartStat.NEEDS_ACTION
    role: Role = Role.REQUIRED
    rsvp: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "email", normalize_email(self.email))


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open UTC interval ``[start, end)``: the span a query or an answer covers."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a Window needs timezone-aware datetimes")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))
        if self.end <= self.start:
            raise ValueError(f"window end {self.end.isoformat()} is not after start {self.start.isoformat()}")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return start < self.end and end > self.start

    def clip(self, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
        s, e = max(start, self.start), min(end, self.end)
        return (s, e) if s < e else None

    def split(self, max_length: timedelta) -> list[Window]:
        """Cut into consecutive windows no longer than ``max_length`` (vendor window limits)."""
        parts, cursor = [], self.start
        while cursor < self.end:
            nxt = min(cursor + max_length, self.end)
            parts.append(Window(cursor, nxt))
            cursor = nxt
        return parts


def as_utc(value: Temporal, default_tz: tzinfo = UTC) -> datetime:
    """Place a DATE, floating or aware DATE-TIME on the UTC time line.

    All-day dates start at local midnight and floating times are local, both in ``default_tz``
    (the zone of the calendar's owner): that is what a person means by "Tuesday" or "9:00".
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=default_tz)
        return value.astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=default_tz).astimezone(UTC)


def instant(value: Temporal) -> Temporal:
    """What tells an instance of a series from another (RFC 5545 3.8.5.3 counts instances by
    time): a zoned time as its UTC instant, a date or floating time as itself. Python's own
    equality is no such test: two zoned times in one zone are compared by wall clock (the two
    01:30 of a night the clocks go back are equal), and across zones a time in such a repeated
    hour is never equal to any other (PEP 495)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def is_endless(event: Event) -> bool:
    """Whether ``event``'s rules recur for ever (a rule with neither COUNT nor UNTIL): such a
    series cannot be spelled out or given every override a platform would need."""
    return any("COUNT=" not in r.upper() and "UNTIL=" not in r.upper() for r in event.rrule)


def is_all_day(value: Temporal) -> bool:
    return not isinstance(value, datetime)


@dataclass(slots=True)
class Event:
    """One VEVENT: a single event, a recurring master (``rrule`` set) or an override/occurrence
    (``recurrence_id`` set). Expanded occurrences carry their ``recurrence_id`` and no ``rrule``.

    Treated as immutable once read: change a copy (``dataclasses.replace``), never an event a
    connector returned, since objects read from stored text are shared by every reader of the
    same text (see ``calmesh.ical.parse_object``)."""

    uid: str
    start: Temporal
    end: Temporal | None = None
    summary: str | None = None
    description: str | None = None
    location: str | None = None
    recurrence_id: Temporal | None = None
    rrule: list[str] = field(default_factory=list)
    rdate: list[Temporal] = field(default_factory=list)
    exdate: list[Temporal] = field(default_factory=list)
    transparent: bool = False
    status: EventStatus = EventStatus.CONFIRMED
    classification: Classification = Classification.PUBLIC
    sequence: int = 0
    last_modified: datetime | None = None
    created: datetime | None = None
    organizer: Attendee | None = None
    attendees: list[Attendee] = field(default_factory=list)
    busy_type: BusyType | None = None
    """An explicit busy type from the platform (Exchange's OOF, X-MICROSOFT-CDO-BUSYSTATUS);
    ``None`` means "derive it from STATUS/TRANSP" (see :meth:`effective_busy_type`)."""
    tzid: str | None = None
    """The IANA zone the event was authored in, kept so writes round-trip local times."""
    extra: dict[str, str] = field(default_factory=dict)
    """Other properties worth carrying across platforms (X- properties such as the calmesh marker)."""
    this_and_future: bool = False
    """An override with ``RECURRENCE-ID;RANGE=THISANDFUTURE``: its changes apply to every later
    instance too (RFC 5545 3.8.4.4)."""
    alarms: list[str] = field(default_factory=list)
    """The event's VALARMs, each as iCalendar text, carried into copies as they are."""
    unmodelled: tuple[str, ...] = ()
    """The content lines of the properties no field above holds (CATEGORIES, URL, ATTACH, a
    client's X- properties...), as read: written back with the event so that nothing its
    author's client put there is lost. Not part of the synced content's hash: a platform
    that cannot hold them (Exchange, Google) reads back without them, which is no change."""

    @property
    def all_day(self) -> bool:
        return is_all_day(self.start)

    @property
    def is_recurring_master(self) -> bool:
        return bool(self.rrule or self.rdate) and self.recurrence_id is None

    @property
    def private(self) -> bool:
        return self.classification is not Classification.PUBLIC

    def effective_end(self) -> Temporal:
        """DTEND, or the RFC 5545 default when absent: one day for all-day, zero length otherwise."""
        if self.end is not None:
            return self.end
        if self.all_day:
            return self.start + timedelta(days=1)
        return self.start

    def span_utc(self, default_tz: tzinfo = UTC) -> tuple[datetime, datetime]:
        return as_utc(self.start, default_tz), as_utc(self.effective_end(), default_tz)

    def partstat_of(self, email: str) -> PartStat | None:
        """The participation status of ``email`` in this event, or None when not an attendee."""
        email = normalize_email(email)
        if self.organizer is not None and self.organizer.email == email:
            return PartStat.ACCEPTED
        for attendee in self.attendees:
            if attendee.email == email:
                return attendee.partstat
        return None

    def effective_busy_type(self, for_email: str | None = None) -> BusyType:
        """What this event means for its calendar owner's availability.

        Transparent, cancelled and declined events do not block (FREE). A tentative event, or an
        invitation the owner answered tentatively or has not answered yet, is BUSY-TENTATIVE.
        """
        if self.status is EventStatus.CANCELLED or self.transparent:
            return BusyType.FREE
        partstat = self.partstat_of(for_email) if for_email else None
        if partstat is PartStat.DECLINED:
            return BusyType.FREE
        if self.busy_type is not None:
            return self.busy_type
        if self.status is EventStatus.TENTATIVE or partstat in (PartStat.TENTATIVE, PartStat.NEEDS_ACTION):
            return BusyType.BUSY_TENTATIVE
        return BusyType.BUSY

    def with_changes(self, **changes: object) -> Event:
        return replace(self, **changes)  # type: ignore[arg-type]


def in_writable_form(event: Event) -> Event:
    """``event`` as iCalendar can say it: the same instances. A series whose first instance is
    the second of two equal wall times (the hour the clocks repeat going back; PEP 495's fold 1)
    has no DTSTART saying so: RFC 5545 3.3.5 reads that local time as its first occurrence, an
    hour earlier, and a DTSTART in UTC would make its rule recur in UTC. Written instead: DTSTART
    at the first of the two (the rule recurs from the same wall time, COUNT counts from it as
    before), that instance excluded (EXDATE), and the real first instance an RDATE in UTC, each
    instance as long as before (RFC 5545 3.8.5.3: the length is DTSTART to DTEND). Every other
    event as it is."""
    start = event.start
    if event.recurrence_id is not None or not (event.rrule or event.rdate) or not isinstance(start, datetime) \
            or start.tzinfo is None or not start.fold or start.replace(fold=0).utcoffset() == start.utcoffset():
        return event
    first = start.replace(fold=0)
    end = event.end
    if isinstance(end, datetime) and end.tzinfo is not None:
        end = (first.astimezone(UTC) + (as_utc(end) - as_utc(start))).astimezone(end.tzinfo)
    return replace(event, start=first, end=end, exdate=[*event.exdate, first],
                   rdate=[*event.rdate, start.astimezone(UTC)])


@dataclass(frozen=True, slots=True)
class CalendarInfo:
    """A calendar (collection) on a platform."""

    id: str
    """Stable identifier on its platform: a CalDAV collection URL, an EWS folder id, a path."""
    name: str
    platform: str = ""
    owner: str | None = None
    read_only: bool = False
    color: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class ItemRef:
    """Where one stored calendar object lives on its platform, and its version there."""

    calendar: str
    id: str
    """CalDAV href, EWS ItemId, Graph event id, ICS UID..."""
    etag: str | None = None
    """CalDAV ETag, EWS ChangeKey, Graph @odata.etag: the If-Match value for a safe write."""


@dataclass(slots=True)
class CalendarItem:
    """One stored object: a master event with its overrides (RFC 4791 "calendar object resource").

    Sync moves whole items so that a series and its moved or cancelled occurrences travel together.
    """

    uid: str
    components: list[Event]
    ref: ItemRef | None = None

    @property
    def master(self) -> Event | None:
        for event in self.components:
            if event.recurrence_id is None:
                return event
        return None

    @property
    def overrides(self) -> list[Event]:
        return [e for e in self.components if e.recurrence_id is not None]

    @property
    def marker(self) -> str | None:
        for event in self.components:
            if MARKER_PROPERTY in event.extra:
                return event.extra[MARKER_PROPERTY]
        return None


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What changed in a calendar since a change token.

    ``complete`` is True when ``changed`` is a full listing (first sync, or a token the platform
    no longer accepts): a consumer then infers deletions by absence instead of trusting ``deleted``.
    ``unreadable`` lists items that exist but could not be read, with why: a consumer quarantines
    them and must never take their absence from ``changed`` for a deletion. ``unchanged`` (only
    when asked for) lists items present at a version the consumer holds, not fetched.
    """

    changed: list[CalendarItem]
    deleted: list[ItemRef]
    token: str | None
    complete: bool = False
    unreadable: list[tuple[ItemRef, Problem]] = field(default_factory=list)
    unchanged: list[ItemRef] = field(default_factory=list)
    """Items present at the version the consumer said it knew (``Connector.changes_skipping``),
    not fetched: present and unchanged, like items a change feed does not mention."""


@dataclass(frozen=True, slots=True)
class BusyPeriod:
    start: datetime
    end: datetime
    type: BusyType = BusyType.BUSY
    source: str | None = None
    """Platform name the period came from (after a merge: the source of the winning type)."""
    summary: str | None = None
    """Only filled where privacy rules grant details; never for private events."""
    location: str | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("BusyPeriod needs timezone-aware datetimes")
        if self.end <= self.start:
            raise ValueError("BusyPeriod end must be after start")


@dataclass(frozen=True, slots=True)
class WorkingPeriod:
    """Working time on some weekdays (0 = Monday), in the owner's local zone."""

    days: frozenset[int]
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class WorkingHours:
    timezone: str
    periods: tuple[WorkingPeriod, ...]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def simple(cls, timezone: str, start: time, end: time, days: Iterable[int] = range(5)) -> WorkingHours:
        return cls(timezone, (WorkingPeriod(frozenset(days), start, end),))


class ProblemCode(enum.StrEnum):
    """What went wrong with one item (an event, a row, a published working-hours source): the part
    of a problem every asker may read. The message of a :class:`Problem` may quote the item (a
    broken line of its text, a title): what a door shows an asker who may not see that person's
    details is the code's :attr:`reason` only, counted per platform (see :func:`shown`)."""

    UNKNOWN_ZONE = "unknown-zone"
    END_BEFORE_START = "end-before-start"
    BAD_TIME = "bad-time"
    RECURRENCE = "recurrence"
    PROPERTY = "property"
    NO_UID = "no-uid"
    TEXT_CUT = "text-cut"
    FLOATING_END = "floating-end"
    SEVERAL_UIDS = "several-uids"
    NO_DATA = "no-data"
    TOO_LARGE = "too-large"
    UNREADABLE = "unreadable"
    WORKING_HOURS = "working-hours"

    @property
    def reason(self) -> str:
        return _REASONS[self]


_REASONS = {
    ProblemCode.UNKNOWN_ZONE: "unknown time zone",
    ProblemCode.END_BEFORE_START: "end before start",
    ProblemCode.BAD_TIME: "unreadable or missing time",
    ProblemCode.RECURRENCE: "unreadable or too costly recurrence",
    ProblemCode.PROPERTY: "unreadable property ignored",
    ProblemCode.NO_UID: "no UID",
    ProblemCode.TEXT_CUT: "overlong text cut",
    ProblemCode.FLOATING_END: "end time without a time zone",
    ProblemCode.SEVERAL_UIDS: "several events in one object",
    ProblemCode.NO_DATA: "the server sent no data",
    ProblemCode.TOO_LARGE: "over the server's size limit",
    ProblemCode.UNREADABLE: "unreadable",
    ProblemCode.WORKING_HOURS: "published working hours could not be read",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that went wrong for part of an answer: reported, never silently dropped.

    Structured so each door can show it as its asker may see it (:func:`shown`): ``code`` (None
    for a platform or calendar that failed as a whole) says what kind of item problem it is in
    words anyone may read; ``item`` and ``title`` name the item and ``message`` says exactly what
    was wrong with it: at a door, only for askers granted the person's details, and never for a
    ``private`` (CLASS:PRIVATE/CONFIDENTIAL) event."""

    platform: str
    message: str
    item: str | None = None
    """The item concerned (``UID ...``, a row, an href), when the problem is one item rather than
    the platform; None for the calendar or platform as a whole."""
    unknown: tuple[datetime, datetime] | None = None
    """The time this problem leaves unknown (a series that could not be expanded, a calendar text
    that could not be read): an answer shows it as UNKNOWN, never as free."""
    code: ProblemCode | None = None
    title: str | None = None
    """The event's SUMMARY (cut to 60 characters), when it has one."""
    private: bool = False
    """The item is (or may be) CLASS:PRIVATE or CONFIDENTIAL: no door names it (title, UID) or
    quotes its message, whoever asks; the CLI, for the local operator, does."""
    calendar: str | None = None
    person: str | None = None
    """The directory email whose calendar held the item, once a service knows it."""
    setting: str | None = None
    """The platform setting to fix, when one is to blame (named by the CLI, not by the server)."""

    def __str__(self) -> str:
        """The whole text, for the local operator (CLI, logs): title, reference and message."""
        item = f"{self.title!r} ({self.item})" if self.title and self.item else (
            repr(self.title) if self.title else self.item)
        return f"{self.platform}: {item}: {self.message}" if item else f"{self.platform}: {self.message}"

    def about(self, item_id: str) -> bool:
        """Whether this problem is about the item at ``item_id`` (an href, say): named by it, or
        by a part of it (``UID ... in <href>``, one event of an object)."""
        return self.item == item_id or (self.item or "").endswith(f" in {item_id}")

    @property
    def plain_message(self) -> str:
        """The message, or for a private item only its kind: what may be kept where others read it
        (a private event's message may quote its text)."""
        return self.code.reason if self.private and self.code is not None else self.message

    def render(self, details: bool | None) -> str | None:
        """This problem as an asker may read it, or None where only a count of such problems may be
        shown (see :func:`shown`). ``details``: the asker may see the person's details; None for
        the local operator (the CLI), who reads everything."""
        return str(self) if details is None or self.code is None or details and not self.private else None


def shown(problems: Iterable[Problem], details: bool | None) -> list[str]:
    """Problems as an asker may read them, in order: whole for the operator (``details`` None) and
    for askers granted the person's details (True); item problems of private events, and all of
    them for anyone else, counted per platform and reason with nothing of the items (``projects: 2
    events could not be fully read (unknown time zone)``). Each text once."""
    out: list[str | tuple[str, ProblemCode]] = []
    counted: dict[tuple[str, ProblemCode], set[str | None]] = {}
    for problem in problems:
        text = problem.render(details)
        if text is not None:
            out.append(text)
            continue
        assert problem.code is not None  # render() shows every platform-level problem
        key = (problem.platform, problem.code)
        if key not in counted:
            counted[key] = set()
            out.append(key)
        counted[key].add(problem.item)
    texts = [entry if isinstance(entry, str) else _count_text(*entry, len(counted[entry])) for entry in out]
    return list(dict.fromkeys(texts))


def _count_text(platform: str, code: ProblemCode, count: int) -> str:
    if code is ProblemCode.WORKING_HOURS:
        return f"{platform}: {code.reason}"
    return f"{platform}: {count} event{'s' if count != 1 else ''} could not be fully read ({code.reason})"


@dataclass(slots=True)
class PersonFreeBusy:
    """A person's availability over a window, merged across every calendar that holds their time."""

    email: str
    window: Window
    busy: list[BusyPeriod] = field(default_factory=list)
    working_hours: WorkingHours | None = None
    errors: list[Problem] = field(default_factory=list)
    """Whole platforms that could not answer: their time is reported as UNKNOWN, not free."""
    warnings: list[Problem] = field(default_factory=list)
    """Single items that could not be read; the rest of their calendar still counted."""
    name: str | None = None
    platform: str | None = None
    """The person's home platform; None for someone calmesh holds no calendar of (not in the
    directory), whose time is unknown because nobody asked, not because it could not be read."""

    @property
    def complete(self) -> bool:
        return not self.errors


@lru_cache(maxsize=4096)  # the same few rules, on every read and every write
def rrule_problem(rule: str) -> str | None:
    """Why an RRULE value cannot be used, or None. One test for every side: the reader (which
    expands with dateutil, through recurring-ical-events), the iCalendar writer and the sync
    planner (which quarantines an item whose rule no platform could be given) must agree, or an
    object accepted when read fails when written (``FREQ=FORTNIGHTLY``, ``UNTL=`` for ``UNTIL=``)."""
    try:
        rrulestr(rule, dtstart=datetime(2000, 1, 1), ignoretz=True)
    except (ValueError, TypeError, OverflowError) as exc:
        return str(exc) or "unreadable rule"
    return None
