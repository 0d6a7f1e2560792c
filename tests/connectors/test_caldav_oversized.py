"""A CalDAV object over 10 MB (an event with inline attachments) is never lost, on real Radicale.

Radicale keeps objects of at most ``max_resource_size`` (10 MB by default). It refuses a larger
PUT, but one already in its storage (written before the limit existed, or by another tool) is
left out of every REPORT (calendar-query, free-busy-query, multiget, sync-collection, which from a
token no longer mentions it at all) and of GET, while PROPFIND still lists it with its size.
Where the limit is raised, the object is served, but its text passes lxml's 10 MB text-node
limit in the streamed listing. In each case calmesh either reads it in full or reports it
unreadable with its href and why: a sync never deletes its copies, free/busy is unknown for the
window, never free.

The 12 MB payload is generated in memory as many short inline ``ATTACH`` lines: one folded
12 MB line costs Radicale minutes to parse, short lines seconds.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from calmesh.cli import app
from calmesh.config import SyncGroupConfig, SyncMember
from calmesh.connectors.base import FreeBusyRequest
from calmesh.connectors.caldav import CalDAVConnector, CalDAVSettings
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.demo.servers import make_calendar, start_radicale
from calmesh.model import BusyType, ProblemCode, Window
from calmesh.services.sync import SyncEngine
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the fixtures

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("caldav-oversized")]

WEEK = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
SIZE = 12_000_000
_ATTACH = "ATTACH;ENCODING=BASE64;VALUE=BINARY:" + base64.b64encode(bytes(range(27))).decode() + "\r\n"


def event(uid: str, day: int, size: int = 0) -> bytes:
    """One event on 2026-11-``day`` 09:00-12:00 UTC, padded with inline attachments to ``size``."""
    attachments = _ATTACH * (size // len(_ATTACH))
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:202611{day:02d}T090000Z\r\n"
            f"DTEND:202611{day:02d}T120000Z\r\nSUMMARY:{uid}\r\n{attachments}END:VEVENT\r\nEND:VCALENDAR\r\n"
            ).encode("ascii")


BIG = event("big@test", 24, SIZE)


class Radicale:
    """A Radicale of this module's own, whose storage the tests write objects into directly (as
    an older Radicale or another tool would have)."""

    def __init__(self, root: Path, server_url: str, server: CalDAVServer) -> None:
        self.root, self.url, self.user = root, server_url, server.username
        self.password, self.password_env = server.password, server.password_env

    def new_calendar(self) -> tuple[str, Path]:
        """A fresh calendar: its URL and its storage folder."""
        slug = f"cal-{uuid.uuid4().hex[:12]}"
        url = make_calendar(f"{self.url}{self.user}/{slug}/", self.user, self.password, name=slug)
        return url, self.root / "collections" / "collection-root" / self.user / slug

    def connector(self, **settings: object) -> CalDAVConnector:
        # the first read of a 12 MB object costs Radicale seconds of parsing on a busy machine
        return CalDAVConnector("dav", CalDAVSettings(kind="caldav", url=self.url, username=self.user,
                                                     password_env=self.password_env, timeout=600.0,
                                                     **settings))  # type: ignore[arg-type]


@contextmanager
def _radicale(tmp_path_factory: pytest.TempPathFactory, server: CalDAVServer, name: str,
              max_resource_size: int | None) -> Iterator[Radicale]:
    root = tmp_path_factory.mktemp(name)
    with start_radicale(root, {server.username: server.password}, max_resource_size=max_resource_size) as running:
        yield Radicale(root, running.url, server)


@pytest.fixture(scope="module")
def withholding(tmp_path_factory: pytest.TempPathFactory, radicale: CalDAVServer) -> Iterator[Radicale]:
    """Radicale with its default limit (10 MB): it withholds a 12 MB object."""
    with _radicale(tmp_path_factory, radicale, "radicale-10mb", None) as server:
        yield server


@pytest.fixture(scope="module")
def withheld(withholding: Radicale) -> str:
    """A calendar on ``withholding`` holding a small event and, in its storage, a 12 MB one."""
    calendar, folder = withholding.new_calendar()
    (folder / "small.ics").write_bytes(event("small@test", 25))
    (folder / "big.ics").write_bytes(BIG)
    return calendar


@pytest.mark.parametrize("sync_collection", [True, False], ids=["sync-collection", "etag-fallback"])
def test_an_object_the_server_withholds_is_not_lost_from_the_listing(withholding: Radicale, withheld: str,
                                                                    sync_collection: bool) -> None:
    with withholding.connector(sync_collection=sync_collection) as connector:
        first = connector.changes(withheld, None)
    assert first.complete and [i.uid for i in first.changed] == ["small@test"]
    [(ref, problem)] = first.unreadable
    assert ref.calendar == withheld and ref.id.endswith("/big.ics") and ref.etag
    assert problem.item == ref.id and problem.platform == "dav" and problem.code == ProblemCode.TOO_LARGE
    assert "does not return it" in problem.message and "over the server's limit of 10.0 MB" in problem.message
    assert "max-resource-size" in problem.message


@pytest.mark.parametrize("source", ["events", "server"])
def test_an_object_the_server_withholds_is_not_shown_free(withholding: Radicale, withheld: str, source: str) -> None:
    """Nothing of the object is known, not even its time: the whole window is unknown, with an
    error naming it, whether free/busy comes from the events or from the server's
    free-busy-query (which leaves it out too)."""
    with withholding.connector(freebusy_source=source) as connector:
        [answer] = connector.freebusy([FreeBusyRequest("alice@example.com", (withheld,))], WEEK)
        events, problems = connector.events(withheld, WEEK)
    assert [e.uid for e in events] == ["small@test"]
    assert [(p.start, p.end, p.type) for p in answer.busy] == [(WEEK.start, WEEK.end, BusyType.UNKNOWN)]
    [error] = answer.errors
    assert error.item and error.item.endswith("/big.ics") and "max-resource-size" in error.message
    assert [p.unknown for p in problems] == [(WEEK.start, WEEK.end)]


def test_an_object_the_server_withholds_fails_the_check(withholding: Radicale, withheld: str, tmp_path: Path) -> None:
    """``calmesh check`` reads a day of each person's time: the person is not read, with an error
    naming the object and why, and the check fails (exit 3)."""
    config = tmp_path / "calmesh.toml"
    config.write_text(f"""
