"""A zone of an object's own on Exchange through EWS (issue 13, item 3: a copy keeps its local
zone, "else carry the definition"), through real syncs between Radicale and the EWS fake
(calmesh.fakes.ews: protocol-faithful SOAP on loopback, which reads a ``StartTimeZone``'s
``TimeZoneDefinitionType`` on its own, calmesh.fakes.ews_zones, and expands series in it).

Expected occurrences are written out by hand: the dates with dateutil, the offsets from the
zone's rules as stated in each test, never through calmesh's conversion or the fake's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from dateutil.rrule import FR, MONTHLY, SU, WEEKLY, rrule

from calmesh import ical
from calmesh.fakes.ews import EWSFake
from calmesh.fakes.ews_zones import DefinitionZone
from calmesh.model import CalendarItem, Event, Window
from calmesh.timezones import DefinedZone
from connectors.vendors import ALICE, VENDORS
from sync.peers import Group, Peer
from timekeeping.self_defined import ZONES, Reading
from timekeeping.zone_calendars import ONE_SUMMER, Rules, calendar, vevent

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

HOUR = timedelta(hours=1)
MADE_UP = Rules("+0100", "+0200", (4, "1SU", 2), (10, "1SU", 3))
"""Summer time from the first Sunday of April (02:00) to the first Sunday of October (03:00):
no IANA zone has these rules."""
ZONE = "Customized Time Zone"
WEEKLY_WITH_CHANGES = calendar(
    MADE_UP.vtimezone(ZONE),
    vevent("own-zone@test", "20250115T100000", "20250115T110000", tzid=ZONE,
           extra=f"RRULE:FREQ=WEEKLY;COUNT=30\nEXDATE;TZID={ZONE}:20250122T100000"),
    vevent("own-zone@test", "20250409T150000", "20250409T160000", tzid=ZONE,
           extra=f"RECURRENCE-ID;TZID={ZONE}:20250409T100000", summary="moved to the afternoon"),
)
"""Weekly at 10:00 from 15 January 2025, across both changes of clocks: one occurrence deleted,
one moved to 15:00."""
MONTHLY_ENDLESS = calendar(
    MADE_UP.vtimezone("HQ time"),
    vevent("hq-monthly@test", "20250103T090000", "20250103T093000", tzid="HQ time",
           extra="RRULE:FREQ=MONTHLY;BYDAY=1FR"),
)
"""The first Friday of every month at 09:00, without end."""


def made_up(wall: datetime) -> datetime:
    """``wall`` (naive) under MADE_UP, by its rules: +02:00 from the first Sunday of April 02:00
    to the first Sunday of October 03:00."""
    def first_sunday(month: int) -> datetime:
        return rrule(MONTHLY, dtstart=datetime(wall.year, month, 1), byweekday=SU(1), count=1)[0]

    summer = first_sunday(4) + timedelta(hours=2) <= wall < first_sunday(10) + timedelta(hours=3)
    return wall.replace(tzinfo=timezone(timedelta(hours=2 if summer else 1)))


def spans(walls: list[datetime], length: timedelta, zone: object = made_up) -> list[tuple[datetime, datetime]]:
    local = [zone(w) for w in walls]  # type: ignore[operator]
    return sorted((s.astimezone(UTC), (s + length).astimezone(UTC)) for s in local)


WEEKLY_EXPECTED = spans([w for w in rrule(WEEKLY, dtstart=datetime(2025, 1, 15, 10), count=30)
                         if w.date() not in (date(2025, 1, 22), date(2025, 4, 9))]
                        + [datetime(2025, 4, 9, 15)], HOUR)


@pytest.fixture
def ews(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Peer, EWSFake]]:
    vendor = VENDORS["ews"](monkeypatch)
    vendor.fake.start()
    try:
        yield Peer(vendor.platform, vendor.connect(), ALICE), vendor.fake
    finally:
        vendor.close()


def put_raw(server: CalDAVServer, peer: Peer, name: str, text: str) -> None:
    response = httpx.put(peer.calendar + name, content=text.encode(), timeout=30,
                         headers={"Content-Type": "text/calendar; charset=utf-8"},
                         auth=(server.username, server.password))
    assert response.status_code in (201, 204), response.text


def occurrences(peer: Peer, window: Window) -> list[tuple[datetime, datetime]]:
    """What the peer's own server expands (EWS: FindItem's CalendarView), in UTC."""
    events, problems = peer.conn.events(peer.calendar, window)
    assert not problems
    return sorted((e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in events)  # type: ignore[union-attr]


def expanded(item: CalendarItem, window: Window) -> list[tuple[datetime, datetime]]:
    found, problems = ical.expand_items([item], window)
    assert not problems
    return sorted((e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in found)  # type: ignore[union-attr]


YEAR_2025 = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


def test_a_series_in_a_zone_of_its_own_is_written_to_ews_with_its_definition(
        tmp_path: Path, rad: Peer, radicale: CalDAVServer, ews: tuple[Peer, EWSFake]) -> None:
    """No spelled-out series and no notice: the EWS copy's StartTimeZone carries the zone's
    Periods and Transitions, Exchange (the fake, reading the definition itself) puts every
    occurrence where the original has it across both changes of clocks, the override and the
    deleted occurrence included; a second run writes nothing."""
    peer, fake = ews
    put_raw(radicale, rad, "weekly.ics", WEEKLY_WITH_CHANGES)
    group = Group(tmp_path, rad, peer)
    report = group.run()
    assert report.counts["created"] == 1 and not report.errors, report.errors
    assert not report.adapted, [str(n) for n in report.adapted]
    [stored] = fake.items.values()
    assert isinstance(stored.zone, DefinitionZone) and stored.zone.key == ZONE
    assert occurrences(peer, YEAR_2025) == WEEKLY_EXPECTED
    assert group.writes(group.run()) == 0


def test_an_endless_series_in_a_zone_of_its_own_keeps_its_instants_on_ews_years_later(
        tmp_path: Path, rad: Peer, radicale: CalDAVServer, ews: tuple[Peer, EWSFake]) -> None:
    """Graph and Google cannot hold it at all (an endless series cannot be spelled out); EWS
    carries the definition, so the fake's expansion in 2031 still follows its yearly rules."""
    peer, fake = ews
    put_raw(radicale, rad, "monthly.ics", MONTHLY_ENDLESS)
    report = Group(tmp_path, rad, peer).run()
    assert report.counts["created"] == 1 and not report.adapted, (report.errors, report.adapted)
    [stored] = fake.items.values()
    for year in (2025, 2031):
        window = Window(datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC))
        walls = list(rrule(MONTHLY, dtstart=datetime(year, 1, 1, 9), byweekday=FR(1), count=12))
        assert occurrences(peer, window) == spans(walls, timedelta(minutes=30)), year
    # the zone kept: its offsets, by its own rules, on both sides of each change until 2040
    for year in range(2025, 2041):
        for month, day, hour in ((4, 1, 12), (7, 1, 12), (11, 1, 12)):
            wall = datetime(year, month, day, hour)
            assert wall.replace(tzinfo=stored.zone).utcoffset() == made_up(wall).utcoffset(), wall


