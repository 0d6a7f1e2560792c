"""A zone a calendar defines is copied as an IANA zone only when the two agree for every instant
from the event's year on, for ever (calmesh.timezones.matching_iana): ten years of agreement
mapped a definition whose summer time ends later, or one that leaves an IANA zone's planned
changes, to that zone, and the copy's instances from then on moved by an hour. The expected
offsets are the definitions' own (written here) and zoneinfo's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from calmesh import ical
from calmesh.model import Window
from calmesh.timezones import DefinedZone

from .test_copies import copy_of, occurrences
from .zone_calendars import calendar, vevent

PARIS_RULES = ("BEGIN:STANDARD\nDTSTART:16010101T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\n"
               "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10{until}\nEND:STANDARD\n"
               "BEGIN:DAYLIGHT\nDTSTART:16010101T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\n"
               "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3{until}\nEND:DAYLIGHT\n")


def vtimezone(tzid: str, body: str) -> str:
    return f"BEGIN:VTIMEZONE\nTZID:{tzid}\n{body}END:VTIMEZONE\n"


def test_outlooks_definition_of_paris_rules_still_names_an_iana_zone() -> None:
    zone = ical.zone_of_vtimezone(vtimezone("Customized Time Zone", PARIS_RULES.format(until="")).encode(), 2026)
    assert not isinstance(zone, DefinedZone)
    assert zone.utcoffset(datetime(2090, 7, 1)) == timedelta(hours=2)


def test_a_definition_whose_summer_time_ends_after_ten_years_keeps_its_own_offsets() -> None:
    """Summer time until 2040, then +01:00 all year: no IANA zone has that, and a weekly series
    from 2026 copied keeps 10:00 +01:00 in the summers after 2040 (it read 10:00 +02:00)."""
    body = PARIS_RULES.format(until=";UNTIL=20401028T010000Z")
    zone = ical.zone_of_vtimezone(vtimezone("Customized Time Zone", body).encode(), 2026)
    assert isinstance(zone, DefinedZone)
    text = calendar(vtimezone("Customized Time Zone", body),
                    vevent("until-2040@test", "20260105T100000", "20260105T110000", tzid="Customized Time Zone",
                           extra="RRULE:FREQ=YEARLY;BYMONTH=1,7;COUNT=40"))
    expected = []
    for year in range(2026, 2046):
        for month in (1, 7):
            summer = month == 7 and year <= 2040
            start = datetime(year, month, 5, 10) - timedelta(hours=2 if summer else 1)
            expected.append((start.replace(tzinfo=UTC), start.replace(tzinfo=UTC) + timedelta(hours=1)))
    # the series' dates: 5 January and 5 July of each year (a yearly rule keeps the day of month)
    years = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2050, 1, 1, tzinfo=UTC))
    assert occurrences(text, years) == occurrences(copy_of(text), years) == expected


def test_a_definition_leaving_an_iana_zones_planned_changes_is_not_that_zone() -> None:
    """Casablanca's table plans its Ramadan changes to 2087. A definition under its Windows name with
    them up to 2036 (each an RDATE observance, as a client lists one-off changes) and +01:00 from
    then on agrees with the IANA zone for ten years from 2026, not after: it keeps its own."""
    casablanca = ZoneInfo("Africa/Casablanca")
    observances = []
    hour = datetime(2026, 1, 1, tzinfo=UTC)
    before = hour.astimezone(casablanca).utcoffset()
    while hour.year < 2037:
        after = hour.astimezone(casablanca).utcoffset()
        if after != before:
            assert before is not None and after is not None
            wall = (hour + before).replace(tzinfo=None).strftime("%Y%m%dT%H%M%S")
            observances.append(f"BEGIN:STANDARD\nDTSTART:{wall}\nRDATE:{wall}\nTZOFFSETFROM:{_spelled(before)}\n"
                               f"TZOFFSETTO:{_spelled(after)}\nEND:STANDARD\n")
            before = after
        hour += timedelta(hours=1)
    assert before == timedelta(hours=1) and len(observances) > 10
    first = ("BEGIN:STANDARD\nDTSTART:20000101T000000\nRDATE:20000101T000000\nTZOFFSETFROM:+0100\n"
             "TZOFFSETTO:+0100\nEND:STANDARD\n")
    body = first + "".join(observances)
    zone = ical.zone_of_vtimezone(vtimezone("Morocco Standard Time", body).encode(), 2026)
    assert isinstance(zone, DefinedZone)
    ramadan_2040 = datetime(2040, 9, 15, 12, tzinfo=UTC)
    assert ramadan_2040.astimezone(casablanca).utcoffset() == timedelta(0)
    assert ramadan_2040.astimezone(zone).utcoffset() == timedelta(hours=1)


def _spelled(value: timedelta) -> str:
    minutes = int(value.total_seconds()) // 60
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
