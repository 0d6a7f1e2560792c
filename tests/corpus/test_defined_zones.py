"""Zones a calendar defines itself, as Outlook exports them (``Customized Time Zone``, Windows
names; observances from 1601 on yearly rules): calmesh's reading and expansion against the
independent reference, which reads the definition on its own, and against the same calendar
written with the IANA zone the definition matches, across changes of clocks and over the years.

Why here: calmesh answers such zones by bisection over their onsets (calmesh.vtimezone_rules)
and matches them to IANA zones year by year (calmesh.timezones.matching_iana); both were made
faster for issue 16, and neither may move an occurrence (issue 13)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from calmesh import ical as calmesh_ical
from calmesh.demo.servers import start_radicale
from calmesh.model import Window
from sync.peers import Group, Peer  # tests/sync, a sibling package on the test path
from timekeeping.self_defined import STAMP, ZONES, Reading, SelfZone, end_line
from timekeeping.zone_calendars import calendar

from .copies import put_object, stored_objects
from .expansion import calmesh_side, reference_calendars, reference_side

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

PARIS_RULES = (
    "BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\n")
EASTERN_RULES = (  # today's US rules, which America/New_York has only since 2007
    "BEGIN:STANDARD\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11\r\nEND:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\r\nEND:DAYLIGHT\r\n")
CASES = {
    # TZID as written, its rules, the IANA zone it matches, the first year it matches it
    "customized-paris": ("Customized Time Zone", PARIS_RULES, "Europe/Paris", 2002),
    "windows-eastern": ("Eastern Standard Time", EASTERN_RULES, "America/New_York", 2007),
}
FIRST_YEAR = 2002
WINDOWS = [Window(start, start + timedelta(days=45)) for year in (2002, 2006, 2007, 2026)
           for start in (datetime(year, 3, 1, tzinfo=UTC), datetime(year, 10, 15, tzinfo=UTC))]
"""Spring and autumn changes of clocks (EU and US) from the series' first year on."""


