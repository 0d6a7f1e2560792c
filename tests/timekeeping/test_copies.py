"""A copy is the same event: the zones, lengths, overrides, alarms and extra dates of what is read
survive calmesh's write (issue 13, items 2 to 5). Each test reads the smallest calendar showing
one failure, writes the copy calmesh would PUT, and compares the occurrences of both in UTC with
ones computed here directly (zoneinfo and dateutil, never calmesh's own expansion alone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import icalendar
import pytest
from dateutil.rrule import MONTHLY, WEEKLY, rrule

from calmesh import ical
from calmesh.core.projection import busy_block, content_hash
from calmesh.model import CalendarItem, Window
from calmesh.timezones import DefinedZone, is_iana_name, to_iana

from .zone_calendars import (
    DURATION_ACROSS_DST,
    EU,
    INSTANCE_ACROSS_DST,
    JAPAN,
    OFFICE365_WARSAW,
    PERIOD_RDATES,
    SYDNEY_OLD_RULES,
    SYDNEY_SERIES_FROM_2001,
    THIS_AND_FUTURE,
    US_EASTERN,
    WINDOWS_ZONES,
    WITH_ALARM,
    Rules,
    calendar,
    customized,
    vevent,
)

PARIS = ZoneInfo("Europe/Paris")
ALWAYS = Window(datetime(2000, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))
Span = tuple[datetime, datetime]


def read_one(text: str | bytes) -> CalendarItem:
    items, problems = ical.parse_items(text)
    assert not problems, problems
    [item] = items
    return item


def copy_of(text: str | bytes) -> bytes:
    """What calmesh writes for the one item of ``text`` (a CalDAV PUT body)."""
    return ical.item_to_ical(read_one(text))


def occurrences(text: str | bytes, window: Window = ALWAYS) -> list[Span]:
    found, problems = ical.expand(text, window)
    assert not problems, problems
    return sorted((e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in found)  # type: ignore[union-attr]


def weekly(start: datetime, count: int, length: timedelta) -> list[Span]:
    """The oracle: ``count`` weekly instants at ``start``'s local time, in UTC, each ``length``."""
    naive = start.replace(tzinfo=None)
    zone = start.tzinfo
    return [(s.replace(tzinfo=zone).astimezone(UTC), s.replace(tzinfo=zone).astimezone(UTC) + length)
            for s in rrule(WEEKLY, dtstart=naive, count=count)]


# ------------------------------------------------------------------------------ item 2
@pytest.mark.parametrize("first", ["tokyo", "new-york"])
def test_same_named_custom_zones_of_two_calendars_never_mix(first: str) -> None:
    """Two calendars each define Outlook's ``Customized Time Zone`` (one +09:00, one US Eastern):
    each person's 10:00 is their own 10:00, whichever calendar is read first (RFC 5545 3.2.19)."""
    texts = {"tokyo": customized("tokyo@test", JAPAN), "new-york": customized("ny@test", US_EASTERN)}
    order = [first, *(k for k in texts if k != first)]
    read = {key: occurrences(texts[key]) for key in order}
    copies = {key: occurrences(copy_of(texts[key])) for key in order}
    tokyo = weekly(datetime(2025, 1, 15, 10, tzinfo=ZoneInfo("Asia/Tokyo")), 30, timedelta(hours=1))
    new_york = weekly(datetime(2025, 1, 15, 10, tzinfo=ZoneInfo("America/New_York")), 30, timedelta(hours=1))
    assert read == copies == {"tokyo": tokyo, "new-york": new_york}


def test_same_named_custom_zones_keep_apart_in_the_object_memo() -> None:
    """parse_object remembers objects by their bytes: equal definitions share, different ones
    under one name do not."""
    tokyo, new_york = customized("a@test", JAPAN), customized("b@test", US_EASTERN)
    for _ in range(2):
        [a], _ = ical.parse_object(tokyo)
        [b], _ = ical.parse_object(new_york)
        assert a.components[0].start.utcoffset() == timedelta(hours=9)
        assert b.components[0].start.utcoffset() == timedelta(hours=-5)


