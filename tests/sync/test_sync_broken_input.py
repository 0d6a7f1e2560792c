"""Sync of broken real-world iCalendar between two folders of ``.ics`` files (the ICS connector,
real files; issue 13, items 1, 6, 8): an event without UID is copied once under a stable UID, a
rule no platform could be given is quarantined with its reason, and a file that cannot be read
is an error, never an empty calendar whose copies would be deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from calmesh.config import SyncGroupConfig, SyncMember
from calmesh.connectors.base import InvalidDataError
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.services.sync import SyncEngine
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository

CAL = "cal.ics"


def vevent(*lines: str) -> str:
    return "BEGIN:VEVENT\r\n" + "\r\n".join(lines) + "\r\nEND:VEVENT\r\n"


def calendar(*events: str) -> bytes:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + "".join(events) + "END:VCALENDAR\r\n").encode()


FINE = vevent("UID:fine@test", "DTSTART:20261124T090000Z", "DTEND:20261124T100000Z", "SUMMARY:Fine")
NO_UID = vevent("DTSTART:20261125T090000Z", "DTEND:20261125T100000Z", "SUMMARY:From an RFC 2445 export")
FORTNIGHTLY = vevent("UID:bad-rule@test", "DTSTART:20261126T090000Z", "DTEND:20261126T100000Z",
                     "RRULE:FREQ=FORTNIGHTLY", "SUMMARY:Bad rule")


@pytest.fixture
def world(tmp_path: Path) -> tuple[SyncEngine, SyncRepository, dict[str, ICSConnector]]:
    platforms = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        platforms[name] = ICSConnector(name, ICSSettings(kind="ics", path=str(tmp_path / name)))
        (tmp_path / name / CAL).write_bytes(calendar())
    repo = SyncRepository(open_store(f"sqlite:///{tmp_path / 'state.sqlite'}"))
    return SyncEngine(repo, platforms.__getitem__, retry_sleep=lambda _s: None), repo, platforms


def group() -> SyncGroupConfig:
    return SyncGroupConfig(calendars=[SyncMember(platform=n, calendar=CAL) for n in ("a", "b")])


def uids(connector: ICSConnector) -> set[str]:
    return {i.uid for i in connector.items(CAL)[0]}


def test_event_without_uid_is_copied_once_under_a_stable_uid(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, _repo, platforms = world
    (tmp_path / "a" / CAL).write_bytes(calendar(FINE, NO_UID))
    first = engine.run("g", group())
    assert first.counts["created"] == 2
    derived = uids(platforms["b"]) - {"fine@test"}
    assert len(derived) == 1 and derived.pop().startswith("calmesh-")
    again = engine.run("g", group(), full=True)
    assert again.counts["created"] == 0 and len(uids(platforms["b"])) == 2


def test_a_rule_the_writer_refuses_is_quarantined_with_its_reason(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, repo, platforms = world
    (tmp_path / "a" / CAL).write_bytes(calendar(FINE, FORTNIGHTLY))
    report = engine.run("g", group())
    assert report.counts["created"] == 1 and report.counts["quarantined"] == 1 and report.counts["failed"] == 0
    assert uids(platforms["b"]) == {"fine@test"}
    [entry] = repo.quarantined("g")
    assert entry.uid == "bad-rule@test" and "FREQ=FORTNIGHTLY" in entry.reason


def test_an_unreadable_file_never_deletes_the_copies(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, _repo, platforms = world
    (tmp_path / "a" / CAL).write_bytes(calendar(FINE))
    engine.run("g", group())
    assert uids(platforms["b"]) == {"fine@test"}
    (tmp_path / "a" / CAL).write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidDataError, match="unreadable"):
        platforms["a"].items(CAL)
    report = engine.run("g", group(), confirm_deletes=True)
    assert report.counts["deleted"] == 0 and report.status == "partial"
    assert uids(platforms["b"]) == {"fine@test"}


def test_a_damaged_file_is_no_complete_listing(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The second event is cut off: its absence from the listing is no deletion."""
    _engine, _repo, platforms = world
    (tmp_path / "a" / CAL).write_bytes(calendar(FINE)[:-len("END:VCALENDAR\r\n")] + b"BEGIN:VEVENT\r\nUID:cut")
    changes = platforms["a"].changes(CAL, None)
    assert [i.uid for i in changes.changed] == ["fine@test"] and not changes.complete


def test_copies_written_into_a_file_leave_what_calmesh_cannot_read(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Creating, changing and deleting a copy in a file keeps the file's events calmesh cannot
    read, and whatever else it does not model, byte for byte (regression: the file was written
    from what was read, and they were gone)."""
    engine, _repo, platforms = world
    unread = (vevent("UID:broken@test", "SUMMARY:Dentist", "DTSTART:2026-11-24 nine")
              + "BEGIN:VTODO\r\nUID:todo@test\r\nSUMMARY:Call back\r\nEND:VTODO\r\n").encode()
    (tmp_path / "b" / CAL).write_bytes(calendar()[:-len("END:VCALENDAR\r\n")] + unread + b"END:VCALENDAR\r\n")
    (tmp_path / "a" / CAL).write_bytes(calendar(FINE))
    assert engine.run("g", group()).counts["created"] == 1
    assert unread in (tmp_path / "b" / CAL).read_bytes() and uids(platforms["b"]) == {"fine@test"}
    (tmp_path / "a" / CAL).write_bytes(calendar(FINE.replace("SUMMARY:Fine", "SUMMARY:Finer")))
    assert engine.run("g", group()).counts["updated"] == 1
    assert unread in (tmp_path / "b" / CAL).read_bytes()
    (tmp_path / "a" / CAL).write_bytes(calendar())
    assert engine.run("g", group(), confirm_deletes=True).counts["deleted"] == 1
    assert unread in (tmp_path / "b" / CAL).read_bytes() and uids(platforms["b"]) == set()
