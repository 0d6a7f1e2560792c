"""A first comparison made in parts (``SyncEngine(parts_above=..., part_size=...)``) ends where the
same comparison made whole ends: the same calendars, the same records, the same writes, on real
Radicale and Xandikos calendars (tests/conftest.py starts both on 127.0.0.1).

Each scenario is built twice, on two fresh pairs of calendars: one group compares in parts of a
few items, the other whole; their outcomes are compared with the calendars' own names taken out.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from calmesh.fakes.samples import weekly_series
from calmesh.services import sync as sync_engine
from calmesh.services.sync import SyncReport

from .peers import Group, Peer, bump, vendor_peer
from .test_sync_caldav import BAD_DATES, meeting

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

PART = 4


def _digest(name: str) -> str:
    """How a busy placeholder names a calendar or an item (``syncplan._short_id``)."""
    return hashlib.sha256(name.encode()).hexdigest()[:20]


def _fill(tmp_path: Path, rad: Peer, xan: Peer, xandikos: CalDAVServer, mode: str, orphan: bool) -> None:
    """A first comparison's worth of cases: events on both (equal, and one differing), on one
    side only, a series with a moved occurrence, an object that cannot be read, and copies a
    calmesh whose state was lost made earlier (their markers name originals; with ``orphan``,
    one original is gone since)."""
    response = httpx.put(xan.calendar + "bad-dates.ics", content=BAD_DATES.encode(),
                         headers={"Content-Type": "text/calendar; charset=utf-8"},
                         auth=(xandikos.username, xandikos.password), timeout=30)
    assert response.status_code in (201, 204)
    for n in range(3):
        rad.create(meeting(f"earlier-{n}@test", hour=8 + n, day=3))
    (tmp_path / "earlier").mkdir()
    Group(tmp_path / "earlier", rad, xan, mode=mode).run()  # its state is lost: only the markers remain
    if orphan:
        rad.delete("earlier-0@test")
    if mode == "mirror":
        for n in range(6):
            rad.create(meeting(f"both-{n}@test", hour=8 + n, day=n % 3))
            xan.create(meeting(f"both-{n}@test", hour=8 + n, day=n % 3))
        rad.create(meeting("differs@test", summary="older"))
        newer = meeting("differs@test", summary="newer")
        xan.create(replace(newer, components=[replace(c, sequence=2) for c in newer.components]))
    for n in range(5):
        rad.create(meeting(f"rad-{n}@test", hour=9 + n, day=1))
    for n in range(4):
        xan.create(meeting(f"xan-{n}@test", hour=10 + n, day=2))
    series = weekly_series("series@test")
    moved = replace(series.components[0], recurrence_id=series.components[0].start + timedelta(days=7),
                    start=series.components[0].start + timedelta(days=7, hours=2),
                    end=(series.components[0].end or series.components[0].start) + timedelta(days=7, hours=2))
    rad.create(replace(series, components=[*series.components, moved]))


def _outcome(group: Group, peers: tuple[Peer, Peer]) -> tuple[Any, ...]:
    """What the group left, with each calendar's name replaced by its peer's: every item on each
    calendar, and every record."""
    stored = group.repo.load_group("g")
    names: list[tuple[str, str]] = []
    for p in peers:
        names += [(_digest(p.key), p.platform), (p.calendar, p.platform), (urlsplit(p.calendar).path, p.platform)]
    names = [(_digest(lid), f"<{lid}>") for lid in stored] + names  # busy placeholders name them by digest

    def plain(text: str | None) -> str:
        out = text or ""
        for name, role in names:
            out = out.replace(name, role)
        return out

    calendars = {p.platform: sorted((plain(i.uid), plain(i.marker), tuple((c.summary, c.start, c.recurrence_id, c.transparent)
                                                                    for c in i.components)) for i in p.items())
                 for p in peers}
    records = sorted((plain(r.logical_id), plain(r.origin), r.content_hash, r.deleted, r.dirty,
                      tuple(sorted((plain(k), plain(c.item_id), plain(c.uid), c.content_hash, c.deleted, c.pending)
                                   for k, c in r.copies.items())))
                     for r in stored.values())
    quarantined = sorted((plain(q.member), plain(q.item_ref), q.reason) for q in group.repo.quarantined("g"))
    return calendars, records, quarantined


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many items each planning of a run saw (every member together)."""
    sizes: list[int] = []
    plan = sync_engine.plan

    def counted(members: Any, state: Any, observations: Any, *args: Any) -> Any:
        sizes.append(sum(len(o.items) for o in observations.values()))
        return plan(members, state, observations, *args)

    monkeypatch.setattr(sync_engine, "plan", counted)
    yield sizes


