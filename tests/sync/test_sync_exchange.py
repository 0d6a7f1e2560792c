"""Two-way sync between a real CalDAV server (Radicale on 127.0.0.1) and Exchange, reached through
the EWS and Microsoft Graph connectors, and (with several writers at once) Google. No Exchange,
Microsoft 365 or Google service is reachable from the test machines, so they are
calmesh.fakes.ews.EWSFake / calmesh.fakes.graph.GraphFake / calmesh.fakes.google.GoogleFake:
protocol-faithful fakes (SOAP, Graph v1.0 and Calendar API v3 JSON over HTTP, change keys/ETags,
SyncFolderItems, delta and syncToken) served by uvicorn on 127.0.0.1 and spoken to through the
connectors' real client code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from calmesh.fakes.outage import GoesDown
from calmesh.fakes.samples import NEW_YORK, PARIS, single, weekly_series
from calmesh.model import (
    MARKER_PROPERTY,
    Attendee,
    CalendarItem,
    Classification,
    Event,
    PartStat,
    Role,
)
from connectors.vendors import ALICE, BOB, CAROL, VENDORS

from .peers import Group, Peer, bump

MAILBOX = ALICE
DAY = datetime(2026, 12, 1, 9, tzinfo=PARIS)


def meeting(uid: str, hour: int = 9, summary: str = "Review") -> Any:
    start = DAY + timedelta(hours=hour - 9)
    return single(uid, start, start + timedelta(minutes=45), summary)


@dataclass
class VendorPeer(Peer):
    """A peer on a vendor fake, which tests may also inspect."""

    fake: Any = None


@contextmanager
def vendor_peer(kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    """Alice's calendar on the ``kind`` ("ews", "graph" or "google") fake, started on loopback
    and reached through the real connector (retries do not sleep): ``tests/connectors/vendors.py``,
    shared with the connector tests."""
    vendor = VENDORS[kind](monkeypatch)
    vendor.fake.start()
    try:
        yield VendorPeer(vendor.platform, vendor.connect(), MAILBOX, fake=vendor.fake)
    finally:
        vendor.close()


@pytest.fixture(params=["ews", "graph"])
def exchange(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    """Alice's mailbox calendar on the EWS fake or on the Graph fake."""
    with vendor_peer(request.param, monkeypatch) as peer:
        yield peer


@pytest.fixture(params=["ews", "graph", "google"])
def vendor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    """Alice's calendar on the EWS, the Graph or the Google fake."""
    with vendor_peer(request.param, monkeypatch) as peer:
        yield peer


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
    moved_from, cancelled = datetime(2026, 10, 27, 9, tzinfo=PARIS), datetime(2026, 11, 17, 9, tzinfo=PARIS)
    rad.put_back(item, with_new_exception(item, moved_from, cancelled, "later today"))
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
    marker = copy.extra.get(MARKER_PROPERTY, "")  # nor where it comes from
    assert marker.startswith("calmesh-busy:") and "secret" not in marker and rad.calendar not in marker
    assert group.run().plan.writes == []


def with_new_exception(item: CalendarItem, moved_from: datetime, cancelled: datetime, summary: str) -> list[Event]:
    """The series' components after a user moves the ``moved_from`` occurrence two hours later
    (titled ``summary``) and cancels the ``cancelled`` one."""
    master = next(c for c in item.components if c.recurrence_id is None)
    override = replace(master, recurrence_id=moved_from, rrule=[], exdate=[], summary=summary,
                       start=moved_from + timedelta(hours=2), end=moved_from + timedelta(hours=2, minutes=30))
    return [replace(master, exdate=[*master.exdate, cancelled], sequence=master.sequence + 1),
            *[c for c in item.components if c.recurrence_id is not None], override]


def contents(peer: Peer) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """What ``peer`` holds, from one listing (``Peer.titles`` lists once per item): every item's
    title, sorted with duplicates kept, and per series title its (overrides, EXDATEs)."""
    items = peer.items()
    titles = sorted((i.master or i.components[0]).summary or "" for i in items)
    series = {m.summary or "": (len(i.overrides), len(m.exdate)) for i in items if (m := i.master) is not None and m.rrule}
    return titles, series


