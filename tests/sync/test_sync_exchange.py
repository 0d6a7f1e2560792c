"""Two-way sync between a real CalDAV server (Radicale on 127.0.0.1) and Exchange, reached through
the EWS and Microsoft Graph connectors. No Exchange or Microsoft 365 service is reachable from the
test machines, so Exchange is calmesh.fakes.ews.EWSFake / calmesh.fakes.graph.GraphFake:
protocol-faithful fakes (SOAP and Graph v1.0 JSON over HTTP, change keys/ETags, SyncFolderItems and
delta) served by uvicorn on 127.0.0.1 and spoken to through the connectors' real client code."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from calmesh.connectors import registry
from calmesh.fakes.ews import EWSFake
from calmesh.fakes.graph import GraphFake
from calmesh.fakes.samples import NEW_YORK, PARIS, single, weekly_series
from calmesh.model import Attendee, Classification

from .peers import Group, Peer, bump

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the fixtures

MAILBOX = "alice@sales.test"
DAY = datetime(2026, 12, 1, 9, tzinfo=PARIS)


def meeting(uid: str, hour: int = 9, summary: str = "Review") -> Any:
    start = DAY + timedelta(hours=hour - 9)
    return single(uid, start, start + timedelta(minutes=45), summary)


@pytest.fixture(params=["ews", "graph"])
def exchange(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    """Alice's mailbox calendar on the EWS fake or on the Graph fake."""
    fake: EWSFake | GraphFake
    if request.param == "ews":
        fake = ews = EWSFake()
        ews.add_mailbox(MAILBOX, "Europe/Paris")
        monkeypatch.setenv("CALMESH_TEST_EWS_PASSWORD", "svc-password")
        raw = {"kind": "ews", "service_endpoint": "", "auth": "basic", "username": "calmesh-svc",
               "password_env": "CALMESH_TEST_EWS_PASSWORD", "mailboxes": [MAILBOX], "timezone": "Europe/Paris"}
    else:
        fake = graph = GraphFake()
        graph.add_mailbox(MAILBOX, "Europe/Paris")
        monkeypatch.setenv("CALMESH_TEST_GRAPH_SECRET", graph.client_secret)
        raw = {"kind": "graph", "tenant_id": "contoso", "client_id": graph.client_id,
               "client_secret_env": "CALMESH_TEST_GRAPH_SECRET", "mailboxes": [MAILBOX], "timezone": "Europe/Paris"}
    fake.start()
    if isinstance(fake, EWSFake):
        raw["service_endpoint"] = fake.ews_url
    else:
        raw.update(base_url=fake.graph_url, token_url=fake.token_url)
    connector = registry.create(request.param, raw)
    connector.sleep = lambda _s: None  # type: ignore[attr-defined]
    try:
        yield Peer(request.param, connector, MAILBOX)
    finally:
        connector.close()
        fake.stop()


@pytest.fixture
def rad(radicale: CalDAVServer) -> Peer:
    return Peer("rad", radicale.connector("rad"), radicale.new_calendar())


def test_create_edit_delete_both_ways_then_nothing_to_do(tmp_path: Path, rad: Peer, exchange: Peer) -> None:
    group = Group(tmp_path, rad, exchange)
    rad.create(meeting("from-dav@test", summary="from CalDAV"))
    exchange.create(meeting("from-exchange@test", hour=14, summary="from Exchange"))
    assert group.run().counts["created"] == 2
    assert rad.titles() == exchange.titles() == {"from CalDAV", "from Exchange"}

    rad.edit(rad.uid_of("from Exchange"), bump(summary="edited in CalDAV"))
    exchange.edit(exchange.uid_of("from CalDAV"), bump(summary="edited in Exchange", location="Room 4"))
    assert group.run().counts["updated"] == 2
    assert rad.titles() == exchange.titles() == {"edited in CalDAV", "edited in Exchange"}
    assert rad.master("from-dav@test").location == "Room 4"
    before = (rad.etags(), exchange.etags())
    for full in (False, True):
        report = group.run(full=full)
        assert report.plan.writes == [] and group.writes(report) == 0
    assert (rad.etags(), exchange.etags()) == before  # no echo, no rewrite

    rad.delete("from-dav@test")
    exchange.delete(exchange.uid_of("edited in CalDAV"))
    assert group.run().counts["deleted"] == 2
    assert rad.uids() == exchange.uids() == set()


