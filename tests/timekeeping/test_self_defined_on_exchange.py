"""Events in zones only their calendar defines, copied to Exchange: generated series (those of
:mod:`.test_self_defined_zones`, near and across their zone's changes of clocks) written through
the real EWS and Graph connectors to calmesh's protocol-faithful fakes and read back, every
occurrence at the instants the zone's own rules give (:mod:`.self_defined`), as long as they say
(issue 13). EWS carries the definition; Graph, which takes zone names only, gets the series
spelled out in a known zone, and a series that cannot be so (an endless one) is refused with
its reason, never written otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings

from calmesh import ical
from calmesh.connectors.base import CannotHold, FreeBusyRequest
from calmesh.model import CalendarItem, Window
from connectors.vendors import ALICE
from sync.peers import Group, Peer, vendor_peer

from .self_defined import STAMP, ZONES, Era, Reading, SelfZone
from .test_self_defined_zones import SEEN, Case, Span, cases
from .test_sync_copies import put_raw
from .zone_calendars import calendar, vevent

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers


MOST_DELETED = 40
"""Spelled-out copies deleting more occurrences are left out (each deletion is two requests;
tests/timekeeping/test_spelled_out_properties.py checks that form without a vendor)."""


@pytest.fixture(scope="module", params=["ews", "graph"])
def exchange(request: pytest.FixtureRequest) -> Iterator[Peer]:
    """One started fake for all the examples (a fake per example would take most of the time)."""
    with pytest.MonkeyPatch.context() as monkeypatch, vendor_peer(request.param, monkeypatch) as peer:
        yield peer


def copied(peer: Peer, case: Case) -> list[Span] | None:
    """The occurrences in UTC of ``case``'s copy written to ``peer`` and read back (None: the
    platform cannot hold it, and the write says so); the calendar is left empty."""
    [item], problems = ical.parse_items(case.text)
    assert not problems, [p.message for p in problems]
    try:
        fitted, _notes = peer.conn.fit(item)
    except CannotHold:
        return None
    if fitted.master is not None and len(fitted.master.exdate) > MOST_DELETED:
        return None
    peer.create(item)
    try:
        [copy] = peer.items()
        return spans([copy])
    finally:
        for left in peer.items():
            assert left.ref is not None
            peer.conn.delete(peer.calendar, left.ref)


def spans(items: list[CalendarItem]) -> list[tuple[datetime, datetime]]:
    """The occurrences of these copies, as calmesh reads them, in UTC and in order."""
    found, problems = ical.expand_items(items, SEEN)
    assert not problems, [p.message for p in problems]
    return sorted((e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in found)  # type: ignore[union-attr]


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=cases())
def test_a_copy_on_exchange_of_an_event_in_a_self_defined_zone_keeps_its_instants(exchange: Peer, case: Case) -> None:
    spans = copied(exchange, case)
    if spans is not None:
        assert spans == case.expected


# ------------------------------------------------------------------ one regression test per fault
GAP_SERIES = {
    "carried": (ZONES["Kathmandu summer"], "20300407T020000"),
    "iana": (SelfZone("Europe/Paris", (Era(1990, "+0100", "+0200", (3, -1, 2, 0), (10, -1, 3, 0)),)), "20250330T023000"),
}
"""Every three months from a time the clocks skip: 02:00 on the night they go from 02:00 to
03:00 (+05:45 to +06:45), in a zone only the calendar defines (EWS carries it; Graph gets it
spelled out in a zone without changes), and 02:30 on such a night in Paris (Paris's rules
since 1996, written out)."""


@pytest.mark.parametrize("kind", ["ews", "graph"])
@pytest.mark.parametrize("where", sorted(GAP_SERIES))
def test_a_series_starting_at_a_skipped_time_recurs_at_its_own_time_on_exchange(
        tmp_path: Path, xan: Peer, xandikos: CalDAVServer, monkeypatch: pytest.MonkeyPatch, kind: str,
        where: str) -> None:
    """The first occurrence is the skipped time read with the offset before the gap (RFC 5545
    3.3.5), the later ones at that wall time. Exchange keeps a series' start as an instant,
    whose wall time is the one after the gap: the copy recurred an hour late. It is written
    from the occurrence before, deleted, and said; the next run writes nothing."""
    zone, first = GAP_SERIES[where]
    reading = Reading(zone)
    vtimezone = [zone.vtimezone()] if where == "carried" else []
    with vendor_peer(kind, monkeypatch) as vendor:
        put_raw(xandikos, xan, "gap.ics", calendar(*vtimezone, vevent(
            "gap@test", first, tzid=zone.tzid, extra="DURATION:PT90M\nRRULE:FREQ=MONTHLY;INTERVAL=3;COUNT=4")))
        group = Group(tmp_path, xan, vendor)
        report = group.run()
        assert report.counts["created"] == 1, report.errors
        spelled = kind == "graph" and where == "carried"  # in a zone without changes: no gap there
        # the occurrence in the gap also ends 90 minutes later on the clock there: given its own end
        assert [n.feature for n in report.adapted] == (["VTIMEZONE"] if spelled else ["DTSTART", "DTEND"])
        assert spelled or "clocks skip" in report.adapted[0].detail
        wall = datetime.strptime(first, STAMP)
        starts = [reading.instant(wall + relativedelta(months=3 * n)) for n in range(4)]
        assert spans(vendor.items()) == [
            (s, s + timedelta(minutes=90)) for s in starts]
        assert group.writes(group.run()) == 0


@pytest.mark.parametrize("kind", ["ews", "graph"])
def test_a_series_whose_first_instance_spans_a_change_keeps_every_instance_length_on_exchange(
        tmp_path: Path, xan: Peer, xandikos: CalDAVServer, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Monthly, 24 hours from 03:00 on the day before Sydney's clocks go back at 03:00 (in a
    definition the calendar gives, Sydney's rules since 2008): the first instance ends at 02:00
    the second time round (written in UTC, the only way to say it), each instance lasts 24 hours
    (RFC 5545 3.8.5.3). Graph took the end as a wall time, the first 02:00, and the series'
    length as 23 hours on the clock: every instance an hour short. There the copy starts at the
    occurrence before, deleted, and says so (EWS takes the end in UTC); on both that instance,
    24 hours on the clock there, is an override with its own end."""
    zone = ZONES["Sydney before and since 2008"]
    reading = Reading(zone)
    with vendor_peer(kind, monkeypatch) as vendor:
        put_raw(xandikos, xan, "span.ics", calendar(zone.vtimezone(), vevent(
            "span@test", "20320403T030000", tzid=zone.tzid, extra="DTEND:20320403T160000Z\nRRULE:FREQ=MONTHLY;COUNT=4")))
        group = Group(tmp_path, xan, vendor)
        report = group.run()
        assert report.counts["created"] == 1, report.errors
        # and that instance, 24 hours on the clock there, is given its own end
        assert [n.feature for n in report.adapted] == (["DTSTART", "DTEND"] if kind == "graph" else ["DTEND"])
        assert kind == "ews" or "spans a change of clocks" in report.adapted[0].detail
        starts = [reading.instant(datetime(2032, 4 + n, 3, 3)) for n in range(4)]
        assert spans(vendor.items()) == [
            (s, s + timedelta(hours=24)) for s in starts]
        assert group.writes(group.run()) == 0


