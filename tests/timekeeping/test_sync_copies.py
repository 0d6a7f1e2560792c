"""Round trips through a real sync between Xandikos and Radicale (both started on 127.0.0.1 by
tests/conftest.py): the calendar as a client stored it on one server, the copy calmesh writes on
the other, and the occurrences of both in UTC, as calmesh reads them and as Radicale itself
answers a free-busy-query. The expected instants are computed here with zoneinfo and dateutil."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx
import pytest
from dateutil.rrule import MONTHLY, WEEKLY, rrule

from calmesh import ical
from calmesh.fakes.samples import single
from calmesh.model import Window
from sync.peers import Group, Peer, bump

from .zone_calendars import (
    INSTANCE_ACROSS_DST,
    OFFICE365_WARSAW,
    PERIOD_RDATES,
    SYDNEY_OLD_RULES,
    SYDNEY_SERIES_FROM_2001,
    THIS_AND_FUTURE,
    US_EASTERN,
    WITH_ALARM,
    customized,
)

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

PARIS = ZoneInfo("Europe/Paris")
ALWAYS = Window(datetime(2000, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))
Span = tuple[datetime, datetime]


def put_raw(server: CalDAVServer, peer: Peer, name: str, text: str) -> None:
    """Store ``text`` byte for byte, as the client that wrote it would."""
    response = httpx.put(peer.calendar + name, content=text.encode(), timeout=30,
                         headers={"Content-Type": "text/calendar; charset=utf-8"},
                         auth=(server.username, server.password))
    assert response.status_code in (201, 204), response.text


def stored(server: CalDAVServer, peer: Peer) -> bytes:
    """The one object of ``peer``'s calendar, as the server returns it."""
    [item] = peer.items()
    assert item.ref is not None
    response = httpx.get(peer.calendar + item.ref.id.rsplit("/", 1)[-1], timeout=30,
                         auth=(server.username, server.password))
    response.raise_for_status()
    return response.content


