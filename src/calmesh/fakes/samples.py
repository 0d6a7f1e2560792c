"""Sample calendar data for the fakes: the hard cases every Exchange test and the demo need.

A weekly series crossing Europe's DST change with one moved and one cancelled occurrence, an
all-day event, and a daily New York series across the US change a week later.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from calmesh.model import BusyType, CalendarItem, Event, EventStatus

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def weekly_series(uid: str = "series-1@calmesh.test") -> CalendarItem:
    """Tuesdays 09:00-09:30 Paris from 2026-10-20, six times (Europe leaves DST on 2026-10-25);
    the 2026-11-03 occurrence moves to Wednesday 10:00, the 2026-11-10 one is cancelled."""
    master = Event(
        uid=uid, start=datetime(2026, 10, 20, 9, 0, tzinfo=PARIS), end=datetime(2026, 10, 20, 9, 30, tzinfo=PARIS),
        summary="Sales stand-up", location="Room 1", rrule=["FREQ=WEEKLY;COUNT=6;BYDAY=TU"],
        exdate=[datetime(2026, 11, 10, 9, 0, tzinfo=PARIS)], tzid="Europe/Paris",
    )
    moved = Event(
        uid=uid, start=datetime(2026, 11, 4, 10, 0, tzinfo=PARIS), end=datetime(2026, 11, 4, 10, 30, tzinfo=PARIS),
        summary="Sales stand-up (moved)", location="Room 2",
        recurrence_id=datetime(2026, 11, 3, 9, 0, tzinfo=PARIS), tzid="Europe/Paris",
    )
    return CalendarItem(uid, [master, moved])


def all_day(uid: str = "allday-1@calmesh.test") -> CalendarItem:
    """Armistice Day off, 2026-11-11, out of office."""
    event = Event(uid=uid, start=date(2026, 11, 11), end=date(2026, 11, 12), summary="Public holiday",
                  busy_type=BusyType.BUSY_UNAVAILABLE)
    return CalendarItem(uid, [event])


def new_york_daily(uid: str = "ny-daily@calmesh.test") -> CalendarItem:
    """09:00-10:00 New York every day 2026-10-29..2026-11-04 (US DST ends 2026-11-01)."""
    event = Event(uid=uid, start=datetime(2026, 10, 29, 9, 0, tzinfo=NEW_YORK),
                  end=datetime(2026, 10, 29, 10, 0, tzinfo=NEW_YORK), summary="Pipeline review",
                  rrule=["FREQ=DAILY;COUNT=7"], tzid="America/New_York")
    return CalendarItem(uid, [event])


def single(uid: str, start: datetime, end: datetime, summary: str = "Customer call",
           status: EventStatus = EventStatus.CONFIRMED, busy_type: BusyType | None = None) -> CalendarItem:
    tzid = start.tzinfo.key if isinstance(start.tzinfo, ZoneInfo) else None
    return CalendarItem(uid, [Event(uid=uid, start=start, end=end, summary=summary, status=status,
                                    busy_type=busy_type, tzid=tzid)])