# ------------------------------------------------------------------------------ item 3
def test_office365_warsaw_series_keeps_its_zone_in_the_copy() -> None:
    """A Windows-named VTIMEZONE became UTC in the copy: 50 Tuesdays at 09:00 in Warsaw then
    recurred at 08:00 UTC, an hour off after the March change (and 52 occurrences by year end
    in the copy's calendar); the copy names Europe/Warsaw and keeps every instant."""
    copy = copy_of(OFFICE365_WARSAW)
    assert b"DTSTART;TZID=Europe/Warsaw:20250107T090000" in copy
    expected = weekly(datetime(2025, 1, 7, 9, tzinfo=ZoneInfo("Europe/Warsaw")), 50, timedelta(hours=1))
    assert occurrences(OFFICE365_WARSAW) == occurrences(copy) == expected


@pytest.mark.parametrize("name", sorted(WINDOWS_ZONES))
def test_windows_named_zones_map_to_their_cldr_zone(name: str) -> None:
    rules, iana = WINDOWS_ZONES[name]
    text = calendar(rules.vtimezone(name), vevent("w@test", "20250601T090000", "20250601T100000", tzid=name))
    assert read_one(text).components[0].start.tzinfo == ZoneInfo(iana)


def test_a_zone_name_is_checked_without_listing_the_database() -> None:
    """``is_iana_name`` (asked one name at a time, so a command start does not open every file of
    the zone database) says yes to exactly what ``available_timezones()`` lists: not to its
    folders, to files that are not zones, to what the listing leaves out, or to paths leaving it."""
    listed = available_timezones()
    assert all(is_iana_name(name) for name in listed)
    for name in ("Europe", "zone.tab", "tzdata.zi", "posixrules", "right/UTC", "posix/Europe/Paris",
                 "../etc/passwd", "/Europe/Paris", "Europe/./Paris", "europe/paris", "Europe/Paris ", "",
                 "Romance Standard Time", "Europe/Paris\x00"):
        assert not is_iana_name(name) and name not in listed, name
    assert to_iana("europe/paris") == to_iana("Europe/Paris") == "Europe/Paris"  # other spellings still listed
    assert to_iana("Etc/UTC") == "UTC"  # aliases first, as before


@pytest.mark.parametrize("tzid", ["/mozilla.org/20050126_1/Europe/Paris", "Europe/Paris (custom)",
                                  "Paris: office"])
def test_vendor_and_made_up_names_with_a_matching_definition_keep_the_local_zone(tzid: str) -> None:
    """A vendor-prefixed, made-up or quoted TZID whose definition is Paris's keeps Paris time."""
    text = calendar(EU.vtimezone(tzid), vevent("m@test", "20250301T090000", "20250301T100000", tzid=tzid,
                                               extra="RRULE:FREQ=WEEKLY;COUNT=12"))
    start = read_one(text).components[0].start
    assert start.utcoffset() == timedelta(hours=1) and start.tzinfo in (ZoneInfo("Europe/Paris"),
                                                                        ZoneInfo("Europe/Berlin"))
    expected = weekly(datetime(2025, 3, 1, 9, tzinfo=PARIS), 12, timedelta(hours=1))
    assert occurrences(text) == occurrences(copy_of(text)) == expected


def test_a_definition_no_iana_zone_matches_is_carried_into_the_copy() -> None:
    """Today's Sydney rules written for a series begun in 2001 (summer time then ended in late
    March, not April): no IANA zone agrees, so the copy carries the VTIMEZONE as read."""
    item = read_one(SYDNEY_OLD_RULES)
    assert isinstance(item.components[0].start.tzinfo, DefinedZone)
    copy = ical.item_to_ical(item)
    cal = icalendar.Calendar.from_ical(copy)
    [vtz] = cal.walk("VTIMEZONE")
    assert str(vtz["TZID"]) == "Customized Sydney"
    assert b"DTSTART;TZID=Customized Sydney:20010107T090000" in copy
    assert occurrences(SYDNEY_OLD_RULES) == occurrences(copy)
    # Sunday 25 March 2001, 09:00: Sydney (IANA) was back on +10:00, the definition says +11:00
    assert datetime(2001, 3, 24, 22, tzinfo=UTC) in [s for s, _ in occurrences(copy)]
    assert content_hash(read_one(copy)) == content_hash(item)


