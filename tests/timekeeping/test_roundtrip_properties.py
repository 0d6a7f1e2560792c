"""Property: any recurring event with exceptions and moved instances, in any zone (IANA, Windows
names with Outlook's definitions, made-up names with a definition, some matching no IANA zone),
reads, writes and reads again with the same occurrences in UTC, the same local times and the
same content hash. The expected occurrences are computed from the generated parameters alone,
with dateutil's rrule and zoneinfo or the definition's own rules (:class:`RulesZone` below),
never with icalendar or recurring-ical-events."""

from __future__ import annotations

import calendar as cal
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, WEEKLY, rrule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calmesh import ical
from calmesh.core.projection import content_hash
from calmesh.model import Window
from calmesh.timezones import DefinedZone

from .zone_calendars import EU, JAPAN, SYDNEY_SINCE_2008, US_EASTERN, WINDOWS_ZONES, Rules, calendar

ALWAYS = Window(datetime(2024, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))
NO_IANA_ZONE = Rules("+0300", "+0400")  # European summer time on a +03:00 zone: nobody's rules
HALF_HOUR = Rules("+0530")
IANA = ["Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Tokyo", "Asia/Kolkata",
        "America/Santiago", "Pacific/Auckland", "Europe/London", "America/Sao_Paulo", "Asia/Tehran"]


def _offset(text: str) -> timedelta:
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))


def _nth_sunday(year: int, month: int, byday: str) -> date:
    nth = int(byday[:-2])
    sundays = [d for d in range(1, cal.monthrange(year, month)[1] + 1) if date(year, month, d).weekday() == 6]
    return date(year, month, sundays[nth - 1 if nth > 0 else nth])


