"""Copies on Exchange (EWS, Graph) and Google keep what CalDAV copies keep, or say what they
could not: RANGE=THISANDFUTURE and rules a vendor's patterns lack are spelled out occurrence by
occurrence, VALARMs become reminders and come back as alarms, and every such change is a notice
of the sync report (and of its audit entry). The vendors are calmesh.fakes' protocol-faithful
fakes, reached through the real connectors; expected occurrences are written out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree.ElementTree import fromstring
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import WEEKLY

from calmesh import ical
from calmesh.fakes.ews import _pattern_from_xml
from calmesh.fakes.graph import _check_recurrence, _Fault
from calmesh.model import Window
from sync.peers import Group, Peer, vendor_peer

from .self_defined import ZONES, Reading
from .test_exchange_copies import exchange_occurrences
from .test_sync_copies import HOUR, put_raw, series
from .zone_calendars import THIS_AND_FUTURE, WITH_ALARM, Rules, calendar, customized, vevent

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

PARIS = ZoneInfo("Europe/Paris")
THIRD_TUE_WED_THU = calendar(vevent("setpos@test", "20250107T090000", "20250107T100000", tzid="Europe/Paris",
                                    extra="RRULE:FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3"))
"""The third Tuesday, Wednesday or Thursday of the month (ical.net's MonthlyBySetPos1 in Paris):
7 January (We 1, Th 2, Tu 7), 6 February (Tu 4, We 5, Th 6), 6 March (Tu 4, We 5, Th 6)."""
THIRD_EXPECTED = [(datetime(2025, m, d, 9, tzinfo=PARIS).astimezone(UTC),
                   datetime(2025, m, d, 10, tzinfo=PARIS).astimezone(UTC)) for m, d in ((1, 7), (2, 6), (3, 6))]


@pytest.fixture(params=["ews", "graph", "google"])
def vendor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    with vendor_peer(request.param, monkeypatch) as peer:
        yield peer


def test_bysetpos_over_several_weekdays_is_spelled_out_where_the_vendor_lacks_it(
        tmp_path: Path, xan: Peer, vendor: Peer, xandikos: CalDAVServer) -> None:
    """EWS's relative patterns name one weekday (DayOfWeekType): the copy is a weekly series on
    Tu/We/Th with the other occurrences deleted, and the report says so; Graph's
    patternedRecurrence and Google's RRULE hold the rule as it is, without a notice."""
    put_raw(xandikos, xan, "setpos.ics", THIRD_TUE_WED_THU)
    group = Group(tmp_path, xan, vendor)
    report = group.run()
    assert report.counts["created"] == 1, report.errors
    assert exchange_occurrences(vendor) == THIRD_EXPECTED
    notes = [n for n in report.adapted if n.feature == "RRULE"]
    if vendor.conn.kind == "ews":
        [note] = notes
        assert note.written and note.uid == "setpos@test" and "BYDAY=TU,WE,TH" in note.detail
        assert str(note) in report.notices
        assert report.counts["adapted"] == 1
    else:
        assert notes == []
    assert group.writes(group.run()) == 0


def test_an_endless_rule_the_vendor_lacks_is_not_written_and_said(
        tmp_path: Path, xan: Peer, xandikos: CalDAVServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with vendor_peer("ews", monkeypatch) as ews:
        put_raw(xandikos, xan, "setpos.ics", THIRD_TUE_WED_THU.replace("COUNT=3;", ""))
        report = Group(tmp_path, xan, ews).run()
        assert report.counts["created"] == 0
        [note] = report.adapted
        assert not note.written and note.feature == "RRULE" and "endless" in note.detail
        assert report.counts["not_held"] == 1
        assert any("endless" in e for e in report.errors)
        assert ews.items() == []


def test_this_and_future_is_spelled_out_on_every_vendor_with_a_notice(
        tmp_path: Path, xan: Peer, vendor: Peer, xandikos: CalDAVServer) -> None:
    put_raw(xandikos, xan, "taf.ics", THIS_AND_FUTURE)
    group = Group(tmp_path, xan, vendor)
    report = group.run()
    assert report.counts["created"] == 1, report.errors
    expected = (series(WEEKLY, datetime(2025, 3, 3, 10, tzinfo=PARIS), 2, HOUR)
                + series(WEEKLY, datetime(2025, 3, 17, 15, tzinfo=PARIS), 6, HOUR))
    assert exchange_occurrences(vendor) == expected
    [note] = [n for n in report.adapted if n.feature == "RANGE=THISANDFUTURE"]
    assert "1 change(s)" in note.detail and "6 change(s)" in note.detail
    [entry] = [e for e in group.repo.audit_log() if e.action == "create"]
    assert "RANGE=THISANDFUTURE" in (entry.reason or "")
    assert group.writes(group.run()) == 0


def test_an_alarm_becomes_a_reminder_and_comes_back(tmp_path: Path, xan: Peer, vendor: Peer,
                                                    xandikos: CalDAVServer) -> None:
    put_raw(xandikos, xan, "alarm.ics", WITH_ALARM)
    group = Group(tmp_path, xan, vendor)
    report = group.run()
    assert report.counts["created"] == 1, report.errors
    assert report.adapted == []
    [item] = vendor.items()
    [alarm] = item.components[0].alarms
    assert "TRIGGER:-PT15M" in alarm and "ACTION:DISPLAY" in alarm
    assert group.writes(group.run()) == 0


def test_a_copy_without_alarms_gets_no_default_reminder(tmp_path: Path, xan: Peer, vendor: Peer,
                                                        xandikos: CalDAVServer) -> None:
    """Exchange and Google put their default reminder on an event that names none: the copy
    of an event without alarms says it has none."""
    put_raw(xandikos, xan, "plain.ics", calendar(vevent("plain@test", "20250310T100000", "20250310T110000",
                                                        tzid="Europe/Paris")))
    Group(tmp_path, xan, vendor).run()
    [item] = vendor.items()
    assert item.components[0].alarms == []


def test_alarms_a_vendor_cannot_hold_are_named(tmp_path: Path, xan: Peer, vendor: Peer,
                                               xandikos: CalDAVServer) -> None:
    two = WITH_ALARM.replace("END:VALARM", "END:VALARM\nBEGIN:VALARM\nACTION:DISPLAY\nDESCRIPTION:x\n"
                                           "TRIGGER;RELATED=END:PT5M\nEND:VALARM", 1)
    put_raw(xandikos, xan, "alarms.ics", two)
    report = Group(tmp_path, xan, vendor).run()
    assert report.counts["created"] == 1, report.errors
    [note] = report.adapted
    assert note.feature == "VALARM" and "RELATED=END" in note.detail
    [item] = vendor.items()
    assert len(item.components[0].alarms) == 1


def test_a_dry_run_shows_how_copies_would_be_written(tmp_path: Path, xan: Peer, xandikos: CalDAVServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with vendor_peer("ews", monkeypatch) as ews:
        put_raw(xandikos, xan, "setpos.ics", THIRD_TUE_WED_THU)
        report = Group(tmp_path, xan, ews).run(dry_run=True)
        assert [n.feature for n in report.adapted] == ["RRULE"]
        assert ews.items() == []


def test_the_ews_fake_refuses_several_weekdays_in_a_relative_pattern() -> None:
    """Types.xsd: RelativeMonthlyRecurrence's DaysOfWeek is a DayOfWeekType, one value."""
    t = "http://schemas.microsoft.com/exchange/services/2006/types"
    xml = (f'<t:Recurrence xmlns:t="{t}"><t:RelativeMonthlyRecurrence><t:Interval>1</t:Interval>'
           "<t:DaysOfWeek>{days}</t:DaysOfWeek><t:DayOfWeekIndex>Third</t:DayOfWeekIndex>"
           "</t:RelativeMonthlyRecurrence><t:NumberedRecurrence><t:StartDate>2025-01-07</t:StartDate>"
           "<t:NumberOfOccurrences>3</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence>")
    assert _pattern_from_xml(fromstring(xml.format(days="Weekday"))).days_of_week == (0, 1, 2, 3, 4)
    with pytest.raises(ValueError, match="one DaysOfWeek value"):
        _pattern_from_xml(fromstring(xml.format(days="Tuesday Wednesday Thursday")))


MADE_UP = Rules("+0100", "+0200", (4, "1SU", 2), (10, "1SU", 3))
"""Summer time from the first Sunday of April to the first Sunday of October: no IANA zone."""


def made_up_local(day: datetime) -> datetime:
    """10:00 on ``day`` under MADE_UP, by hand: +02:00 from 6 April 2025 02:00 to 5 October 03:00."""
    summer = datetime(2025, 4, 6, 2) <= day.replace(hour=10) < datetime(2025, 10, 5, 3)
    return day.replace(hour=10, tzinfo=timezone(timedelta(hours=2 if summer else 1)))


def test_a_series_in_a_zone_of_its_own_keeps_every_instant_on_every_vendor(
        tmp_path: Path, xan: Peer, vendor: Peer, xandikos: CalDAVServer) -> None:
    """Graph and Google take zone names only: the copy is written in a known zone with the
    first occurrence's offset, the summer occurrences moved to their own time, and said. EWS
    carries the definition (tests/sync/test_sync_ews_zones.py): the series as it is, no notice."""
    put_raw(xandikos, xan, "custom.ics", customized("made-up@test", MADE_UP))
    group = Group(tmp_path, xan, vendor)
    report = group.run()
    assert report.counts["created"] == 1, report.errors
    starts = [made_up_local(datetime(2025, 1, 15) + timedelta(weeks=n)) for n in range(30)]
    assert exchange_occurrences(vendor) == [(s.astimezone(UTC), (s + HOUR).astimezone(UTC)) for s in starts]
    if vendor.conn.kind == "ews":
        assert not report.adapted, [str(n) for n in report.adapted]
    else:
        [note] = report.adapted
        assert note.feature == "VTIMEZONE" and "Customized Time Zone" in note.detail
        assert "18 moved" in note.detail, note.detail
    assert group.writes(group.run()) == 0


def test_an_endless_series_in_a_zone_of_its_own_is_not_written_where_the_zone_cannot_be_carried(
        tmp_path: Path, xan: Peer, vendor: Peer, xandikos: CalDAVServer) -> None:
    put_raw(xandikos, xan, "custom.ics", customized("made-up@test", MADE_UP).replace(";COUNT=30", ""))
    report = Group(tmp_path, xan, vendor).run()
    if vendor.conn.kind == "ews":  # the definition travels with the series
        assert report.counts["created"] == 1 and not report.adapted, (report.errors, report.adapted)
        return
    [note] = report.adapted
    assert not note.written and note.feature == "VTIMEZONE" and "endless" in note.detail
    assert vendor.items() == []


def test_the_graph_fake_refuses_a_pattern_without_its_required_properties() -> None:
    """recurrencePattern: weekly needs daysOfWeek, a numbered range numberOfOccurrences."""
    weekly = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
              "range": {"type": "numbered", "startDate": "2025-01-06", "numberOfOccurrences": 3}}
    _check_recurrence(weekly)
    for broken in ({**weekly, "pattern": {"type": "weekly", "interval": 1}},
                   {**weekly, "range": {"type": "numbered", "startDate": "2025-01-06"}},
                   {**weekly, "pattern": {"type": "hourly", "interval": 1}}):
        with pytest.raises(_Fault):
            _check_recurrence(broken)


ENDLESS_WITH_DATES = calendar(vevent(
    "dated@test", "20250106T090000", "20250106T100000", tzid="Europe/Paris",
    extra="RRULE:FREQ=WEEKLY;BYDAY=MO\nRDATE;TZID=Europe/Paris:20250113T090000\n"
          "EXDATE;TZID=Europe/Paris:20250120T090000\nRDATE;TZID=Europe/Paris:20250120T140000"))
"""Every Monday 9:00 in Paris, without end; an RDATE that is a Monday 9:00 already (counted
once, RFC 5545 3.8.5.2), and the 20 January occurrence moved to 14:00 the way exporters write it
(an EXDATE and an RDATE that day)."""


@pytest.mark.parametrize("kind", ["ews", "graph"])
def test_an_endless_series_with_dates_it_needs_no_rdate_for_is_written_to_exchange(
        tmp_path: Path, xan: Peer, xandikos: CalDAVServer, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Exchange holds no RDATE, and an endless series cannot be spelled out; yet these RDATEs
    need none: the one the rule has already is left out, the moved one is a moved occurrence.
    The copy has the same occurrences, the report says how, and the next run writes nothing."""
    with vendor_peer(kind, monkeypatch) as vendor:
        put_raw(xandikos, xan, "dated.ics", ENDLESS_WITH_DATES)
        group = Group(tmp_path, xan, vendor)
        report = group.run()
        assert report.counts["created"] == 1, report.errors
        [note] = report.adapted
        assert note.feature == "RDATE" and note.written and "1 RDATE(s) that the rule already has" in note.detail
        assert "1 RDATE(s) on the day of an excluded occurrence" in note.detail
        mondays = [datetime(2025, 1, 6, 9, tzinfo=PARIS) + timedelta(weeks=n) for n in range(73)]
        expected = sorted((s.astimezone(UTC), (s + HOUR).astimezone(UTC)) for s in
                          [m if m.day != 20 or m.month != 1 else m.replace(hour=14) for m in mondays])
        assert exchange_occurrences(vendor) == [e for e in expected if e[0] < datetime(2026, 6, 1, tzinfo=UTC)]
        assert group.writes(group.run()) == 0


@pytest.mark.parametrize("kind", ["ews", "graph"])
def test_an_endless_series_with_a_true_extra_date_is_not_written_and_the_report_names_the_date(
        tmp_path: Path, xan: Peer, xandikos: CalDAVServer, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """An RDATE that is no occurrence of the rule, moved or not, has no form on Exchange beside an
    endless series (see docs/timezones.md): not written, and said, naming the extra date that
    goes without a copy (the 20 January one, moved to 14:00, needs no RDATE and is not named)."""
    with vendor_peer(kind, monkeypatch) as vendor:
        put_raw(xandikos, xan, "extra.ics", ENDLESS_WITH_DATES.replace("20250120T140000", "20250122T140000"))
        report = Group(tmp_path, xan, vendor).run()
        assert report.counts["created"] == 0 and report.counts["not_held"] == 1
        note = report.adapted[-1]
        assert not note.written and "endless" in note.detail
        assert "1 extra date(s) no rule gives go without a copy: 2025-01-22 14:00 (Europe/Paris)" in note.detail
        assert str(note) in report.notices
        assert vendor.items() == []


def test_a_spelled_out_series_spanning_a_change_of_clocks_keeps_its_length(
        tmp_path: Path, xan: Peer, vendor: Peer, xandikos: CalDAVServer) -> None:
    """Every other day from 23:30 to 10:30 the next morning in a zone of the object's own whose
    clocks go forward at midnight: the first instance lasts ten hours (RFC 5545 3.8.5.3: each
    instance the exact time between DTSTART and DTEND). Graph and Google get the series spelled
    out in a known zone, whose instances lasted the eleven hours of wall clock between the two."""
    zone = ZONES["Customized Time Zone"]
    reading = Reading(zone)
    put_raw(xandikos, xan, "night.ics", calendar(zone.vtimezone(), vevent(
        "night@test", "20320327T233000", "20320328T103000", tzid=zone.tzid, extra="RRULE:FREQ=DAILY;INTERVAL=3;COUNT=4")))
    group = Group(tmp_path, xan, vendor)
    report = group.run()
    assert report.counts["created"] == 1, report.errors
    [item] = vendor.items()
    found, problems = ical.expand_items([item], Window(datetime(2032, 3, 1, tzinfo=UTC), datetime(2032, 5, 1, tzinfo=UTC)))
    assert not problems
    starts = [reading.instant(datetime(2032, 3, 27, 23, 30) + timedelta(days=3 * n)) for n in range(4)]
    assert sorted((e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in found) == [  # type: ignore[union-attr]
        (s, s + timedelta(hours=10)) for s in starts]
    assert group.writes(group.run()) == 0
