"""Find a time for a meeting across people on different platforms (like Graph findMeetingTimes). Pure.

Input: each attendee's merged free/busy (:class:`~calmesh.model.PersonFreeBusy`, UNKNOWN where a
platform failed), required or optional, plus duration, search window, buffers, minimum notice
relative to an explicit ``now``, slot granularity and the organizer's working hours. Output: ranked
suggestions, each with every attendee's status and a confidence percentage.

Rules, and why:

- A slot where a required attendee is busy, out of office or outside their working hours is never
  suggested, nor one over time a required attendee's own calendars leave unknown (a platform that
  failed, a file that could not be read, a series that could not be expanded): calmesh holds that
  time and could not read it, so it may well be taken. A required attendee who is tentative ranks
  the slot lower (tentative time may free up), and so does one calmesh holds no calendar of (a
  guest outside the directory, ``PersonFreeBusy.platform`` None): all of their time is unknown,
  as Graph's "no data" for an external attendee, shown as unknown, never as free. Busy time one
  platform reported still counts when another platform of the same person failed.
- Buffers pad the meeting against the attendee's *events* (no back-to-back meetings) but not against
  working hours, so a 09:00 meeting with a 10-minute buffer is still inside a 09:00 start.
- Working hours are computed per local day by :func:`~calmesh.core.freebusy.outside_working_hours`,
  so Paris, New York and Tokyo stay right across their different DST changes.
- Time an attendee's free/busy does not cover (outside ``PersonFreeBusy.window``) is UNKNOWN.
- Busy lists should come without working-hours padding (the service's ``working_hours=False``):
  working hours are applied here, from ``PersonFreeBusy.working_hours``. Padding left in is
  counted as busy time, which is conservative, never wrong in the person's favour.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from calmesh.core.freebusy import invert, merge_busy, outside_working_hours
from calmesh.model import BusyPeriod, BusyType, PersonFreeBusy, Window, WorkingHours

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Availability(enum.StrEnum):
    """An attendee's status for one suggestion, named as Graph's ``freeBusyStatus`` values."""

    FREE = "free"
    TENTATIVE = "tentative"
    BUSY = "busy"
    OUT_OF_OFFICE = "oof"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, kind: BusyType) -> Availability:
        return _AVAILABILITY[kind]

    @property
    def likelihood(self) -> float:
        """Chance the attendee can come, modelled on Graph's findMeetingTimes confidence: free 100,
        tentative 50, unknown 49 (just under Graph's 50% default threshold), busy or away 0."""
        return _LIKELIHOOD[self]


_AVAILABILITY = {
    BusyType.FREE: Availability.FREE,
    BusyType.BUSY_TENTATIVE: Availability.TENTATIVE,
    BusyType.BUSY: Availability.BUSY,
    BusyType.BUSY_UNAVAILABLE: Availability.OUT_OF_OFFICE,
    BusyType.UNKNOWN: Availability.UNKNOWN,
}
_LIKELIHOOD = {
    Availability.FREE: 100.0,
    Availability.TENTATIVE: 50.0,
    Availability.UNKNOWN: 49.0,
    Availability.BUSY: 0.0,
    Availability.OUT_OF_OFFICE: 0.0,
}
_BLOCKING = frozenset({Availability.BUSY, Availability.OUT_OF_OFFICE})


@dataclass(frozen=True, slots=True)
class SlotAttendee:
    freebusy: PersonFreeBusy
    required: bool = True

    @property
    def email(self) -> str:
        return self.freebusy.email


@dataclass(frozen=True, slots=True)
class SlotQuery:
    """What to search for. ``now`` is an argument (not the clock) so the search stays pure."""

    attendees: tuple[SlotAttendee, ...]
    duration: timedelta
    window: Window
    now: datetime
    granularity: timedelta = timedelta(minutes=30)
    """Candidate starts are multiples of this since the Unix epoch: :00/:15/:30/:45 in every zone
    whose offset is a whole quarter-hour."""
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    minimum_notice: timedelta = timedelta(0)
    organizer_hours: WorkingHours | None = None
    """When given, only slots entirely inside the organizer's working hours are considered."""
    max_candidates: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "attendees", tuple(self.attendees))
        if not self.attendees:
            raise ValueError("a slot search needs at least one attendee")
        emails = [a.email.lower() for a in self.attendees]
        if len(set(emails)) != len(emails):
            raise ValueError("an attendee is listed twice")
        if self.now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if self.duration <= timedelta(0):
            raise ValueError("duration must be positive")
        if self.granularity <= timedelta(0):
            raise ValueError("granularity must be positive")
        for name in ("buffer_before", "buffer_after", "minimum_notice"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"{name} must not be negative")
        if self.max_candidates < 1:
            raise ValueError("max_candidates must be at least 1")


@dataclass(frozen=True, slots=True)
class AttendeeAvailability:
    email: str
    required: bool
    availability: Availability
    outside_working_hours: bool = False
    """True when the slot lies (at least partly) outside their working hours: unavailable, whatever
    their calendar says."""

    @property
    def blocking(self) -> bool:
        """Whether this status rules the slot out when the attendee is required."""
        return self.outside_working_hours or self.availability in _BLOCKING

    @property
    def likelihood(self) -> float:
        return 0.0 if self.outside_working_hours else self.availability.likelihood


