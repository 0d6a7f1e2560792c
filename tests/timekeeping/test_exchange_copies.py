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
from test_sync_copies import HOUR, put_raw, series
from zone_calendars import OFFICE365_WARSAW

from calmesh import ical
from calmesh.model import Window
from connectors.vendors import ALICE, VENDORS
from sync.peers import Group, Peer

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

MAILBOX = ALICE


@pytest.fixture(params=["ews", "graph"])
def exchange(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    vendor = VENDORS[request.param](monkeypatch)
    vendor.fake.start()
    try:
        yield Peer(vendor.platform, vendor.connect(), MAILBOX)
    finally:
        vendor.close()


def test_a_windows_zone_series_keeps_every_instant_on_exchange(tmp_path: Path, xan: Peer, exchange: Peer,
                                                               xandikos: CalDAVServer) -> None:
    put_raw(xandikos, xan, "warsaw.ics", OFFICE365_WARSAW)
    group = Group(tmp_path, xan, exchange)
    assert group.run().counts["created"] == 1
    [item] = exchange.items()
    found, problems = ical.expand_items([item], Window(datetime(2025, 1, 1, tzinfo=UTC),
                                                       datetime(2026, 6, 1, tzinfo=UTC)))
    assert not problems
    expected = series(WEEKLY, datetime(2025, 1, 7, 9, tzinfo=ZoneInfo("Europe/Warsaw")), 50, HOUR)
    assert sorted((e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in found) == expected  # type: ignore[union-attr]
    assert group.writes(group.run()) == 0
