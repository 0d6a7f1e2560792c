"""A series whose first instance is the second of two equal wall times (the hour the clocks
repeat going back: an instant another platform gave, EWS, Graph or Google) is written so that
every instance reads back at its instant: RFC 5545 3.3.5 reads a local DTSTART as the first of
the two, and a DTSTART in UTC would make the rule recur in UTC. calmesh writes DTSTART at the
first of the two, an EXDATE of it, and the real first instance as an RDATE in UTC
(calmesh.model.in_writable_form). Expected instants: zoneinfo, and tests/timekeeping/self_defined.py
for a zone only the calendar defines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from calmesh import ical
from calmesh.core.projection import content_hash
from calmesh.model import CalendarItem, Event, Window
from calmesh.timezones import DefinedZone
from sync.peers import Group, Peer

from .self_defined import ZONES, Reading
from .test_sync_copies import radicale_busy, stored

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

HALF = timedelta(minutes=30)
DAYS = 4
KATHMANDU_SUMMER = ZONES["Kathmandu summer"]


def _zone(case: str) -> tzinfo:
    if case == "iana":
        return ZoneInfo("America/New_York")
    defined = ical.zone_of_vtimezone(KATHMANDU_SUMMER.vtimezone().replace("\n", "\r\n").encode(), 2026)
    assert isinstance(defined, DefinedZone)
    return defined


CASES = {
    # 01:30 New York on 1 November 2026, second time round: 06:30 UTC (EST)
    "iana": (datetime(2026, 11, 1, 1, 30), lambda wall: wall.replace(tzinfo=ZoneInfo("America/New_York"))
             .astimezone(UTC)),
    # 02:30 on the last Sunday of September 2026 in a +05:45 zone with summer time at +06:45
    "self-defined": (datetime(2026, 9, 27, 2, 30), Reading(KATHMANDU_SUMMER).instant),
}


def series(case: str) -> tuple[CalendarItem, list[tuple[datetime, datetime]]]:
    """A daily series of ``DAYS`` half-hour instances from the second of two equal wall times,
    as a platform giving instants reads it, and its instants (the first an hour after the first
    reading of its wall time, the others at their wall time each day)."""
    wall, reading = CASES[case]
    zone = _zone(case)
    start = wall.replace(tzinfo=zone, fold=1)
    assert start.utcoffset() != start.replace(fold=0).utcoffset()
    first = reading(wall) + timedelta(hours=1)
    assert start.astimezone(UTC) == first
    master = Event(uid=f"repeated-{case}@test", start=start, end=(first + HALF).astimezone(zone),
                   summary="from the second time round", rrule=[f"FREQ=DAILY;COUNT={DAYS}"])
    expected = [first] + [reading(wall + timedelta(days=n)) for n in range(1, DAYS)]
    return CalendarItem(master.uid, [master]), [(s, s + HALF) for s in expected]


def instants(text: bytes | str) -> list[tuple[datetime, datetime]]:
    found, problems = ical.expand(text, Window(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)))
    assert not problems, problems
    return sorted((e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in found)  # type: ignore[union-attr]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_series_from_the_second_of_two_equal_wall_times_keeps_every_instant(case: str) -> None:
    """Read, write, read, write: every instance at its instant each time, and the copy read back
    is the same content (a sync does not take it for an edit)."""
    item, expected = series(case)
    written = ical.item_to_ical(item)
    assert instants(written) == expected
    [back], problems = ical.parse_items(written)
    assert not problems
    assert content_hash(back) == content_hash(item)
    again = ical.item_to_ical(back)
    assert instants(again) == expected
    assert b"RRULE:FREQ=DAILY;COUNT=4" in again


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_series_from_the_second_of_two_equal_wall_times_on_a_real_server(
        case: str, tmp_path: Path, xan: Peer, own_radicale: CalDAVServer) -> None:
    """Radicale takes the written form, its own free/busy expands it to the same instants, and
    a sync of it to Xandikos copies it once and then writes nothing."""
    radicale = own_radicale
    rad = Peer("rad", radicale.connector("rad"), radicale.new_calendar())
    item, expected = series(case)
    rad.conn.put(rad.calendar, item)
    assert instants(stored(radicale, rad)) == expected
    busy = radicale_busy(radicale, rad, Window(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)))
    assert busy == expected
    group = Group(tmp_path, rad, xan)
    assert group.run().counts["created"] == 1
    [copy] = xan.items()
    assert instants(ical.item_to_ical(copy)) == expected
    assert group.writes(group.run()) == 0