@pytest.mark.parametrize("kind", ["ews", "graph"])
def test_an_end_shown_twice_is_written_as_its_instant_on_exchange(
        tmp_path: Path, xan: Peer, xandikos: CalDAVServer, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """An occurrence moved to 02:45 on the night Paris clocks go back, half an hour long: it ends
    at 02:15 the second time round (``DTEND:...Z``). Graph's ``dateTimeTimeZone`` took that end
    as the local 02:15, the first one, before the start: the copy had no such occurrence at all
    (the same for a single event); an item's end names its own zone, so it goes in UTC. On EWS,
    exchangelib compared a single event's two times in Paris by wall clock and refused it."""
    paris = SelfZone("Europe/Paris", (Era(1990, "+0100", "+0200", (3, -1, 2, 0), (10, -1, 3, 0)),))
    moved = "\n".join(["BEGIN:VEVENT", "UID:moved@test", "DTSTAMP:20250101T000000Z", "SUMMARY:moved",
                       "RECURRENCE-ID;TZID=Europe/Paris:20221031T090000", "DTSTART;TZID=Europe/Paris:20221030T024500",
                       "DTEND:20221030T011500Z", "END:VEVENT"])
    with vendor_peer(kind, monkeypatch) as vendor:
        put_raw(xandikos, xan, "moved.ics", calendar(vevent("moved@test", "20221024T090000", "20221024T100000",
                                                             tzid=paris.tzid, extra="RRULE:FREQ=WEEKLY;COUNT=3"), moved))
        put_raw(xandikos, xan, "single.ics", calendar(vevent("single@test", "20221030T024500", tzid=paris.tzid,
                                                              extra="DTEND:20221030T011500Z")))
        group = Group(tmp_path, xan, vendor)
        report = group.run()
        assert report.counts["created"] == 2, report.errors
        reading = Reading(paris)
        mondays = [reading.instant(datetime(2022, 10, 24, 9)), reading.instant(datetime(2022, 11, 7, 9))]
        assert spans(vendor.items()) == sorted(
            [(s, s + timedelta(hours=1)) for s in mondays]
            + [(datetime(2022, 10, 30, 0, 45, tzinfo=UTC), datetime(2022, 10, 30, 1, 15, tzinfo=UTC))] * 2)
        assert group.writes(group.run()) == 0


def test_summer_time_that_begins_years_into_a_series_is_carried_from_that_year_on_ews(
        tmp_path: Path, xan: Peer, xandikos: CalDAVServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """+05:30 for good until summer time begins in March 2026: the definition EWS carries had the
    yearly rules from the start (from the year before the series, 2019), summer time in 2020 too:
    the copy of a series begun in July 2020 recurred at 15:15, an hour late in every winter
    month. The rules now begin with their first change, a fixed stretch before."""
    zone = ZONES["Summer time from 2026"]
    reading = Reading(zone)
    with vendor_peer("ews", monkeypatch) as ews:
        put_raw(xandikos, xan, "later.ics", calendar(zone.vtimezone(), vevent(
            "later@test", "20200722T141500", tzid=zone.tzid, extra="DURATION:PT90M\nRRULE:FREQ=MONTHLY;INTERVAL=2;COUNT=40")))
        group = Group(tmp_path, xan, ews)
        report = group.run()
        assert report.counts["created"] == 1 and not report.adapted, (report.errors, report.adapted)
        starts = [reading.instant(datetime(2020, 7, 22, 14, 15) + relativedelta(months=2 * n)) for n in range(40)]
        assert spans(ews.items()) == [
            (s, s + timedelta(minutes=90)) for s in starts]
        assert group.writes(group.run()) == 0


@pytest.mark.parametrize("kind", ["ews", "graph"])
def test_exact_hours_across_a_change_last_them_on_exchange_too(
        tmp_path: Path, xan: Peer, xandikos: CalDAVServer, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """``DURATION:PT24H`` daily from noon two days before the clocks go forward at midnight, in
    a zone only the calendar defines: every instance lasts 24 hours (RFC 5545 3.3.6), also the
    one across the change (noon to 13:00 on the clock). Exchange ends each occurrence 24 hours
    later on the clock: in Outlook and in the free/busy others see (the EWS fake's expansion)
    that one lasted 23. It is written as an override with its own end, and said."""
    zone = ZONES["Customized Time Zone"]
    reading = Reading(zone)
    with vendor_peer(kind, monkeypatch) as vendor:
        put_raw(xandikos, xan, "day.ics", calendar(zone.vtimezone(), vevent(
            "day@test", "20250328T120000", tzid=zone.tzid, extra="DURATION:PT24H\nRRULE:FREQ=DAILY;COUNT=3")))
        group = Group(tmp_path, xan, vendor)
        report = group.run()
        assert report.counts["created"] == 1, report.errors
        # Graph gets it spelled out in a zone without changes, where the clock keeps exact time
        assert [n.feature for n in report.adapted] == (["DTEND"] if kind == "ews" else ["VTIMEZONE"])
        starts = [reading.instant(datetime(2025, 3, 28 + n, 12)) for n in range(3)]
        expected = [(s, s + timedelta(hours=24)) for s in starts]
        assert spans(vendor.items()) == expected
        week = Window(datetime(2025, 3, 27, tzinfo=UTC), datetime(2025, 4, 3, tzinfo=UTC))
        [answer] = vendor.conn.freebusy([FreeBusyRequest(ALICE)], week)  # as the platform itself expands it
        assert sorted((b.start, b.end) for b in answer.busy) == expected
        assert group.writes(group.run()) == 0