@pytest.mark.slow
def test_parallel_writes_keep_every_guarantee(tmp_path: Path, rad: Peer, vendor: Peer) -> None:
    """``[hub] sync_write_workers = 4`` against each vendor fake (issue #5): 60 items, series with
    a moved occurrence and an EXDATE among them, copied both ways by four writers at once; then
    no duplicate, nothing to do on a re-run, and edits and deletes made on either side cross."""
    for n in range(40):
        rad.create(single(f"r{n}@test", DAY + timedelta(days=n % 5, hours=n % 8),
                          DAY + timedelta(days=n % 5, hours=n % 8, minutes=30), f"CalDAV {n}"))
    for n in range(15):
        vendor.create(single(f"v{n}@test", DAY + timedelta(days=n % 5, hours=n % 8, minutes=30),
                             DAY + timedelta(days=n % 5, hours=n % 8, minutes=50), f"{vendor.platform} {n}"))
    for n, peer in enumerate((rad, rad, rad, vendor, vendor)):
        series = weekly_series(f"series{n}@test")
        series.components = [replace(c, summary=f"{c.summary} {n}") for c in series.components]
        peer.create(series)
    group = Group(tmp_path, rad, vendor, write_workers=4)
    first = group.run()
    assert (first.status, first.counts["created"], first.errors) == ("ok", 60, [])
    titles, series = contents(rad)
    assert contents(vendor) == (titles, series)
    assert len(titles) == len(set(titles)) == 60  # 60 objects for 60 titles: no duplicate
    assert series == {f"Sales stand-up {n}": (1, 1) for n in range(5)}  # moved occurrence and EXDATE kept
    for full in (False, True):
        assert group.writes(group.run(full=full)) == 0

    rad.edit("r7@test", bump(summary="edited in CalDAV"))
    vendor.edit(vendor.uid_of(f"{vendor.platform} 3"), bump(summary=f"edited in {vendor.platform}"))
    series = rad.by_uid()["series0@test"]
    rad.put_back(series, with_new_exception(series, datetime(2026, 10, 27, 9, tzinfo=PARIS),
                                            datetime(2026, 11, 17, 9, tzinfo=PARIS), "later today"))
    rad.delete("r8@test")
    vendor.delete(vendor.uid_of("CalDAV 9"))
    vendor.delete(vendor.uid_of(f"{vendor.platform} 4"))
    report = group.run()
    assert (report.counts["updated"], report.counts["deleted"], report.errors) == (3, 3, [])
    group.settle()
    titles, series = contents(rad)
    assert contents(vendor) == (titles, series) and len(titles) == len(set(titles)) == 57
    assert {"edited in CalDAV", f"edited in {vendor.platform}"} <= set(titles)
    assert not {"CalDAV 8", "CalDAV 9", f"{vendor.platform} 4"} & set(titles)
    assert series["Sales stand-up 0"] == (2, 2)
    assert group.writes(group.run(full=True)) == 0


def bobs_meeting(uid: str) -> CalendarItem:
    """A meeting Bob organises with Alice and Carol: what Alice's calendar holds after accepting."""
    item = meeting(uid, hour=11, summary="Pricing review")
    item.components[0] = replace(item.components[0], organizer=Attendee(BOB, "Bob", PartStat.ACCEPTED, Role.CHAIR),
                                 attendees=[Attendee(ALICE, "Alice", PartStat.ACCEPTED),
                                            Attendee(CAROL, "Carol", PartStat.TENTATIVE, Role.OPTIONAL)])
    return item


def people(event: Event) -> tuple[str | None, list[tuple[str, PartStat, Role]]]:
    return (event.organizer.email if event.organizer else None,
            sorted((a.email, a.partstat, a.role) for a in event.attendees))


def invitations_sent(peer: Peer) -> list[Any]:
    """What the vendor fake would have mailed to attendees (meeting requests, updates,
    cancellations) for the writes so far."""
    assert isinstance(peer, VendorPeer)
    return list(peer.fake.invitations_sent)


