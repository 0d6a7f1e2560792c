"""Working hours published as VAVAILABILITY (RFC 7953), turned into :class:`~calmesh.model.WorkingHours`.

Why: some platforms (and people who keep their own ``.ics``) publish "when I can be booked" as a
VAVAILABILITY component: AVAILABLE sub-components, typically weekly-recurring, inside a period
that is otherwise unavailable. Scheduling needs that as the same working-hours shape Exchange and
the config give, so that slot finding treats every source alike. Parsing is icalendar's (its
``Availability``/``Available`` components); what this module adds is choosing the component that
applies and mapping it, with a clear error for anything working hours cannot express.

Rules (RFC 7953 section 4):

- Of the VAVAILABILITY components whose DTSTART/DTEND range covers ``at``, the one with the best
  PRIORITY wins (1 highest, 9 lowest, 0 or absent below 9); ties keep them all.
- Each AVAILABLE gives working time on the weekdays its RRULE names (``FREQ=WEEKLY;BYDAY=...``, or
  the weekday of DTSTART; ``FREQ=DAILY`` means every day, or its BYDAY days). A one-off AVAILABLE
  (no RRULE) or one crossing midnight cannot be working hours: it is skipped with a warning.
- Time outside every AVAILABLE counts as unavailable (our BUSY-UNAVAILABLE), whatever BUSYTYPE says.
- Floating times are in ``default_zone``; all AVAILABLE components must share one zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

import icalendar

from calmesh.model import WorkingHours, WorkingPeriod, as_utc
from calmesh.timezones import to_iana
from calmesh.timezones import zoneinfo as _tz

_BYDAY = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


class VAvailabilityError(ValueError):
    """A VAVAILABILITY text that cannot give working hours, with what is wrong."""


def _zone_of(value: datetime, default_zone: str) -> str:
    if value.tzinfo is None:
        return default_zone
    key = getattr(value.tzinfo, "key", None) or getattr(value.tzinfo, "zone", None) or value.tzname()
    iana = to_iana(str(key)) if key else None
    if iana is None:
        if value.utcoffset() == timedelta(0):
            return "UTC"
        raise VAvailabilityError(f"unknown time zone {key!r} in AVAILABLE")
    return iana


def _value(component: icalendar.cal.Component, name: str) -> Any:
    """A property's Python value as written (``.dt``), keeping its TZID, or None when absent.

    Not icalendar's typed accessors (``DTSTART``...): they convert to UTC and lose the zone the
    working hours are in."""
    prop = component.get(name)
    return getattr(prop, "dt", None)


def _covers(component: icalendar.cal.Component, at: datetime, zone: tzinfo) -> bool:
    start, end = _value(component, "DTSTART"), _value(component, "DTEND")
    if start is not None and as_utc(start, zone) > at:
        return False
    return end is None or as_utc(end, zone) > at


def _priority(component: icalendar.cal.Component) -> int:
    try:
        value = int(component.get("PRIORITY", 0) or 0)
    except (TypeError, ValueError):
        raise VAvailabilityError(f"bad PRIORITY {component.get('PRIORITY')!r}") from None
    return value if 1 <= value <= 9 else 10


def _days(available: icalendar.cal.Component, start: datetime) -> frozenset[int] | None:
    rules = available.get("RRULE")
    if rules is None:
        return None
    rule = rules[0] if isinstance(rules, list) else rules
    freq = [str(f).upper() for f in rule.get("FREQ", [])]
    byday = [str(d).upper()[-2:] for d in rule.get("BYDAY", [])]
    if byday and any(d not in _BYDAY for d in byday):
        raise VAvailabilityError(f"bad BYDAY {byday} in AVAILABLE")
    if freq == ["WEEKLY"]:
        return frozenset(_BYDAY[d] for d in byday) if byday else frozenset({start.weekday()})
    if freq == ["DAILY"]:
        return frozenset(_BYDAY[d] for d in byday) if byday else frozenset(range(7))
    return None


def working_hours(data: str | bytes, *, default_zone: str = "UTC", at: datetime | None = None
                  ) -> tuple[WorkingHours, list[str]]:
    """The working hours a VAVAILABILITY calendar publishes for the moment ``at`` (default now),
    plus warnings for AVAILABLE components that had to be skipped."""
    try:
        return _working_hours(data, default_zone, at)
    except VAvailabilityError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise VAvailabilityError(f"cannot read VAVAILABILITY: {exc}") from exc


def _working_hours(data: str | bytes, default_zone: str, at: datetime | None) -> tuple[WorkingHours, list[str]]:
    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise VAvailabilityError(f"not an iCalendar object: {exc}") from exc
    found = list(cal.walk("VAVAILABILITY"))
    if not found:
        raise VAvailabilityError("no VAVAILABILITY component")
    default_tz = _tz(default_zone)
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    current = [c for c in found if _covers(c, moment, default_tz)]
    if not current:
        raise VAvailabilityError(f"no VAVAILABILITY covers {moment:%Y-%m-%d %H:%M} UTC")
    best = min(_priority(c) for c in current)
    periods: list[WorkingPeriod] = []
    zones: set[str] = set()
    warnings: list[str] = []
    for component in (c for c in current if _priority(c) == best):
        for available in component.walk("AVAILABLE"):
            period, zone, warning = _period(available, default_zone)
            if warning:
                warnings.append(warning)
            if period is not None:
                periods.append(period)
                zones.add(zone)
    if not periods:
        raise VAvailabilityError("no usable AVAILABLE component: " + ("; ".join(warnings) or "none present"))
    if len(zones) > 1:
        raise VAvailabilityError(f"AVAILABLE components use several time zones ({', '.join(sorted(zones))})")
    return WorkingHours(zones.pop(), tuple(periods)), warnings


def _period(available: icalendar.cal.Component, default_zone: str) -> tuple[WorkingPeriod | None, str, str | None]:
    label = f"AVAILABLE {available.get('UID', '')}".strip()
    if available.get("DTSTART") is None:
        raise VAvailabilityError(f"{label} has no DTSTART")
    start = _value(available, "DTSTART")
    if not isinstance(start, datetime):
        return None, "", f"{label}: all-day AVAILABLE skipped (working hours need times)"
    if available.get("DTEND") is not None:
        end = _value(available, "DTEND")
    elif available.get("DURATION") is not None:
        end = start + _value(available, "DURATION")
    else:
        raise VAvailabilityError(f"{label} has neither DTEND nor DURATION")
    zone = _zone_of(start, default_zone)
    local_start = start.astimezone(_tz(zone)) if start.tzinfo else start
    local_end = end.astimezone(_tz(zone)) if isinstance(end, datetime) and end.tzinfo else end
    if not isinstance(local_end, datetime) or local_end.date() != local_start.date() or local_end <= local_start:
        return None, zone, f"{label}: spans midnight or ends before it starts; skipped"
    days = _days(available, local_start)
    if days is None:
        return None, zone, f"{label}: not weekly or daily recurring, so not working hours; skipped"
    return WorkingPeriod(days, _clock(local_start), _clock(local_end)), zone, None


def _clock(value: datetime) -> time:
    return value.time().replace(tzinfo=None)