[hub]
timezone = "Europe/Paris"
[platforms.dav]
kind = "caldav"
url = "{withholding.url}"
username = "{withholding.user}"
password_env = "{withholding.password_env}"
calendars = ["{withheld}"]
[[people]]
email = "{withholding.user}"
name = "Alice"
platform = "dav"
""")
    result = CliRunner().invoke(app, ["check", "--format", "json", "-c", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 3, result.output
    [platform] = json.loads(result.output)["platforms"]
    [alice] = platform["people"]
    assert platform["ok"] is False and alice["ok"] is False
    assert "big.ics" in alice["error"] and "over the server's limit of 10.0 MB" in alice["error"]


def test_an_object_the_server_withholds_is_not_deleted_by_sync(withholding: Radicale, tmp_path: Path) -> None:
    """The event is copied while small; it then grows past the server's limit in the server's
    storage: Radicale's change feed no longer mentions it and a full listing leaves it out (the
    full comparison deleted the copy). The copy stays, and the item is reported unreadable
    (quarantined) with why, on a run from the token and on a full one."""
    calendar, folder = withholding.new_calendar()
    (folder / "grows.ics").write_bytes(event("grows@test", 26))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "cal.ics").write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nEND:VCALENDAR\r\n")
    copies = ICSConnector("b", ICSSettings(kind="ics", path=str(tmp_path / "b")))
    repo = SyncRepository(open_store(f"sqlite:///{tmp_path / 'state.sqlite'}"))
    group = SyncGroupConfig(calendars=[SyncMember(platform="dav", calendar=calendar),
                                       SyncMember(platform="b", calendar="cal.ics")])
    with withholding.connector() as dav:
        engine = SyncEngine(repo, {"dav": dav, "b": copies}.__getitem__, retry_sleep=lambda _s: None)
        assert engine.run("g", group).counts["created"] == 1
        assert [i.uid for i in copies.items("cal.ics")[0]] == ["grows@test"]

        (folder / "grows.ics").write_bytes(event("grows@test", 26, SIZE))
        for full in (False, True):
            report = engine.run("g", group, full=full)
            assert report.counts["deleted"] == 0 and report.plan.writes == []
            assert [i.uid for i in copies.items("cal.ics")[0]] == ["grows@test"]
            assert [(member, ref.id.rsplit("/", 1)[-1]) for member, ref, _ in report.unreadable] == \
                [(f"dav/{calendar}", "grows.ics")]
            [entry] = repo.quarantined("g")
            assert entry.reason == "over the server's size limit"  # what anyone may read of it



def test_an_object_over_10_mb_is_read_in_full_where_the_server_serves_it(
        tmp_path_factory: pytest.TempPathFactory, radicale: CalDAVServer) -> None:
    """Radicale with its limit raised serves the object: the first listing, whose inline text
    passes the streamed reader's limits, reads it by listing then fetching, in full. (Xandikos,
    which states no limit, serves it too, but storing and querying 12 MB costs it over a minute.)"""
    with _radicale(tmp_path_factory, radicale, "radicale-64mb", 64_000_000) as server:
        calendar, folder = server.new_calendar()
        (folder / "small.ics").write_bytes(event("small@test", 25))
        (folder / "big.ics").write_bytes(BIG)
        with server.connector() as connector:
            first = connector.changes(calendar, None)
            events, problems = connector.events(calendar, WEEK)
        assert first.complete and not first.unreadable
        assert sorted(i.uid for i in first.changed) == ["big@test", "small@test"]
        big = next(i for i in first.changed if i.uid == "big@test")
        assert sum(line.startswith("ATTACH") for line in big.components[0].unmodelled) == SIZE // len(_ATTACH)
        assert sorted(e.uid for e in events) == ["big@test", "small@test"] and not problems
