"""Copies on Exchange (the EWS and Graph fakes of calmesh.fakes, protocol-faithful, reached through
the real connectors): a series Outlook wrote under a Windows zone name keeps its local zone and
every instant there too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import WEEKLY

from calmesh import ical
from calmesh.model import Window
from connectors.vendors import ALICE
from sync.peers import Group, Peer, vendor_peer

from .test_sync_copies import HOUR, put_raw, series
from .zone_calendars import OFFICE365_WARSAW, THIS_AND_FUTURE

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

MAILBOX = ALICE
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(params=["ews", "graph"])
def exchange(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    with vendor_peer(request.param, monkeypatch) as peer:
        yield peer


def test_a_windows_zone_series_keeps_every_instant_on_exchange(tmp_path: Path, xan: Peer, exchange: Peer,
                                                               xandikos: CalDAVServer) -> None:
    put_raw(xandikos, xan, "warsaw.ics", OFFICE365_WARSAW)
    group = Group(tmp_path, xan, exchange)
    assert group.run().counts["created"] == 1
    expected = series(WEEKLY, datetime(2025, 1, 7, 9, tzinfo=ZoneInfo("Europe/Warsaw")), 50, HOUR)
    assert exchange_occurrences(exchange) == expected
    assert group.writes(group.run()) == 0


def exchange_occurrences(peer: Peer) -> list[tuple[datetime, datetime]]:
    [item] = peer.items()
    found, problems = ical.expand_items([item], Window(datetime(2025, 1, 1, tzinfo=UTC),
                                                       datetime(2026, 6, 1, tzinfo=UTC)))
    assert not problems
    return sorted((e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in found)  # type: ignore[union-attr]


def test_a_change_to_this_and_every_later_occurrence_is_spelled_out_on_exchange(
        tmp_path: Path, xan: Peer, exchange: Peer, xandikos: CalDAVServer) -> None:
    """Exchange has no RANGE=THISANDFUTURE: the copy overrides each later occurrence instead, so
    every instance is where the original says, and the next run writes nothing."""
    put_raw(xandikos, xan, "taf.ics", THIS_AND_FUTURE)
    group = Group(tmp_path, xan, exchange)
    assert group.run().counts["created"] == 1
    expected = (series(WEEKLY, datetime(2025, 3, 3, 10, tzinfo=PARIS), 2, HOUR)
                + series(WEEKLY, datetime(2025, 3, 17, 15, tzinfo=PARIS), 6, HOUR))
    assert exchange_occurrences(exchange) == expected
    assert group.writes(group.run()) == 0


def test_a_this_and_future_change_of_an_endless_series_fails_visibly_on_exchange(
        tmp_path: Path, xan: Peer, exchange: Peer, xandikos: CalDAVServer) -> None:
    """Endless overrides cannot be written: the sync says why instead of moving one occurrence."""
    put_raw(xandikos, xan, "taf.ics", THIS_AND_FUTURE.replace("RRULE:FREQ=WEEKLY;COUNT=8", "RRULE:FREQ=WEEKLY"))
    report = Group(tmp_path, xan, exchange).run()
    assert report.counts["created"] == 0
    assert any("THISANDFUTURE" in error for error in report.errors), report.errors
    assert exchange.items() == []