def test_an_ews_copy_in_a_zone_of_its_own_comes_back_to_caldav_with_the_definition(
        tmp_path: Path, rad: Peer, radicale: CalDAVServer, ews: tuple[Peer, EWSFake]) -> None:
    """Edited in Outlook (through EWS), the copy is synced back over the original: the CalDAV
    object keeps the local zone (a VTIMEZONE built from the EWS definition, never UTC), and its
    occurrences, as Radicale's copy is expanded, are where they were."""
    peer, _fake = ews
    put_raw(radicale, rad, "weekly.ics", WEEKLY_WITH_CHANGES)
    group = Group(tmp_path, rad, peer)
    assert group.run().counts["created"] == 1
    peer.edit("own-zone@test", lambda e: e.with_changes(summary="renamed in Outlook"))
    report = group.run()
    assert report.counts["updated"] == 1 and not report.errors, report.errors
    [item] = rad.items()
    assert item.master is not None and item.master.summary == "renamed in Outlook"
    zone = item.master.start.tzinfo  # type: ignore[union-attr]
    assert isinstance(zone, DefinedZone) and zone.key == ZONE
    stored = httpx.get(rad.calendar + "weekly.ics", auth=(radicale.username, radicale.password), timeout=30).text
    assert "SUMMARY:renamed in Outlook" in stored and f"TZID:{ZONE}" in stored
    assert f"DTSTART;TZID={ZONE}:20250115T100000" in stored.replace('"', "")
    assert expanded(item, YEAR_2025) == WEEKLY_EXPECTED
    assert group.writes(group.run()) == 0


