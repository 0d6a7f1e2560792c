"""An occurrence moved past its neighbour, copied to Exchange (the EWS and Graph fakes of
calmesh.fakes, reached through the real connectors). iCalendar lets an override (RECURRENCE-ID)
move an occurrence anywhere; Exchange refuses a move to or past the day of an adjacent
occurrence (ErrorOccurrenceCrossingBoundary). The copy must still hold every instance at its
time, say how it was written, and read back as no edit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import WEEKLY

from calmesh import ical
from calmesh.connectors.base import ConnectorError, FreeBusyRequest
from calmesh.model import BusyType, Window
from sync.peers import Group, Peer, vendor_peer

from .test_sync_copies import HOUR, put_raw, series

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

PARIS = ZoneInfo("Europe/Paris")
MOVED_PAST_THE_NEXT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//calmesh tests//crossing//EN
BEGIN:VEVENT
UID:crossing@test
DTSTAMP:20250101T000000Z
DTSTART;TZID=Europe/Paris:20250303T100000
DTEND;TZID=Europe/Paris:20250303T110000
RRULE:FREQ=WEEKLY;COUNT=6
SUMMARY:Weekly
END:VEVENT
BEGIN:VEVENT
UID:crossing@test
DTSTAMP:20250101T000000Z
RECURRENCE-ID;TZID=Europe/Paris:20250310T100000
DTSTART;TZID=Europe/Paris:20250318T140000
DTEND;TZID=Europe/Paris:20250318T150000
SUMMARY:Weekly (moved to the Tuesday after the next)
END:VEVENT
END:VCALENDAR
"""
MOVED_AT = (datetime(2025, 3, 18, 14, tzinfo=PARIS).astimezone(UTC), datetime(2025, 3, 18, 15, tzinfo=PARIS).astimezone(UTC))
EXPECTED = sorted([s for s in series(WEEKLY, datetime(2025, 3, 3, 10, tzinfo=PARIS), 6, HOUR)
                   if s[0] != datetime(2025, 3, 10, 9, tzinfo=UTC)] + [MOVED_AT])
WINDOW = Window(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 20, tzinfo=UTC))