@dataclass(frozen=True, slots=True)
class Suggestion:
    start: datetime
    end: datetime
    attendees: tuple[AttendeeAvailability, ...]
    confidence: float
    """Mean attendance likelihood over all attendees, 0-100 (see :attr:`Availability.likelihood`)."""

    @property
    def required_not_free(self) -> int:
        return sum(1 for a in self.attendees if a.required and a.availability is not Availability.FREE)

    @property
    def optional_free(self) -> int:
        return sum(1 for a in self.attendees if not a.required and a.availability is Availability.FREE)

    @property
    def tentative(self) -> int:
        return sum(1 for a in self.attendees if a.availability is Availability.TENTATIVE)

    @property
    def unknown(self) -> int:
        return sum(1 for a in self.attendees if a.availability is Availability.UNKNOWN)

    def rank_key(self) -> tuple[int, int, int, int, datetime]:
        """All required free first, then most optional free, then fewest tentative, then fewest
        unknown, then earliest."""
        return (self.required_not_free, -self.optional_free, self.tentative, self.unknown, self.start)


@dataclass(frozen=True, slots=True)
class SlotSearch:
    """The ranked suggestions, or why there are none (``empty_reason``)."""

    suggestions: list[Suggestion]
    empty_reason: str | None = None


class _Timeline:
    """Disjoint, sorted busy periods with a binary-search "worst status in [start, end)" query.

    :func:`~calmesh.core.freebusy.status_in` scans every period; a search asks the same person
    about hundreds of candidate slots, so it is worth indexing once.
    """

    def __init__(self, periods: Iterable[BusyPeriod]) -> None:
        merged = merge_busy(periods)
        self._starts = [p.start for p in merged]
        self._ends = [p.end for p in merged]
        self._types = [p.type for p in merged]

    def worst(self, start: datetime, end: datetime) -> BusyType:
        i = bisect_right(self._ends, start)
        best = BusyType.FREE
        while i < len(self._starts) and self._starts[i] < end:
            best = max(best, self._types[i])
            i += 1
        return best


@dataclass(slots=True)
class _Person:
    """One attendee's time, indexed. Known busy time and UNKNOWN time are kept apart because a
    merge would let UNKNOWN (the highest type) hide a BUSY period that another platform did report:
    known busy or away time wins, missing data comes next, and only then tentative or free."""

    email: str
    required: bool
    known: _Timeline
    unknown: _Timeline
    outside: _Timeline
    held: bool
    """Whether calmesh holds this person's calendars: their unknown time is unread, not unasked."""

    def status(self, start: datetime, end: datetime, before: timedelta, after: timedelta) -> AttendeeAvailability:
        kind = self.known.worst(start - before, end + after)
        outside = self.outside.worst(start, end) is not BusyType.FREE
        if outside:
            kind = max(kind, BusyType.BUSY_UNAVAILABLE)
        if kind < BusyType.BUSY and self.unknown.worst(start - before, end + after) is BusyType.UNKNOWN:
            kind = BusyType.UNKNOWN
        return AttendeeAvailability(self.email, self.required, Availability.of(kind), outside)


def find_slots(query: SlotQuery) -> SlotSearch:
    """Ranked meeting-time suggestions (at most ``max_candidates``), best first."""
    earliest = max(query.window.start, query.now.astimezone(UTC) + query.minimum_notice)
    first = _align(earliest, query.granularity)
    if first + query.duration > query.window.end:
        return SlotSearch([], "no slot fits between now plus the minimum notice and the end of the window")
    padded = Window(query.window.start - query.buffer_before, query.window.end + query.buffer_after)
    people = [_person(a, padded) for a in query.attendees]
    organizer = _Timeline(outside_working_hours(query.organizer_hours, query.window)) if query.organizer_hours else None

    found: list[Suggestion] = []
    inside_organizer_hours = False
    start = first
    while start + query.duration <= query.window.end:
        end = start + query.duration
        if organizer is None or organizer.worst(start, end) is BusyType.FREE:
            inside_organizer_hours = True
            suggestion = _suggest(people, start, end, query)
            if suggestion is not None:
                found.append(suggestion)
        start += query.granularity
    if not found:
        reason = ("required attendees are busy, away or outside their working hours at every candidate time"
                  if inside_organizer_hours else "no candidate time falls inside the organizer's working hours")
        return SlotSearch([], reason)
    found.sort(key=Suggestion.rank_key)
    return SlotSearch(found[:query.max_candidates])


def _align(instant: datetime, step: timedelta) -> datetime:
    """The first multiple of ``step`` since the epoch at or after ``instant``."""
    steps = -((_EPOCH - instant) // step)  # ceiling division
    return _EPOCH + steps * step


def _person(attendee: SlotAttendee, padded: Window) -> _Person:
    fb = attendee.freebusy
    uncovered = invert([BusyPeriod(fb.window.start, fb.window.end)], padded, BusyType.UNKNOWN, source="not covered")
    hours = outside_working_hours(fb.working_hours, padded) if fb.working_hours else []
    known = [p for p in fb.busy if p.type is not BusyType.UNKNOWN]
    missing = [p for p in fb.busy if p.type is BusyType.UNKNOWN] + uncovered
    return _Person(fb.email, attendee.required, _Timeline(known), _Timeline(missing), _Timeline(hours),
                   held=fb.platform is not None)


def _suggest(people: Sequence[_Person], start: datetime, end: datetime, query: SlotQuery) -> Suggestion | None:
    statuses = []
    for person in people:
        status = person.status(start, end, query.buffer_before, query.buffer_after)
        unread = person.held and status.availability is Availability.UNKNOWN
        if person.required and (status.blocking or unread):
            return None
        statuses.append(status)
    confidence = round(sum(s.likelihood for s in statuses) / len(statuses), 2)
    return Suggestion(start, end, tuple(statuses), confidence)