def _two_ways(tmp_path: Path, radicale: CalDAVServer, xandikos: CalDAVServer, mode: str, orphan: bool,
              planned: list[int]) -> Iterator[tuple[str, Group, tuple[Peer, Peer], SyncReport, list[int]]]:
    for way, engine in (("parts", {"part_size": PART}), ("whole", {"part_size": None})):
        rad = Peer("rad", radicale.connector("rad"), radicale.new_calendar())
        xan = Peer("xan", xandikos.connector("xan"), xandikos.new_calendar())
        (tmp_path / way).mkdir()
        _fill(tmp_path / way, rad, xan, xandikos, mode, orphan)
        group = Group(tmp_path / way, rad, xan, mode=mode, engine=engine)
        planned.clear()
        report = group.run()
        yield way, group, (rad, xan), report, list(planned)


@pytest.mark.parametrize("mode", ["mirror", "busy"])
def test_a_first_comparison_in_parts_ends_as_the_whole_one(tmp_path: Path, radicale: CalDAVServer,
                                                           xandikos: CalDAVServer, planned: list[int],
                                                           mode: str) -> None:
    """No part is planned with more than its few items (a group of linked items aside), and the
    outcome is the whole comparison's: pairs by UID, the newer of two versions, copies of what
    is on one side, the earlier calmesh's copies recognised by their markers, not copied again."""
    outcomes = {}
    for way, group, peers, report, sizes in _two_ways(tmp_path, radicale, xandikos, mode, False, planned):
        assert report.status == "ok" and not report.errors, report.errors
        if way == "parts":
            assert len(sizes) > 3 and max(sizes) <= PART + 2, sizes  # a pair or a series may overrun a part
        else:
            assert len(sizes) == 1
        first = _outcome(group, peers), report.counts["created"], report.counts["updated"]
        again = group.run()
        assert (again.status, again.plan.writes) == ("ok", []), again.plan.writes
        rad, xan = peers  # the tokens the parts kept see what changes next
        xan.edit("xan-1@test", bump(summary="edited on Xandikos"))
        rad.delete("rad-2@test")
        later = group.run()
        assert (later.status, later.counts["deleted"]) == ("ok", 1), later.errors
        assert group.run().plan.writes == []
        outcomes[way] = first, _outcome(group, peers)
    assert outcomes["parts"] == outcomes["whole"]
    calendars, _records, quarantined = outcomes["parts"][0][0]
    assert len(calendars["rad"]) == len(calendars["xan"])
    [(_member, ref, _why)] = quarantined
    assert ref.endswith("bad-dates.ics")


def test_a_part_that_would_delete_is_compared_whole(tmp_path: Path, radicale: CalDAVServer, xandikos: CalDAVServer,
                                                    planned: list[int], caplog: pytest.LogCaptureFixture) -> None:
    """An earlier calmesh's copy whose original is gone is deleted on the original's account,
    which the bulk-delete guard weighs against whole calendars: the comparison stops making parts
    and goes on whole, from what the parts before recorded, and ends as the whole one does."""
    caplog.set_level(logging.INFO, logger="calmesh.services.sync")
    outcomes = {}
    for way, group, peers, report, sizes in _two_ways(tmp_path, radicale, xandikos, "mirror", True, planned):
        assert report.status == "ok" and not report.errors, report.errors
        assert report.counts["deleted"] == 1
        if way == "parts":  # parts, then the rest whole: the items the parts did not record
            assert max(sizes[:-1]) <= PART + 2 and len(sizes) > 1, sizes
            assert "a part of the first comparison needs the whole" in caplog.text
        outcomes[way] = _outcome(group, peers)
    assert outcomes["parts"] == outcomes["whole"]


def test_members_that_cannot_list_one_by_one_are_compared_whole(tmp_path: Path, rad: Peer, xan: Peer,
                                                                  planned: list[int],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A platform without a listing that hands items over one by one (the default
    :meth:`Connector.listing`) leaves the first comparison whole, as before."""
    monkeypatch.setattr(type(xan.conn), "listing", lambda self, calendar, take: None)
    rad.create(meeting("a@test"))
    xan.create(meeting("b@test", hour=11))
    report = Group(tmp_path, rad, xan, engine={"part_size": 1}).run()
    assert (report.status, report.counts["created"], planned) == ("ok", 2, [2])


def test_a_group_with_a_vendor_member_lists_its_caldav_members_once(tmp_path: Path, rad: Peer, planned: list[int],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Exchange (the EWS fake on loopback, from Microsoft's documented shapes) cannot hand items
    over one by one: the first comparison is whole, and Radicale is not listed in parts first."""
    from calmesh.connectors.caldav import CalDAVConnector

    listed: list[str] = []
    listing = CalDAVConnector.listing

    def counted(self: CalDAVConnector, calendar: str, take: Any) -> Any:
        listed.append(calendar)
        return listing(self, calendar, take)

    monkeypatch.setattr(CalDAVConnector, "listing", counted)
    rad.create(meeting("a@test"))
    with vendor_peer("ews", monkeypatch) as ews:
        report = Group(tmp_path, rad, ews, engine={"part_size": 1}).run()
        assert (report.status, report.counts["created"], listed, planned) == ("ok", 1, [], [1]), report.errors
