"""calmesh.vtimezone_rules: the zones icalendar builds from VTIMEZONEs answer exactly as
dateutil's ``tzical`` does (only faster), whatever the definition and whatever is asked."""

from __future__ import annotations

import io
import pickle
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo

import icalendar
import pytest
from dateutil.tz import tzical

from calmesh import ical  # noqa: F401 - installs the provider, as every reader of calendars does
from calmesh.vtimezone_rules import IndexedDefinition


def _observance(kind: str, start: str, before: str, after: str, rule: str = "", name: str = "") -> str:
    return (f"BEGIN:{kind}\nDTSTART:{start}\nTZOFFSETFROM:{before}\nTZOFFSETTO:{after}\n"
            + (f"{rule}\n" if rule else "") + (f"TZNAME:{name}\n" if name else "") + f"END:{kind}\n")


def _vtimezone(tzid: str, *observances: str) -> str:
    return (f"BEGIN:VTIMEZONE\nTZID:{tzid}\n" + "".join(observances) + "END:VTIMEZONE\n").replace("\n", "\r\n")


DEFINITIONS = {
    # Outlook's export of Paris: observances from 1601 on yearly rules
    "outlook-paris": _vtimezone(
        "Customized Time Zone",
        _observance("STANDARD", "16010101T030000", "+0200", "+0100", "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10"),
        _observance("DAYLIGHT", "16010101T020000", "+0100", "+0200", "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3")),
    # summer time across New Year, the standard observance listed second
    "outlook-sydney": _vtimezone(
        "AUS Eastern Standard Time",
        _observance("DAYLIGHT", "16010101T020000", "+1000", "+1100", "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=10"),
        _observance("STANDARD", "16010101T030000", "+1100", "+1000", "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=4")),
    # rules that end (UNTIL) and rules that begin: US Eastern before and since 2007, from 1967
    "us-eastern-two-rule-sets": _vtimezone(
        "US/Eastern-ish",
        _observance("DAYLIGHT", "19670430T020000", "-0500", "-0400",
                    "RRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=-1SU;UNTIL=19730429T070000Z", "EDT"),
        _observance("STANDARD", "19671029T020000", "-0400", "-0500",
                    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20061029T060000Z", "EST"),
        _observance("DAYLIGHT", "19870405T020000", "-0500", "-0400",
                    "RRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU;UNTIL=20060402T070000Z", "EDT"),
        _observance("DAYLIGHT", "20070311T020000", "-0500", "-0400", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU", "EDT"),
        _observance("STANDARD", "20071104T020000", "-0400", "-0500", "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU", "EST")),
    # one-off changes only (RDATE lists), the way some exporters spell every year out, and a
    # first onset in 2010: times before it are before every observance
    "one-off-rdates": _vtimezone(
        "Office/Spelled out",
        _observance("STANDARD", "20101031T030000", "+0200", "+0100",
                    "RDATE:20111030T030000,20121028T030000,20131027T030000", "CET"),
        _observance("DAYLIGHT", "20110327T020000", "+0100", "+0200",
                    "RDATE:20120325T020000,20130331T020000", "CEST")),
    # summer time until 2026, then a new standard offset from New Year 2027: rules that end with
    # an UNTIL east of Greenwich, and a change dateutil's fromutc cannot follow
    "new-standard-offset": _vtimezone(
        "Summer time for good",
        _observance("DAYLIGHT", "19900325T020000", "+0300", "+0400",
                    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;UNTIL=20260328T230000Z"),
        _observance("STANDARD", "19901028T030000", "+0400", "+0300",
                    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20261024T230000Z"),
        _observance("STANDARD", "20270101T000000", "+0300", "+0400")),
    # two observances with the same onset (the first listed wins), one of three onsets only
    "same-onset": _vtimezone(
        "Office/Tie",
        _observance("DAYLIGHT", "20100101T000000", "+0000", "+0100", "RRULE:FREQ=YEARLY;BYMONTH=1", "A"),
        _observance("DAYLIGHT", "20100101T000000", "+0000", "+0200", "", "B"),
        _observance("STANDARD", "20100601T000000", "+0100", "+0000", "RRULE:FREQ=YEARLY;COUNT=3", "C")),
}


def _zones(text: str) -> tuple[tzinfo, IndexedDefinition]:
    """dateutil's zone and the indexed one, each read from the text on its own."""
    plain = tzical(io.StringIO(text)).get()
    again = tzical(io.StringIO(text)).get()
    return plain, IndexedDefinition(again._tzid, again._comps)


YEARS = (1600, 1601, 1967, 1973, 1987, 2006, 2007, 2010, 2012, 2013, 2026, 2027, 2099)
"""Before the first onsets of 1601, the first of them, years where rules end and begin."""


def _times(zone: tzinfo) -> Iterator[datetime]:
    """Hourly through the day before, of and after each change of ``zone``'s offset in YEARS
    (found by asking it at noon each day), noon on the 1st of each of their months, scattered
    times from 1590 to 2120 in random order, and the same times again."""
    for year in YEARS:
        day = datetime(year - 1, 12, 31, 12)
        before = day.replace(tzinfo=zone).utcoffset()
        while day.year <= year:
            following = day + timedelta(days=1)
            offset = following.replace(tzinfo=zone).utcoffset()
            if offset != before:
                midnight = day.replace(hour=0) - timedelta(days=1)
                yield from (midnight + timedelta(hours=h) for h in range(3 * 24))
            before, day = offset, following
        yield from (datetime(year, month, 1, 12) for month in range(1, 13))
    rng = random.Random(13)
    scattered = [datetime(1590, 1, 1) + timedelta(minutes=rng.randrange(530 * 365 * 24 * 60)) for _ in range(300)]
    yield from scattered
    yield from reversed(scattered)


def _skipped(zone: tzinfo, wall: datetime) -> bool:
    """Whether the clocks of ``zone`` never show ``wall`` (it does not come back from UTC)."""
    return all(wall.replace(tzinfo=zone, fold=f).astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall
               for f in (0, 1))


def _before_the_gap(zone: tzinfo, wall: datetime) -> datetime:
    """The last wall time before the gap that holds ``wall``, a minute at a time."""
    while _skipped(zone, wall):
        wall -= timedelta(minutes=1)
    return wall


@pytest.mark.parametrize("name", DEFINITIONS)
def test_offsets_names_and_daylight_time_are_dateutils(name: str) -> None:
    """Both folds of every wall time, asked through the zone's own times (the shortcut for a time
    of the zone itself) and through naive ones: the same offset, daylight time and name; but a
    time the clocks skip, with fold 0, is read with the offset before the gap (RFC 5545 3.3.5;
    dateutil takes the one after), which is what the zone says just before it."""
    plain, indexed = _zones(DEFINITIONS[name])
    for wall in _times(indexed):
        for fold in (0, 1):
            mine, theirs = wall.replace(tzinfo=indexed, fold=fold), wall.replace(tzinfo=plain, fold=fold)
            # which times are skipped: told by the indexed zone's fromutc, which (unlike
            # dateutil's) follows a change of standard offset; the test below checks it
            if fold == 0 and _skipped(indexed, wall):
                theirs = _before_the_gap(indexed, wall).replace(tzinfo=plain)
            expected = (theirs.utcoffset(), theirs.dst(), theirs.tzname())
            assert (mine.utcoffset(), mine.dst(), mine.tzname()) == expected, (wall, fold)
            naive = wall.replace(fold=fold)
            assert (indexed.utcoffset(naive), indexed.dst(naive), indexed.tzname(naive)) == expected, (wall, fold)


@pytest.mark.parametrize("name", DEFINITIONS)
def test_instants_read_in_the_zone_come_back_and_are_dateutils_where_those_do(name: str) -> None:
    """``astimezone`` (fromutc) gives a wall time (and fold) that is the same instant again,
    and dateutil's wall time wherever dateutil's is: its fromutc adds the standard offset and
    then daylight time, which misreads an instant after a change of standard offset (an event
    ending after New Year 2027 in "new-standard-offset" ended an hour early)."""
    plain, indexed = _zones(DEFINITIONS[name])
    for wall in _times(indexed):
        instant = wall.replace(tzinfo=UTC)
        mine, theirs = instant.astimezone(indexed), instant.astimezone(plain)
        assert mine.astimezone(UTC) == instant, instant
        if theirs.astimezone(UTC) == instant:
            assert (mine.replace(tzinfo=None), mine.fold) == (theirs.replace(tzinfo=None), theirs.fold), instant


def test_an_observance_until_is_read_on_the_clock_of_its_onsets() -> None:
    """UNTIL is UTC (RFC 5545 3.3.10), the onsets local: dateutil compared the two as if both
    were local, so the last change before 23:00 UTC on 28 March 2026 (02:00 local on the 29th)
    was lost and the zone stayed at +03:00 until 2027. icalendar's zones (through calmesh's
    provider) keep it."""
    text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + DEFINITIONS["new-standard-offset"]
            + "BEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20260101T000000Z\r\n"
            "DTSTART;TZID=Summer time for good:20260601T090000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    start = icalendar.Calendar.from_ical(text).walk("VEVENT")[0].decoded("DTSTART")
    assert start.utcoffset() == timedelta(hours=4)


def test_icalendar_builds_indexed_zones_that_copy_and_pickle() -> None:
    """Once calmesh.ical is imported, the zone icalendar builds for a VTIMEZONE without an IANA
    name is an indexed one; copies (deepcopy, pickle) are indexed zones with the same offsets."""
    text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + DEFINITIONS["outlook-sydney"]
            + "BEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20260101T000000Z\r\n"
            "DTSTART;TZID=AUS Eastern Standard Time:20261231T090000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    start = icalendar.Calendar.from_ical(text).walk("VEVENT")[0].decoded("DTSTART")
    assert isinstance(start.tzinfo, IndexedDefinition)
    copy = pickle.loads(pickle.dumps(start))
    assert isinstance(copy.tzinfo, IndexedDefinition) and copy.utcoffset() == timedelta(hours=11)
    assert copy.replace(month=6, day=30).utcoffset() == timedelta(hours=10)