@pytest.mark.parametrize("attendees", ["copy", "omit"])
@pytest.mark.parametrize("origin_side", ["caldav", "vendor"])
def test_meeting_organised_by_someone_else_syncs_without_rewrites(tmp_path: Path, rad: Peer, vendor: Peer,
                                                                   origin_side: str, attendees: str) -> None:
    """Issue #5: a meeting Bob organises, in Alice's calendar on one side, copied to Alice's
    calendar on the other. With ``attendees = "copy"`` Exchange and Google name Alice organizer
    of the copy calmesh writes (and reset the attendees' answers): that is the platform's doing,
    not an edit. With ``"omit"`` the copy is a plain event (no organizer, no attendees). Either
    way no run, full or not, rewrites anything, the original keeps Bob as organizer and
    everyone's answers, a real edit on either side crosses once, and no invitation leaves the
    vendor for calmesh's copy, except Graph with "copy" (below). Vendors are the fakes (see the
    module docstring); each records the mail its service would send."""
    group = Group(tmp_path, rad, vendor, attendees=attendees)
    origin, copy_side = (rad, vendor) if origin_side == "caldav" else (vendor, rad)
    if origin is rad:
        rad.create(bobs_meeting("bobs@test"))
    else:
        assert isinstance(vendor, VendorPeer)
        vendor.fake.add_item(ALICE, bobs_meeting("bobs@test"))  # Bob's invitation, as Alice accepted it
    uid = origin.uid_of("Pricing review")
    before = people(origin.master(uid))
    assert before[0] == BOB
    first = group.run()
    assert (first.counts["created"], first.errors) == (1, [])
    copy_uid = copy_side.uid_of("Pricing review")
    copied = {a for a, _p, _r in people(copy_side.master(copy_uid))[1]}
    assert copied == ({ALICE, CAROL} if attendees == "copy" else set())

    etags = (rad.etags(), vendor.etags())
    for full in (False, True, True):
        report = group.run(full=full)
        assert (report.plan.writes, report.errors) == ([], []), (full, report.plan.writes)
    assert (rad.etags(), vendor.etags()) == etags  # nothing rewritten
    assert people(origin.master(uid)) == before
    if origin is rad:
        assert people(rad.master(uid)) == before  # Bob stays organizer, Carol's answer stays

    for editor, other, hour in ((rad, vendor, 15), (vendor, rad, 16)):
        start = DAY + timedelta(hours=hour - 9)
        editor_uid = editor.uid_of("Pricing review")
        editor.edit(editor_uid, bump(start=start, end=start + timedelta(minutes=45)))
        report = group.run()
        assert (report.counts["updated"], group.writes(report), report.errors) == (1, 1, [])
        moved = other.master(other.uid_of("Pricing review")).start
        assert moved.astimezone(UTC) == start.astimezone(UTC)  # type: ignore[union-attr]
        for full in (False, True):
            assert group.writes(group.run(full=full)) == 0
        assert people(origin.master(uid))[0] == BOB, f"{editor.platform}'s organizer was pushed onto the original"
        if origin is rad or attendees == "omit":
            assert people(origin.master(uid)) == before  # the copy's people (or none) never reach it
        if attendees == "omit":
            assert people(copy_side.master(copy_side.uid_of("Pricing review"))) == (None, [])
    if vendor.platform == "m365" and origin is rad and attendees == "copy":
        pytest.xfail("Graph v1.0 mails attendees whenever a meeting is created or changed in its organizer's "
                     "calendar and has no way to say 'send none' (microsoftgraph/msgraph-sdk-dotnet#1549)")
    assert invitations_sent(vendor) == []


def test_while_caldav_is_down_a_vendor_calendar_costs_what_changed(tmp_path: Path, rad: Peer, vendor: Peer,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Radicale goes down as calmesh writes to it, leaving changes made on Exchange (EWS or
    Graph) or Google half-done. Until it is back, each run reads the vendor's change feed and
    the half-done items by their ids (EWS GetItem, Graph and Google GET by id), never the
    vendor's whole calendar (before: its connector listed it whole to find those few items, on
    every run of the outage); an edit and a deletion made meanwhile are still decided, and once
    Radicale is back it holds the latest of everything, once. A series is read whole by its id."""
    for n in range(12):
        vendor.create(meeting(f"o{n}@test", hour=8 + n % 10, summary=f"Meeting {n}"))
    vendor.create(weekly_series("series@test"))  # with a moved and a cancelled occurrence
    group = Group(tmp_path, vendor, rad)
    group.settle()
    uid = {n: vendor.uid_of(f"Meeting {n}") for n in (1, 2, 3)}  # Graph gives new events UIDs of its own
    series = vendor.uid_of("Sales stand-up")
    vendor.edit(uid[1], bump(summary="Moved review"))
    vendor.edit(series, bump(summary="Weekly, renamed"))
    vendor.create(meeting("new@test", hour=18, summary="New"))
    vendor.delete(uid[2])
    outage = GoesDown(rad.conn)
    group.connectors["rad"] = outage  # type: ignore[assignment]
    failed = group.run()
    assert failed.status == "partial" and outage.down
    vendor.edit(uid[1], bump(summary="Moved again"))  # edited again during the outage
    vendor.delete(uid[3])
    listed: list[str] = []
    real_items = vendor.conn.items

    def items(calendar: str, window: Any = None) -> Any:
        listed.append(calendar)
        return real_items(calendar, window)

    with monkeypatch.context() as patched:
        patched.setattr(vendor.conn, "items", items)
        for _ in range(3):
            during = group.run()
            assert during.status == "partial" and during.full == set()
            assert len(during.read) <= 5, sorted(during.read)
    assert listed == [], "a CalDAV outage made the vendor's calendar be listed whole"
    group.connectors["rad"] = rad.conn  # back up
    group.settle()
    assert vendor.titles() == rad.titles() and len(rad.uids()) == len(vendor.uids()) == 12
    assert {"Moved again", "Weekly, renamed", "New"} <= rad.titles()
    assert not {"Meeting 2", "Meeting 3", "Moved review"} & rad.titles()