def _calendar(tzid: str, rules: str | None) -> bytes:
    """Series and single events in ``tzid`` from 2002 on: weekly on Sundays at 01:15 (an hour
    the US clocks repeat in November) and at 09:00, daily through the months of the changes
    (half an hour each), and from 01:30 to 04:00 on the day of the spring change of each year.
    No time the clocks skip: what calmesh reads there is another matter (a problem reported)."""
    events = []
    for n, (start, rule) in enumerate([
            (f"{FIRST_YEAR}0106T011500", "FREQ=WEEKLY;BYDAY=SU"),
            (f"{FIRST_YEAR}0106T090000", "FREQ=WEEKLY;BYDAY=SU"),
            (f"{FIRST_YEAR}0301T120000", "FREQ=DAILY;BYMONTH=3,4,10,11"),
    ]):
        events.append(f"UID:series-{n}\r\nSUMMARY:series {n}\r\nDTSTART;TZID={tzid}:{start}\r\n"
                      f"DURATION:PT30M\r\nRRULE:{rule}\r\n")
    for year in range(FIRST_YEAR, 2027):
        day = max(datetime(year, 3, d) for d in range(25, 32) if datetime(year, 3, d).weekday() == 6)
        events.append(f"UID:single-{year}\r\nSUMMARY:single {year}\r\nDTSTART;TZID={tzid}:{day:%Y%m%d}T013000\r\n"
                      f"DTEND;TZID={tzid}:{day:%Y%m%d}T040000\r\n")
    zone = f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\n{rules}END:VTIMEZONE\r\n" if rules else ""
    body = "".join(f"BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n{e}END:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{zone}{body}END:VCALENDAR\r\n".encode()


@pytest.mark.parametrize("case", CASES)
def test_a_defined_zone_expands_as_the_reference_and_as_its_iana_zone(case: str) -> None:
    tzid, rules, iana, matches_from = CASES[case]
    defined, named = _calendar(tzid, rules), _calendar(iana, None)
    reference = reference_calendars(defined)
    assert not reference.unreadable
    for window in WINDOWS:
        mine, problems = calmesh_side(defined, window)
        assert not problems, (window, problems)
        assert mine, window
        assert mine == reference_side(reference.calendars, window), window
        if window.start.year >= matches_from:
            assert mine == calmesh_side(named, window)[0], window


# ------------------------------------------------- zones of the calendar's own, through a real sync
SYNCED = ["Customized Time Zone", "Midnight South", "Newfoundland-like", "Nepal-like", "Lord Howe-like",
          "Summer time for good", "Summer time from 2026", "Outlook midnight"]
"""Midnight changes north and south, -03:30 and +05:45, half an hour of summer time, and rules
that change mid-series (a new standard offset from 2027, summer time from 2026)."""
EVERYTHING = Window(datetime(2019, 1, 1, tzinfo=UTC), datetime(2036, 1, 1, tzinfo=UTC))


def _objects(zone: SelfZone) -> tuple[dict[str, str], list[tuple[datetime, datetime]]]:
    """Objects in ``zone`` around its changes of clocks (by UID), and their occurrences as the
    zone's rules say: a weekly series of three hours across a change forward, one instance
    moved across a change back (its end in UTC where the repeated hour makes the local time
    read otherwise, as a careful client writes it) and one excluded; a daily half hour from a
    time the clocks skip; a monthly series without end with an extra date at a change back; a
    single event whose DURATION ends in the repeated hour."""
    reading = Reading(zone)
    changes = [(at.replace(tzinfo=UTC), before, after) for at, before, after
               in zip(reading.instants, reading.offsets, reading.offsets[1:], strict=False) if 2025 <= at.year <= 2028]
    none = (datetime(2026, 3, 29, tzinfo=UTC), reading.offsets[0], reading.offsets[0])  # a zone without changes
    forward = next((c for c in changes if c[2] > c[1]), none)
    back = next((c for c in reversed(changes) if c[2] < c[1]), none)
    hour, half = timedelta(hours=1), timedelta(minutes=30)
    tzid = zone.tzid
    objects, expected = {}, []

    def event(uid: str, start: datetime, *lines: str) -> str:
        return "\n".join(["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20250101T000000Z", f"SUMMARY:{uid}",
                          f"DTSTART;TZID={tzid}:{start:{STAMP}}", *lines, "END:VEVENT"])

    weekly = [reading.wall(forward[0] - hour) + timedelta(weeks=n) for n in range(12)]
    moved = back[0] - half
    objects["weekly"] = calendar(zone.vtimezone(), event(
        "weekly", weekly[0], "DURATION:PT3H", "RRULE:FREQ=WEEKLY;COUNT=12", f"EXDATE;TZID={tzid}:{weekly[5]:{STAMP}}"),
        "\n".join(["BEGIN:VEVENT", "UID:weekly", "DTSTAMP:20250101T000000Z", "SUMMARY:moved",
                   f"RECURRENCE-ID;TZID={tzid}:{weekly[3]:{STAMP}}", end_line(zone, reading, moved, timedelta(0), "DTSTART"),
                   end_line(zone, reading, moved, hour), "END:VEVENT"]))
    expected += [(reading.instant(w), reading.instant(w) + 3 * hour) for n, w in enumerate(weekly) if n not in (3, 5)]
    expected.append((moved, moved + hour))
    # a quarter of an hour before the end of the gap: the instance ends after it, read with the
    # offset after, and the library's wall-clock end came before the start
    skipped = (forward[0] + forward[2]).replace(tzinfo=None) - timedelta(minutes=15)
    daily = [skipped - timedelta(days=2) + timedelta(days=n) for n in range(5)]
    objects["daily"] = calendar(zone.vtimezone(), event("daily", daily[0], "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=5"))
    expected += [(reading.instant(w), reading.instant(w) + half) for w in daily]
    monthly = datetime(2025, 1, 10, 9)
    extra = reading.wall(back[0] + timedelta(minutes=10))
    objects["monthly"] = calendar(zone.vtimezone(), event(
        "monthly", monthly, "DTEND;TZID=" + tzid + f":{monthly + hour:{STAMP}}", "RRULE:FREQ=MONTHLY",
        f"RDATE;TZID={tzid}:{extra:{STAMP}}"))
    months = [monthly.replace(year=2025 + n // 12, month=n % 12 + 1) for n in range(12 * 11)]
    expected += [(reading.instant(w), reading.instant(w) + hour) for w in [*months, extra]
                 if reading.instant(w) < EVERYTHING.end]
    single = back[0] - timedelta(minutes=45)  # to a quarter past, second time round
    objects["single"] = calendar(zone.vtimezone(), event("single", reading.wall(single), "DURATION:PT60M"))
    expected.append((single, single + hour))
    return objects, sorted(expected)


@pytest.fixture(scope="module")
def two_radicales(tmp_path_factory: pytest.TempPathFactory,
                  _caldav_password: None) -> Iterator[tuple[CalDAVServer, CalDAVServer]]:
    """Two Radicale servers of this module's own: Radicale keeps the first VTIMEZONE it reads
    for a TZID while it runs, and ``Customized Time Zone`` means other rules in other tests."""
    from conftest import CALDAV_PASSWORD, CALDAV_USER, CalDAVServer

    users = {CALDAV_USER: CALDAV_PASSWORD}
    with start_radicale(tmp_path_factory.mktemp("radicale-own-a"), users) as a, \
            start_radicale(tmp_path_factory.mktemp("radicale-own-b"), users) as b:
        yield (CalDAVServer("radicale", a, f"{a.url}{CALDAV_USER}/"), CalDAVServer("radicale", b, f"{b.url}{CALDAV_USER}/"))


@pytest.mark.parametrize("tzid", SYNCED)
def test_self_defined_zones_keep_every_instant_through_a_sync_between_two_radicale_servers(
        tzid: str, tmp_path: Path, two_radicales: tuple[CalDAVServer, CalDAVServer]) -> None:
    """Objects in a zone only they define, stored on one Radicale server as a client wrote them,
    copied by the real sync engine to another: the copies have every occurrence at the instants
    the zone's rules give, as long as they last (never an end before a start), and a second run
    writes nothing."""
    zone = ZONES[tzid]
    objects, expected = _objects(zone)
    one, two = two_radicales
    source = Peer("one", one.connector("one"), one.new_calendar())
    target = Peer("two", two.connector("two"), two.new_calendar())
    for uid, text in objects.items():
        assert put_object(one, source.calendar, uid, text) is None
    group = Group(tmp_path, source, target)
    report = group.run()
    assert not report.errors, report.errors
    assert report.counts["created"] == len(objects)
    spans: list[tuple[datetime, datetime]] = []
    for uid, copy in stored_objects(two, target.calendar).items():
        found, problems = calmesh_ical.expand(copy, EVERYTHING)
        assert not problems, (uid, [p.message for p in problems])
        spans += [(e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in found]  # type: ignore[union-attr]
    assert all(end >= start for start, end in spans)
    assert sorted(spans) == expected
    assert group.writes(group.run()) == 0