OUTLOOK_ZONE = """<t:StartTimeZone xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"
    Id="Customized Time Zone" Name="Customized Time Zone">
  <t:Periods>
    <t:Period Bias="-PT3H" Name="Standard" Id="trule:Microsoft/Custom/Customized Time Zone/1-Standard"/>
    <t:Period Bias="-PT4H" Name="Daylight" Id="trule:Microsoft/Custom/Customized Time Zone/1-Daylight"/>
  </t:Periods>
  <t:TransitionsGroups>
    <t:TransitionsGroup Id="0">
      <t:RecurringDayTransition>
        <t:To Kind="Period">trule:Microsoft/Custom/Customized Time Zone/1-Daylight</t:To>
        <t:TimeOffset>PT2H</t:TimeOffset><t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek>
        <t:Occurrence>-1</t:Occurrence>
      </t:RecurringDayTransition>
      <t:RecurringDayTransition>
        <t:To Kind="Period">trule:Microsoft/Custom/Customized Time Zone/1-Standard</t:To>
        <t:TimeOffset>PT3H</t:TimeOffset><t:Month>10</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek>
        <t:Occurrence>-1</t:Occurrence>
      </t:RecurringDayTransition>
    </t:TransitionsGroup>
  </t:TransitionsGroups>
  <t:Transitions><t:Transition><t:To Kind="Group">0</t:To></t:Transition></t:Transitions>
</t:StartTimeZone>"""
"""Outlook's "Customized Time Zone" as Exchange returns it: +03:00, summer time (+04:00) from the
last Sunday of March 02:00 to the last Sunday of October 03:00; no IANA zone has it now."""


def outlook_local(wall: datetime) -> datetime:
    """``wall`` under OUTLOOK_ZONE, by its rules."""
    def last_sunday(month: int) -> datetime:
        return rrule(MONTHLY, dtstart=datetime(wall.year, month, 1), byweekday=SU(-1), count=1)[0]

    summer = last_sunday(3) + timedelta(hours=2) <= wall < last_sunday(10) + timedelta(hours=3)
    return wall.replace(tzinfo=timezone(timedelta(hours=4 if summer else 3)))


def test_an_outlook_series_in_a_customized_zone_reads_and_syncs_to_caldav_in_that_zone(
        tmp_path: Path, rad: Peer, ews: tuple[Peer, EWSFake]) -> None:
    """An item whose StartTimeZone is Outlook's own definition reads with its times right and in
    a zone built from the definition, so free/busy and the CalDAV copy keep the local zone: the
    copy carries a VTIMEZONE with those rules, and Radicale's copy recurs at 08:00 local."""
    peer, fake = ews
    series = Event(uid="outlook-weekly@test", start=datetime(2025, 3, 3, 8), end=datetime(2025, 3, 3, 9),
                   summary="stand-up", rrule=["FREQ=WEEKLY;COUNT=40"])
    fake.add_item(ALICE, CalendarItem(series.uid, [series]), zone_definition=OUTLOOK_ZONE)
    expected = spans(list(rrule(WEEKLY, dtstart=datetime(2025, 3, 3, 8), count=40)), HOUR, outlook_local)
    [read] = peer.items()
    assert read.master is not None and isinstance(read.master.start.tzinfo, DefinedZone)  # type: ignore[union-attr]
    assert expanded(read, YEAR_2025) == expected
    assert occurrences(peer, YEAR_2025) == expected
    report = Group(tmp_path, rad, peer).run()
    assert report.counts["created"] == 1 and not report.errors, report.errors
    [copy] = rad.items()
    text = ical.item_to_ical(copy).decode()
    assert "TZID:Customized Time Zone" in text and "BYDAY=-1SU" in text and "BYMONTH=3" in text
    assert expanded(copy, YEAR_2025) == expected


def test_an_outlook_customized_zone_with_known_rules_reads_as_the_iana_zone(ews: tuple[Peer, EWSFake]) -> None:
    """The same definition with US Eastern rules is America/New_York (docs/timezones.md: a zone
    read from a definition becomes the IANA zone whose offsets it has)."""
    peer, fake = ews
    eastern = (OUTLOOK_ZONE.replace('Bias="-PT3H"', 'Bias="PT5H"').replace('Bias="-PT4H"', 'Bias="PT4H"')
               .replace("<t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek>\n        <t:Occurrence>-1",
                        "<t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek>\n        <t:Occurrence>2")
               .replace("<t:TimeOffset>PT3H</t:TimeOffset><t:Month>10</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek>\n"
                        "        <t:Occurrence>-1",
                        "<t:TimeOffset>PT2H</t:TimeOffset><t:Month>11</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek>\n"
                        "        <t:Occurrence>1"))
    assert eastern.count("<t:Occurrence>-1") == 0
    series = Event(uid="ny@test", start=datetime(2025, 3, 3, 8), end=datetime(2025, 3, 3, 9), rrule=["FREQ=WEEKLY;COUNT=5"])
    fake.add_item(ALICE, CalendarItem(series.uid, [series]), zone_definition=eastern)
    [read] = peer.items()
    assert read.master is not None and read.master.tzid == "America/New_York"
    assert read.master.start == datetime(2025, 3, 3, 8, tzinfo=read.master.start.tzinfo)  # type: ignore[union-attr]