def test_series_with_exceptions_and_exdate_crosses_both_ways(tmp_path: Path, rad: Peer, exchange: Peer) -> None:
    group = Group(tmp_path, rad, exchange)
    rad.create(weekly_series("series@test"))
    group.run()
    series = exchange.uid_of("Sales stand-up")
    on_exchange = exchange.by_uid()[series].components
    assert len(on_exchange) == 2 and any(c.summary == "Sales stand-up (moved)" for c in on_exchange)
    # in CalDAV: a new exception (2026-10-27 at 11:00) and a new cancelled date (2026-11-17)
    item = rad.by_uid()["series@test"]
    master = next(c for c in item.components if c.recurrence_id is None)
    moved_from = datetime(2026, 10, 27, 9, tzinfo=PARIS)
    override = replace(master, recurrence_id=moved_from, rrule=[], exdate=[], summary="later today",
                       start=moved_from + timedelta(hours=2), end=moved_from + timedelta(hours=2, minutes=30))
    cancelled = datetime(2026, 11, 17, 9, tzinfo=PARIS)
    rad.put_back(item, [replace(master, exdate=[*master.exdate, cancelled], sequence=master.sequence + 1),
                        *[c for c in item.components if c.recurrence_id is not None], override])
    assert group.run().counts["updated"] == 1
    components = exchange.by_uid()[series].components
    overrides = {c.recurrence_id.astimezone(UTC): c for c in components if c.recurrence_id is not None}  # type: ignore[union-attr,attr-defined]
    assert overrides[moved_from.astimezone(UTC)].summary == "later today"
    ex_master = next(c for c in components if c.recurrence_id is None)
    assert cancelled.astimezone(UTC) in {d.astimezone(UTC) for d in ex_master.exdate}  # type: ignore[union-attr,attr-defined]
    group.settle()
    # and back: rename the series in Exchange
    exchange.edit(series, bump(summary="Sales sync"))
    group.run()
    assert rad.master("series@test").summary == "Sales sync"
    assert len(rad.by_uid()["series@test"].components) == 3
    group.settle()


def test_named_platform_wins_simultaneous_edits(tmp_path: Path, rad: Peer, exchange: Peer) -> None:
    group = Group(tmp_path, rad, exchange, conflict=exchange.platform)
    rad.create(meeting("c@test"))
    group.run()
    rad.edit("c@test", lambda e: replace(e, summary="CalDAV, newer", sequence=e.sequence + 5))
    exchange.edit(exchange.uid_of("Review"), bump(summary="Exchange wins by policy"))
    assert group.run().counts["conflict"] == 1
    group.settle()
    assert rad.titles() == exchange.titles() == {"Exchange wins by policy"}


def test_time_zone_change_crosses_to_exchange(tmp_path: Path, rad: Peer, exchange: Peer) -> None:
    group = Group(tmp_path, rad, exchange)
    rad.create(meeting("tz@test"))
    group.run()
    ny = datetime(2026, 12, 1, 9, tzinfo=NEW_YORK)
    rad.edit("tz@test", bump(start=ny, end=ny + timedelta(hours=1), tzid="America/New_York"))
    group.run()
    copy = exchange.master(exchange.uid_of("Review"))
    assert copy.start.astimezone(UTC) == datetime(2026, 12, 1, 14, tzinfo=UTC)  # type: ignore[union-attr,attr-defined]
    assert copy.tzid == "America/New_York"
    group.settle()


def test_busy_blocks_in_exchange_leak_nothing(tmp_path: Path, rad: Peer, exchange: Peer) -> None:
    group = Group(tmp_path, replace(rad, direction="out"), replace(exchange, direction="in"),
                  mode="busy", busy_title="Busy (CalDAV)")
    secret = meeting("secret@test", summary="Acquisition of Contoso")
    secret.components[0] = replace(secret.components[0], description="price: 4M", location="CEO office",
                                   attendees=[Attendee("cfo@agency.test", "Chief Financial")])
    rad.create(secret)
    group.run()
    [copy] = [c for i in exchange.items() for c in i.components]
    assert (copy.summary, copy.classification) == ("Busy (CalDAV)", Classification.PRIVATE)
    assert copy.start.astimezone(UTC) == DAY.astimezone(UTC)  # type: ignore[union-attr,attr-defined]
    assert (copy.description or "", copy.location or "", copy.attendees) == ("", "", [])
    assert group.run().plan.writes == []