class RulesZone(tzinfo):
    """The oracle for a defined zone: its yearly rules applied to a wall time, directly."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules

    def utcoffset(self, dt: datetime | None) -> timedelta:
        rules = self.rules
        if rules.daylight is None or dt is None:
            return _offset(rules.standard)
        (dm, dday, dhour), (sm, sday, shour) = rules.to_daylight, rules.to_standard
        wall = dt.replace(tzinfo=None)
        to_daylight = datetime.combine(_nth_sunday(wall.year, dm, dday), datetime.min.time()) + timedelta(hours=dhour)
        to_standard = datetime.combine(_nth_sunday(wall.year, sm, sday), datetime.min.time()) + timedelta(hours=shour)
        if to_daylight < to_standard:
            summer = to_daylight <= wall < to_standard
        else:
            summer = not to_standard <= wall < to_daylight
        return _offset(rules.daylight if summer else rules.standard)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


@dataclass(frozen=True)
class Zone:
    tzid: str
    vtimezone: str
    oracle: tzinfo
    iana: bool
    """Must the copy name an IANA zone (else it carries the definition)?"""


zones = st.one_of(
    st.sampled_from(IANA).map(lambda name: Zone(name, "", ZoneInfo(name), True)),
    st.sampled_from(sorted(WINDOWS_ZONES)).map(
        lambda name: Zone(name, WINDOWS_ZONES[name][0].vtimezone(name), RulesZone(WINDOWS_ZONES[name][0]), True)),
    st.tuples(st.sampled_from(["Customized Time Zone", "HQ: local", "/example.com/zones/Head Office",
                               "Zone, custom"]),
              st.sampled_from([EU, US_EASTERN, SYDNEY_SINCE_2008, JAPAN, HALF_HOUR, NO_IANA_ZONE])).map(
        lambda pair: Zone(pair[0], pair[1].vtimezone(pair[0]), RulesZone(pair[1]), pair[1] is not NO_IANA_ZONE)),
)


@dataclass(frozen=True)
class Series:
    zone: Zone
    start: datetime  # naive wall time
    length: timedelta
    freq: int
    interval: int
    count: int
    exdates: frozenset[int]
    moved: dict[int, tuple[int, int, int]]
    """Instance index -> (hour, minute, length in minutes) of the moved instance, same day."""

    def starts(self) -> list[datetime]:
        return list(rrule(self.freq, dtstart=self.start, interval=self.interval, count=self.count))

    def expected(self) -> list[tuple[datetime, datetime]]:
        out = []
        for i, wall in enumerate(self.starts()):
            if i in self.exdates:
                continue
            length = self.length
            if i in self.moved:
                hour, minute, minutes = self.moved[i]
                wall, length = wall.replace(hour=hour, minute=minute), timedelta(minutes=minutes)
            start = wall.replace(tzinfo=self.zone.oracle).astimezone(UTC)
            out.append((start, start + length))  # lengths are exact (RFC 5545 3.8.5.3)
        return sorted(out)

    def text(self) -> str:
        tzid = self.zone.tzid
        param = f';TZID="{tzid}"' if any(c in tzid for c in ":;,") else f";TZID={tzid}"
        fmt = "%Y%m%dT%H%M%S"
        starts = self.starts()
        freq = {DAILY: "DAILY", WEEKLY: "WEEKLY"}[self.freq]
        master = ["BEGIN:VEVENT\nUID:prop@test\nDTSTAMP:20250101T000000Z\nSUMMARY:series",
                  f"DTSTART{param}:{self.start.strftime(fmt)}",
                  f"DTEND{param}:{(self.start + self.length).strftime(fmt)}"
                  if self.length < timedelta(hours=2) else f"DURATION:PT{int(self.length.total_seconds()) // 60}M",
                  f"RRULE:FREQ={freq};INTERVAL={self.interval};COUNT={self.count}"]
        if self.exdates:
            master.append(f"EXDATE{param}:" + ",".join(starts[i].strftime(fmt) for i in sorted(self.exdates)))
        blocks = [self.zone.vtimezone] if self.zone.vtimezone else []
        blocks.append("\n".join([*master, "END:VEVENT"]))
        for i, (hour, minute, minutes) in sorted(self.moved.items()):
            moved = starts[i].replace(hour=hour, minute=minute)
            blocks.append("\n".join([
                "BEGIN:VEVENT\nUID:prop@test\nDTSTAMP:20250101T000000Z\nSUMMARY:moved",
                f"RECURRENCE-ID{param}:{starts[i].strftime(fmt)}", f"DTSTART{param}:{moved.strftime(fmt)}",
                f"DTEND{param}:{(moved + timedelta(minutes=minutes)).strftime(fmt)}", "END:VEVENT"]))
        return calendar(*blocks)


@st.composite
def series(draw: st.DrawFn) -> Series:
    count = draw(st.integers(1, 30))
    indices = st.integers(0, count - 1)
    exdates = draw(st.frozensets(indices, max_size=3))
    moved = draw(st.dictionaries(indices.filter(lambda i: i not in exdates),
                                 st.tuples(st.integers(8, 20), st.sampled_from([0, 15, 30, 45]),
                                           st.integers(15, 240)), max_size=3))
    day = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 4 * 365)))
    return Series(
        zone=draw(zones),
        start=datetime.combine(day, datetime.min.time()).replace(hour=draw(st.integers(8, 20)),
                                                                minute=draw(st.sampled_from([0, 30]))),
        length=timedelta(minutes=draw(st.integers(15, 600))),
        freq=draw(st.sampled_from([DAILY, WEEKLY])),
        interval=draw(st.integers(1, 4)),
        count=count,
        exdates=exdates,
        moved=moved,
    )


def occurrences(text: str | bytes) -> list[tuple[datetime, datetime]]:
    found, problems = ical.expand(text, ALWAYS)
    assert not problems, problems
    return sorted((e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in found)  # type: ignore[union-attr]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series())
def test_parse_write_parse_keeps_every_occurrence_and_the_local_zone(s: Series) -> None:
    text = s.text()
    [item], problems = ical.parse_items(text)
    assert not problems, problems
    copy = ical.item_to_ical(item)
    [again], problems = ical.parse_items(copy)
    assert not problems, problems
    expected = s.expected()
    assert occurrences(text) == expected
    assert occurrences(copy) == expected
    assert content_hash(again) == content_hash(item)
    master = next(c for c in again.components if c.recurrence_id is None)
    assert master.start.replace(tzinfo=None) == s.start  # type: ignore[union-attr]
    zone = master.start.tzinfo  # type: ignore[union-attr]
    assert isinstance(zone, ZoneInfo) if s.zone.iana else isinstance(zone, DefinedZone)