# ------------------------------------------------------------------------------ item 4
def test_this_and_future_override_moves_every_later_instance_in_the_copy() -> None:
    copy = copy_of(THIS_AND_FUTURE)
    assert b"RANGE=THISANDFUTURE" in copy
    before = weekly(datetime(2025, 3, 3, 10, tzinfo=PARIS), 2, timedelta(hours=1))
    after = weekly(datetime(2025, 3, 17, 15, tzinfo=PARIS), 6, timedelta(hours=1))
    assert occurrences(THIS_AND_FUTURE) == occurrences(copy) == before + after
    assert content_hash(read_one(copy)) == content_hash(read_one(THIS_AND_FUTURE))


def test_this_and_future_survives_a_busy_block() -> None:
    block = busy_block(read_one(THIS_AND_FUTURE))
    assert [c.this_and_future for c in block.components] == [False, True]


def test_duration_hours_are_exact_across_a_clock_change() -> None:
    """RFC 5545 3.3.6: PT3H from 01:00 on the night clocks go forward ends at 05:00 local."""
    [(start, end)] = occurrences(DURATION_ACROSS_DST)
    assert end - start == timedelta(hours=3)
    assert read_one(DURATION_ACROSS_DST).components[0].end == datetime(2025, 3, 30, 5, tzinfo=PARIS)
    assert occurrences(copy_of(DURATION_ACROSS_DST)) == [(start, end)]


def test_recurring_instances_spanning_a_clock_change_keep_their_exact_length() -> None:
    """RFC 5545 3.8.5.3: every instance of a DTSTART/DTEND series lasts the same exact time,
    also the one during which clocks go forward."""
    expected = weekly(datetime(2025, 3, 23, 0, 30, tzinfo=PARIS), 3, timedelta(hours=3))
    assert occurrences(INSTANCE_ACROSS_DST) == occurrences(copy_of(INSTANCE_ACROSS_DST)) == expected


def test_valarms_survive_a_copy() -> None:
    [alarm] = icalendar.Calendar.from_ical(copy_of(WITH_ALARM)).walk("VALARM")
    assert (str(alarm["ACTION"]), str(alarm["DESCRIPTION"]), alarm.decoded("TRIGGER")) == \
        ("DISPLAY", "Dentist", timedelta(minutes=-15))


def test_a_busy_block_carries_no_alarm() -> None:
    """An alarm's text often repeats the title: a busy placeholder never carries it."""
    assert busy_block(read_one(WITH_ALARM)).components[0].alarms == []


def test_period_rdates_survive_a_copy_as_rdates_with_overrides() -> None:
    """RDATE;VALUE=PERIOD values were dropped; Radicale refuses them: the copy says the same in
    the form every platform holds (RDATE date-times plus an override giving each its end)."""
    copy = copy_of(PERIOD_RDATES)
    assert b"VALUE=PERIOD" not in copy
    expected = [(datetime(2025, 3, d, h, m, tzinfo=PARIS).astimezone(UTC),
                 datetime(2025, 3, d, h, m, tzinfo=PARIS).astimezone(UTC) + length)
                for d, h, m, length in ((1, 10, 0, timedelta(hours=1)), (5, 14, 0, timedelta(hours=2)),
                                        (6, 9, 0, timedelta(minutes=30)))]
    assert occurrences(PERIOD_RDATES) == occurrences(copy) == expected
    assert content_hash(read_one(copy)) == content_hash(read_one(PERIOD_RDATES))


# ------------------------------------------------------------------------------ item 5
@pytest.mark.parametrize("zone, first_year", [("Australia/Sydney", 2001), ("America/New_York", 2000),
                                              ("Asia/Jerusalem", 2010), ("Africa/Casablanca", 2020)])