@pytest.fixture(params=["ews", "graph"])
def exchange(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    with vendor_peer(request.param, monkeypatch) as peer:
        yield peer


@pytest.fixture(params=["rad", "xan"])
def source(request: pytest.FixtureRequest, radicale: CalDAVServer, xandikos: CalDAVServer) -> tuple[CalDAVServer, Peer]:
    server = radicale if request.param == "rad" else xandikos
    return server, Peer(request.param, server.connector(request.param), server.new_calendar())


def copied(peer: Peer) -> list[tuple[datetime, datetime]]:
    """The copy's instances as calmesh reads them back."""
    [item] = peer.items()
    found, problems = ical.expand_items([item], WINDOW)
    assert not problems
    return sorted((e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in found)  # type: ignore[union-attr]


def busy(peer: Peer) -> list[tuple[datetime, datetime]]:
    """The copy's busy time as the platform's own free/busy (GetUserAvailability, getSchedule) says it."""
    [person] = peer.conn.freebusy([FreeBusyRequest(peer.calendar)], WINDOW)
    assert not person.errors, person.errors
    return sorted((p.start, p.end) for p in person.busy if p.type is BusyType.BUSY)


def test_exchange_refuses_an_occurrence_moved_past_the_next(exchange: Peer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fakes refuse what Exchange refuses: written as it is (no fitting), the move fails with
    Exchange's own code, so calmesh meets the refusal in tests before it meets it in a mailbox."""
    item = ical.parse_items(MOVED_PAST_THE_NEXT)[0][0]
    monkeypatch.setattr(exchange.conn, "fit", lambda found: (found, []))
    with pytest.raises(ConnectorError, match="ErrorOccurrenceCrossingBoundary|crossing or overlapping"):
        exchange.create(item)


def test_exchange_accepts_an_occurrence_moved_within_its_neighbours(exchange: Peer) -> None:
    """A move that stays between the days of its neighbours is written as an override."""
    item = ical.parse_items(MOVED_PAST_THE_NEXT.replace("20250318T1", "20250312T1"))[0][0]
    exchange.create(item)
    [copy] = exchange.items()
    assert [o.recurrence_id for o in copy.overrides] == [datetime(2025, 3, 10, 10, tzinfo=PARIS)]


def test_an_occurrence_moved_past_the_next_keeps_every_instance_on_exchange(
        tmp_path: Path, source: tuple[CalDAVServer, Peer], exchange: Peer) -> None:
    """Synced from CalDAV, the moved occurrence is written the way Exchange holds it (that
    occurrence deleted, the instance an occurrence of its own day), said in the report; every
    instance is at its time in calmesh's reading and in the platform's free/busy, and the next
    run writes nothing."""
    server, peer = source
    put_raw(server, peer, "crossing.ics", MOVED_PAST_THE_NEXT)
    group = Group(tmp_path, peer, exchange)
    report = group.run()
    assert not report.errors, report.errors
    assert report.counts["created"] == 1
    [notice] = [n for n in report.adapted if n.feature == "RECURRENCE-ID"]
    assert notice.written and "2025-03-10 10:00" in notice.detail and "2025-03-18 14:00" in notice.detail
    assert copied(exchange) == EXPECTED
    assert busy(exchange) == EXPECTED
    [moved] = [c for c in exchange.items()[0].overrides if c.summary and "moved" in c.summary]
    assert (moved.start, moved.end) == (MOVED_AT[0].astimezone(PARIS), MOVED_AT[1].astimezone(PARIS))
    assert group.writes(group.run()) == 0


def test_an_endless_series_with_an_occurrence_moved_past_the_next_fails_visibly_on_exchange(
        tmp_path: Path, xan: Peer, exchange: Peer, xandikos: CalDAVServer) -> None:
    """An endless series cannot be spelled out: nothing is written, and the report names the
    occurrence rather than leave it elsewhere or missing."""
    put_raw(xandikos, xan, "crossing.ics", MOVED_PAST_THE_NEXT.replace("RRULE:FREQ=WEEKLY;COUNT=6", "RRULE:FREQ=WEEKLY"))
    report = Group(tmp_path, xan, exchange).run()
    assert report.counts["created"] == 0
    [notice] = [n for n in report.adapted if n.feature == "RECURRENCE-ID"]
    assert not notice.written and "2025-03-10 10:00" in notice.detail
    assert exchange.items() == []


def test_an_occurrence_moved_years_before_its_series_is_in_the_free_busy_of_exchange(exchange: Peer) -> None:
    """The first occurrence moved years earlier (no neighbour before it): Exchange accepts the
    move, and its free/busy shows the instance where it went, years before the series' others."""
    item = ical.parse_items(MOVED_PAST_THE_NEXT.replace("20250310T100000", "20250303T100000")
                            .replace("20250318T1", "20220301T1"))[0][0]
    exchange.create(item)
    earlier = Window(datetime(2022, 2, 1, tzinfo=UTC), datetime(2022, 3, 15, tzinfo=UTC))
    [person] = exchange.conn.freebusy([FreeBusyRequest(exchange.calendar)], earlier)
    assert [(p.start, p.end) for p in person.busy] == [(datetime(2022, 3, 1, 13, tzinfo=UTC),
                                                        datetime(2022, 3, 1, 13, tzinfo=UTC) + timedelta(hours=1))]


def test_an_occurrence_moved_into_the_place_of_a_cancelled_one_is_written_as_a_move_on_exchange(exchange: Peer) -> None:
    """A cancelled occurrence is no neighbour: the next one moved to its week stays a plain
    override, written once the cancelled one is deleted (deleting after the moves, the connectors
    met ErrorOccurrenceCrossingBoundary)."""
    item = ical.parse_items(MOVED_PAST_THE_NEXT.replace("RRULE:FREQ=WEEKLY;COUNT=6",
                                                        "RRULE:FREQ=WEEKLY;COUNT=6\nEXDATE;TZID=Europe/Paris:20250317T100000"))[0][0]
    assert exchange.conn.fit(item)[1] == []
    exchange.create(item)
    [copy] = exchange.items()
    assert [(o.recurrence_id, o.start) for o in copy.overrides] == [(datetime(2025, 3, 10, 10, tzinfo=PARIS),
                                                                      datetime(2025, 3, 18, 14, tzinfo=PARIS))]