def occurrences(text: bytes | str) -> list[Span]:
    found, problems = ical.expand(text, ALWAYS)
    assert not problems, problems
    return sorted((e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in found)  # type: ignore[union-attr]


def series(freq: int, start: datetime, count: int, length: timedelta) -> list[Span]:
    local = [s.replace(tzinfo=start.tzinfo).astimezone(UTC)
             for s in rrule(freq, dtstart=start.replace(tzinfo=None), count=count)]
    return [(s, s + length) for s in local]


HOUR = timedelta(hours=1)
CASES = {
    "windows-zone": (OFFICE365_WARSAW, series(WEEKLY, datetime(2025, 1, 7, 9, tzinfo=ZoneInfo("Europe/Warsaw")),
                                              50, HOUR)),
    "customized-zone": (customized("ny@test", US_EASTERN),
                        series(WEEKLY, datetime(2025, 1, 15, 10, tzinfo=ZoneInfo("America/New_York")), 30, HOUR)),
    "carried-definition": (SYDNEY_OLD_RULES, None),
    "this-and-future": (THIS_AND_FUTURE, series(WEEKLY, datetime(2025, 3, 3, 10, tzinfo=PARIS), 2, HOUR)
                        + series(WEEKLY, datetime(2025, 3, 17, 15, tzinfo=PARIS), 6, HOUR)),
    "instance-across-dst": (INSTANCE_ACROSS_DST,
                            series(WEEKLY, datetime(2025, 3, 23, 0, 30, tzinfo=PARIS), 3, 3 * HOUR)),
    "period-rdate": (PERIOD_RDATES, None),
    "alarm": (WITH_ALARM, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_copy_through_a_real_sync_has_the_same_occurrences(case: str, tmp_path: Path, rad: Peer, xan: Peer,
                                                            radicale: CalDAVServer, xandikos: CalDAVServer) -> None:
    """Stored on Xandikos by a client, copied to Radicale by calmesh, read back: the same
    instants (also where the source says them in a zone no IANA zone matches), and a second run
    writes nothing (the copy hashes like its source)."""
    text, expected = CASES[case]
    put_raw(xandikos, xan, "source.ics", text)
    group = Group(tmp_path, xan, rad)
    report = group.run()
    assert (report.status, report.counts["created"]) == ("ok", 1), report.errors
    copy = stored(radicale, rad)
    assert occurrences(copy) == occurrences(stored(xandikos, xan))
    if expected is not None:
        assert occurrences(copy) == expected
    if case == "alarm":
        assert b"BEGIN:VALARM" in copy and b"TRIGGER:-PT15M" in copy
    assert group.writes(group.run()) == 0


def radicale_busy(server: CalDAVServer, peer: Peer, window: Window) -> list[Span]:
    """Radicale's own answer to a free-busy-query (RFC 4791 7.10) on ``peer``'s calendar."""
    stamp = "%Y%m%dT%H%M%SZ"
    body = ('<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f'<C:time-range start="{window.start.strftime(stamp)}" end="{window.end.strftime(stamp)}"/>'
            "</C:free-busy-query>")
    response = httpx.request("REPORT", peer.calendar, content=body.encode(), timeout=30,
                             headers={"Content-Type": "application/xml", "Depth": "1"},
                             auth=(server.username, server.password))
    response.raise_for_status()
    return sorted((p.start, p.end) for p in ical.parse_vfreebusy(response.text))


def test_radicale_reads_calmesh_vtimezones_of_zones_whose_rules_changed(tmp_path: Path, xan: Peer,
                                                                        own_radicale: CalDAVServer,
                                                                        xandikos: CalDAVServer) -> None:
    """A monthly Sydney series from 2001, copied to Radicale: calmesh's VTIMEZONE lists each of
    Sydney's changes before 2008 as its own observance, so Radicale's own free/busy has every
    instance at its instant (with an RDATE list it kept only the first change: an hour off).
    Radicale keeps the first VTIMEZONE it reads for a TZID while it runs, so one of this year's
    Sydney events goes first (on a server of the test's own): calmesh writes one definition per
    zone whatever the events' years."""
    radicale = own_radicale
    rad = Peer("rad", radicale.connector("rad"), radicale.new_calendar())
    recent = datetime(2026, 3, 2, 9, tzinfo=ZoneInfo("Australia/Sydney"))
    rad.conn.put(radicale.new_calendar(), single("sydney-recent@test", recent, recent + HOUR))
    put_raw(xandikos, xan, "sydney.ics", SYDNEY_SERIES_FROM_2001)
    assert Group(tmp_path, xan, rad).run().counts["created"] == 1
    copy = stored(radicale, rad)
    assert b"RDATE" not in copy
    expected = series(MONTHLY, datetime(2001, 1, 5, 9, tzinfo=ZoneInfo("Australia/Sydney")), 120, HOUR)
    assert occurrences(copy) == expected
    window = Window(datetime(2001, 1, 1, tzinfo=UTC), datetime(2011, 1, 1, tzinfo=UTC))
    assert radicale_busy(radicale, rad, window) == expected


def test_an_edit_of_the_copy_comes_back_with_the_original_zone_and_instants(
        tmp_path: Path, rad: Peer, xan: Peer, radicale: CalDAVServer, xandikos: CalDAVServer) -> None:
    """The round trip: Outlook's export stored on Radicale under a zone no IANA zone matches,
    copied to Xandikos, renamed there by a client, and synced back: the original on Radicale keeps
    its instants, and its definition under its own name."""
    put_raw(radicale, rad, "outlook.ics", SYDNEY_OLD_RULES)
    before = occurrences(stored(radicale, rad))
    group = Group(tmp_path, rad, xan)
    assert group.run().counts["created"] == 1
    xan.edit("sydney-2001@test", bump(summary="renamed on Xandikos"))
    assert group.run().counts["updated"] == 1
    back = stored(radicale, rad)
    assert b"renamed on Xandikos" in back and b"TZID:Customized Sydney" in back
    assert occurrences(back) == occurrences(stored(xandikos, xan)) == before
    assert group.writes(group.run()) == 0