def test_own_vtimezones_have_one_observance_per_change_and_no_rdate_list(zone: str, first_year: int) -> None:
    """Radicale keeps only the first value of an RDATE list: calmesh writes each change of a zone
    whose rules changed as its own observance, and each gives zoneinfo's offset (read back by
    icalendar's own VTIMEZONE reader, not calmesh's)."""
    vtz = ical._vtimezone(ZoneInfo(zone), first_year)
    assert "RDATE" not in vtz.to_ical().decode()
    built = vtz.to_tz(lookup_tzid=False)
    real = ZoneInfo(zone)
    instant = datetime(first_year, 1, 1, 12, tzinfo=UTC)
    while instant.year < 2040:
        assert instant.astimezone(built).utcoffset() == instant.astimezone(real).utcoffset(), instant
        instant += timedelta(days=7)


def test_a_sydney_series_from_2001_keeps_every_instant_in_the_copy() -> None:
    expected = [(s.replace(tzinfo=ZoneInfo("Australia/Sydney")).astimezone(UTC),
                 s.replace(tzinfo=ZoneInfo("Australia/Sydney")).astimezone(UTC) + timedelta(hours=1))
                for s in rrule(MONTHLY, dtstart=datetime(2001, 1, 5, 9), count=120)]
    assert occurrences(SYDNEY_SERIES_FROM_2001) == occurrences(copy_of(SYDNEY_SERIES_FROM_2001)) == expected


# ------------------------------------------------------------------- the two conventions
def test_iana_rules_win_over_a_stale_vtimezone_under_an_iana_name() -> None:
    """docs/timezones.md: a VTIMEZONE named ``America/New_York`` with the rules before 2007
    (summer time from April) is ignored for the IANA rules (from the second Sunday of March)."""
    stale = Rules("-0500", "-0400", (4, "1SU", 2), (10, "-1SU", 2))
    text = calendar(stale.vtimezone("America/New_York"),
                    vevent("ny@test", "20250310T090000", "20250310T100000", tzid="America/New_York"))
    [(start, _end)] = occurrences(text)
    assert start == datetime(2025, 3, 10, 13, tzinfo=UTC)  # 09:00 EDT, not 09:00 EST
    assert occurrences(copy_of(text)) == occurrences(text)


def test_x_wr_timezone_series_in_utc_recur_in_local_time_in_the_copy() -> None:
    """docs/timezones.md: Google's UTC series under X-WR-TIMEZONE stays at 09:00 Berlin time
    after the change of clocks, in calmesh's reading and in the copy it writes."""
    text = calendar(vevent("g@test", "20250107T080000Z", "20250107T090000Z",
                           extra="RRULE:FREQ=WEEKLY;COUNT=30")).replace(
        "PRODID:-//test//EN", "PRODID:-//test//EN\r\nX-WR-TIMEZONE:Europe/Berlin")
    expected = weekly(datetime(2025, 1, 7, 9, tzinfo=ZoneInfo("Europe/Berlin")), 30, timedelta(hours=1))
    assert occurrences(text) == occurrences(copy_of(text)) == expected


def test_a_carried_definition_never_stands_for_its_name_in_other_objects() -> None:
    """Writing a copy that carries ``Customized Sydney`` must not teach the process that name:
    an object naming it without defining it reads as floating time, with a warning."""
    ical.item_to_ical(read_one(SYDNEY_OLD_RULES))
    text = calendar(vevent("x@test", "20250107T090000", "20250107T100000", tzid="Customized Sydney"))
    [item], problems = ical.parse_items(text)
    assert item.components[0].start == datetime(2025, 1, 7, 9)
    assert any("unknown TZID 'Customized Sydney'" in p.message for p in problems)


@pytest.mark.parametrize("tzid", ["Zone, custom", "HQ; local"])
def test_a_carried_zone_named_with_a_comma_or_semicolon_survives_copies_of_copies(tzid: str) -> None:
    """Found by the property test: the copy writes such a TZID escaped (``TZID:Zone\\, custom``)
    and its parameters quoted; the next read must still find the definition."""
    text = calendar(Rules("+0300", "+0400").vtimezone(tzid),
                    vevent("c@test", "20250107T090000", "20250107T100000", tzid=tzid,
                           extra="RRULE:FREQ=WEEKLY;COUNT=20"))
    copy = copy_of(text)
    again = copy_of(copy)
    assert isinstance(read_one(again).components[0].start.tzinfo, DefinedZone)
    assert occurrences(text) == occurrences(copy) == occurrences(again)