def test_an_outlook_all_day_item_in_a_customized_zone_keeps_its_dates(ews: tuple[Peer, EWSFake]) -> None:
    """Exchange gives an all-day item's bounds as midnights of its zone in UTC (21:00Z the day
    before, at +03:00): read in a zone with the definition's offset, the dates are the item's."""
    peer, fake = ews
    day = Event(uid="outlook-day@test", start=date(2025, 3, 3), end=date(2025, 3, 4), summary="offsite")
    fake.add_item(ALICE, CalendarItem(day.uid, [day]), zone_definition=OUTLOOK_ZONE)
    [read] = peer.items()
    assert read.master is not None and (read.master.start, read.master.end) == (date(2025, 3, 3), date(2025, 3, 4))


def island(wall: datetime) -> datetime:
    summer = any(datetime(y, 3, 29 if y == 2026 else 30, 2) <= wall < datetime(y, 10, 25 if y == 2026 else 26, 3)
                 for y in (2025, 2026))
    return wall.replace(tzinfo=timezone(timedelta(hours=4 if summer else 3)))


def test_one_off_changes_of_a_zone_of_its_own_keep_every_instant_on_ews(
        tmp_path: Path, rad: Peer, radicale: CalDAVServer, ews: tuple[Peer, EWSFake]) -> None:
    """One-off observances travel as AbsoluteDateTransitions: Exchange places the summer
    occurrences of 2025 and 2026 an hour earlier in UTC, and none after."""
    peer, fake = ews
    put_raw(radicale, rad, "island.ics", ONE_SUMMER)
    report = Group(tmp_path, rad, peer).run()
    assert report.counts["created"] == 1 and not report.adapted, (report.errors, report.adapted)
    [stored] = fake.items.values()
    assert isinstance(stored.zone, DefinitionZone)
    window = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
    walls = list(rrule(MONTHLY, dtstart=datetime(2025, 1, 5, 9), count=36))
    assert occurrences(peer, window) == spans(walls, HOUR, island)


def test_a_series_in_an_iana_zone_with_an_occurrence_moved_into_its_definition_is_written_to_ews(
        tmp_path: Path, rad: Peer, radicale: CalDAVServer, ews: tuple[Peer, EWSFake]) -> None:
    """A zone that keeps summer time (+04:00) for good from 2027 reads as Asia/Dubai from then
    on, but as its own definition in 2026: the series (2027) went to EWS in a known zone and its
    occurrence moved to 31 December 2026 in the definition, which exchangelib's UpdateItem
    tried to convert times into (TypeError: not a tzinfo): the whole series was not written.
    That move also crosses the first occurrence, which Exchange refuses
    (``ErrorOccurrenceCrossingBoundary``): the copy is now the rewritten form of
    docs/timezones.md, "An occurrence moved past its neighbour", and keeps every instant."""
    peer, _fake = ews
    zone = ZONES["Summer time for good"]
    reading = Reading(zone)

    def event(*lines: str) -> str:
        return "\n".join(["BEGIN:VEVENT", "UID:moved-back@test", "DTSTAMP:20250101T000000Z", "SUMMARY:weekly",
                          *lines, "END:VEVENT"])

    put_raw(radicale, rad, "moved.ics", calendar(
        zone.vtimezone(),
        event(f"DTSTART;TZID={zone.tzid}:20270104T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=5"),
        event(f"RECURRENCE-ID;TZID={zone.tzid}:20270111T090000", f"DTSTART;TZID={zone.tzid}:20261231T100000",
              "DURATION:PT1H")))
    group = Group(tmp_path, rad, peer)
    report = group.run()
    assert report.counts["created"] == 1 and not report.errors, report.errors
    walls = [datetime(2027, 1, 4, 9), datetime(2026, 12, 31, 10), *(datetime(2027, 1, d, 9) for d in (18, 25)),
             datetime(2027, 2, 1, 9)]
    window = Window(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC))
    assert occurrences(peer, window) == sorted((reading.instant(w), reading.instant(w) + HOUR) for w in walls)
    assert group.writes(group.run()) == 0
