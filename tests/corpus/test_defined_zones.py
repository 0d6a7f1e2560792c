"""Zones a calendar defines itself, as Outlook exports them (``Customized Time Zone``, Windows
names; observances from 1601 on yearly rules): calmesh's reading and expansion against the
independent reference, which reads the definition on its own, and against the same calendar
written with the IANA zone the definition matches, across changes of clocks and over the years.

Why here: calmesh answers such zones by bisection over their onsets (calmesh.vtimezone_rules)
and matches them to IANA zones year by year (calmesh.timezones.matching_iana); both were made
faster for issue 16, and neither may move an occurrence (issue 13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calmesh.model import Window

from .expansion import calmesh_side, reference_calendars, reference_side

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
