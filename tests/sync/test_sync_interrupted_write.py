"""A run killed while it creates a copy, on real servers (Radicale and Xandikos on 127.0.0.1).

The kill is made deterministic: the target's connector stores the copy on the server and then
raises a ``BaseException`` that nothing in the engine catches, which is what a SIGKILL between
the server's answer and calmesh's next statement leaves behind (the process-level version, with
real SIGKILLs, is tests/sync/test_sync_crash.py). Then the user deletes (or keeps) that copy and
a new engine runs on the same state store.

Radicale keeps a history of deleted objects, so its sync-collection report from the token taken
before the write lists the copy as deleted: the deletion is the user's and spreads. Xandikos
reports net changes only (created then deleted is no change), so nothing can tell "written, then
deleted" from "never written": calmesh writes the copy again and says so (``UNCONFIRMED``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from calmesh.connectors.base import Connector
from calmesh.core.syncplan import UNCONFIRMED
from calmesh.fakes.samples import PARIS, single
from calmesh.model import CalendarItem, ItemRef

from .peers import Group, Peer

DAY = datetime(2026, 12, 8, 9, tzinfo=PARIS)


class Killed(BaseException):
    """The process died here (a BaseException, so no ``except Exception`` on the way catches it)."""


class DyingConnector:
    """``conn`` that dies at its first create, before (``when="before"``) or after the server
    stored the object; :class:`DyingAtDelete` at its first delete."""

    def __init__(self, conn: Connector, when: str) -> None:
        self._conn, self._when = conn, when

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def put(self, calendar: str, item: CalendarItem, if_match: str | None = None) -> ItemRef:
        if item.ref is None and self._when == "before":
            raise Killed
        ref = self._conn.put(calendar, item, if_match)
        if item.ref is None:
            raise Killed
        return ref


def meetings(peer: Peer, *uids: str) -> None:
    for n, uid in enumerate(uids):
        start = DAY + timedelta(hours=n)
        peer.create(single(uid, start, start + timedelta(minutes=30), f"Meeting {uid}"))


def killed_run(tmp_path: Path, origin: Peer, target: Peer, when: str) -> None:
    """A run of the group (origin, target) that dies at its first create on ``target``."""
    group = Group(tmp_path, origin, target)
    group.connectors[target.platform] = DyingConnector(target.conn, when)  # type: ignore[assignment]
    with pytest.raises(Killed):
        group.run()


def creates(group: Group, reason: str) -> set[str]:
    return {e.uid for e in group.repo.audit_log() if e.action == "create" and e.reason == reason and e.uid}


@pytest.fixture(params=["rad-to-xan", "xan-to-rad"])
def direction(request: pytest.FixtureRequest, rad: Peer, xan: Peer) -> tuple[Peer, Peer]:
    return (rad, xan) if request.param == "rad-to-xan" else (xan, rad)


def test_a_copy_deleted_after_a_kill_mid_create(tmp_path: Path, direction: tuple[Peer, Peer]) -> None:
    """Killed after the server stored the copy; its user deletes it before the next run. Where the
    server keeps deletion history (Radicale) the deletion spreads; where it does not (Xandikos),
    the copy is written again and the run says why, never silently, never losing the original."""
    origin, target = direction
    meetings(origin, "a@test", "b@test", "c@test")
    killed_run(tmp_path, origin, target, "after")
    [stored] = target.uids()  # the one create that landed before the "kill"
    target.delete(stored)
    group = Group(tmp_path, origin, target)
    report = group.run()
    assert not report.errors, report.errors
    group.settle()
    if target.platform == "rad":
        assert stored not in origin.uids() | target.uids()
        assert origin.uids() == target.uids() == {"a@test", "b@test", "c@test"} - {stored}
    else:
        assert creates(group, UNCONFIRMED) == {stored}
        assert origin.uids() == target.uids() == {"a@test", "b@test", "c@test"}


def test_a_copy_stored_before_a_kill_is_adopted_not_written_twice(
        tmp_path: Path, direction: tuple[Peer, Peer]) -> None:
    origin, target = direction
    meetings(origin, "a@test", "b@test")
    killed_run(tmp_path, origin, target, "after")
    [stored] = target.uids()
    etag = target.etags()[stored]
    group = Group(tmp_path, origin, target)
    report = group.run()
    assert report.counts["created"] == 1 and not report.errors
    assert target.etags()[stored] == etag, "the copy that landed was rewritten"
    assert origin.uids() == target.uids() == {"a@test", "b@test"}
    assert not group.run().plan.writes


def test_a_copy_never_sent_is_written_and_the_original_kept(tmp_path: Path, direction: tuple[Peer, Peer]) -> None:
    """Killed before the create reached the server: missing with no deletion on record is "never
    written", whatever the server keeps, so the original stays and the copy is made."""
    origin, target = direction
    meetings(origin, "a@test", "b@test")
    killed_run(tmp_path, origin, target, "before")
    assert target.uids() == set()
    group = Group(tmp_path, origin, target)
    assert not group.run().errors
    assert origin.uids() == target.uids() == {"a@test", "b@test"}
    assert not group.run().plan.writes


def test_the_intent_is_recorded_before_the_write(tmp_path: Path, rad: Peer, xan: Peer) -> None:
    """What the state store holds at the instant of the kill: the new copy pending at the href
    the server will give it, with the token the evidence comes from."""
    meetings(rad, "a@test")
    seen: list[Callable[[], None]] = []

    class Watching(DyingConnector):
        def put(self, calendar: str, item: CalendarItem, if_match: str | None = None) -> ItemRef:
            state = Group(tmp_path, rad, xan).repo.load_group("g")
            [record] = state.values()
            copy = record.copies[xan.key]
            assert record.dirty and copy.pending and copy.evidence and copy.etag is None
            assert copy.item_id == self._conn.planned_id(calendar, item)
            seen.append(lambda: None)
            return super().put(calendar, item, if_match)

    group = Group(tmp_path, rad, xan)
    group.connectors["xan"] = Watching(xan.conn, "after")  # type: ignore[assignment]
    with pytest.raises(Killed):
        group.run()
    assert seen
    [record] = Group(tmp_path, rad, xan).repo.load_group("g").values()
    assert record.copies[xan.key].pending  # the kill came before the write was recorded


class DyingAtDelete(DyingConnector):
    """``conn`` that dies at its first delete, after (``when="after"``) or before the server
    deleted the object (creates go through)."""

    def put(self, calendar: str, item: CalendarItem, if_match: str | None = None) -> ItemRef:
        return self._conn.put(calendar, item, if_match)

    def delete(self, calendar: str, ref: ItemRef, if_match: str | None = None) -> None:
        if self._when == "after":
            self._conn.delete(calendar, ref, if_match)
        raise Killed


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_deletion_killed_half_way_stays_calmeshs(tmp_path: Path, rad: Peer, xan: Peer, xandikos: Any,
                                                   when: str) -> None:
    """Radicale's user deletes an event; the run deleting its copy on Xandikos is killed just
    before or just after the server deleted it, before calmesh recorded it. The next run finishes
    the deletion, and the copy's absence is calmesh's deletion: the copy pushed back at its href
    by an offline client is a stale copy, deleted again, not the event taken back out of a trash
    (which would bring it back everywhere). Before, a kill after the DELETE left the copy's
    absence to be found by the next run, and taken for someone's deletion there."""
    meetings(rad, "gone@test", "kept@test", "third@test")
    Group(tmp_path, rad, xan).settle()
    copy = xan.by_uid()["gone@test"]
    assert copy.ref is not None
    auth = (xandikos.username, xandikos.password)
    stale = httpx.get(xan.calendar.rstrip("/") + "/" + copy.ref.id.rsplit("/", 1)[-1], auth=auth, timeout=30)
    assert stale.status_code == 200
    rad.delete("gone@test")
    group = Group(tmp_path, rad, xan)
    group.connectors["xan"] = DyingAtDelete(xan.conn, when)  # type: ignore[assignment]
    with pytest.raises(Killed):
        group.run()
    assert ("gone@test" in xan.uids()) is (when == "before")
    group = Group(tmp_path, rad, xan)
    group.settle()
    assert rad.uids() == xan.uids() == {"kept@test", "third@test"}
    pushed = httpx.put(xan.calendar.rstrip("/") + "/" + copy.ref.id.rsplit("/", 1)[-1], content=stale.content,
                       auth=auth, timeout=30, headers={"Content-Type": "text/calendar; charset=utf-8"})
    assert pushed.status_code in (201, 204)
    again = group.run()
    assert (again.counts["created"], again.counts["deleted"]) == (0, 1)
    assert rad.uids() == xan.uids() == {"kept@test", "third@test"}


def test_an_event_taken_back_out_of_the_trash_after_a_killed_deletion_lives(
        tmp_path: Path, rad: Peer, xan: Peer, radicale: Any) -> None:
    """Radicale's user deletes an event; the run deleting its copy on Xandikos is killed just
    after the server deleted it, before calmesh recorded it; then the user takes the event back
    out of Radicale's trash (the same object, at its href). The next run writes the copy anew:
    the copy's absence on Xandikos is calmesh's own deletion and names no deletion of its own.
    Before, it was taken for a deletion made on Xandikos, and the restored event was deleted
    (found by the agency soak: test_agency_regressions, restores from the trash)."""
    meetings(rad, "back@test", "kept@test")
    Group(tmp_path, rad, xan).settle()
    original = rad.by_uid()["back@test"]
    assert original.ref is not None
    href = rad.calendar.rstrip("/") + "/" + original.ref.id.rsplit("/", 1)[-1]
    auth = (radicale.username, radicale.password)
    saved = httpx.get(href, auth=auth, timeout=30)
    assert saved.status_code == 200
    rad.delete("back@test")
    group = Group(tmp_path, rad, xan)
    group.connectors["xan"] = DyingAtDelete(xan.conn, "after")  # type: ignore[assignment]
    with pytest.raises(Killed):
        group.run()
    assert "back@test" not in xan.uids()
    restored = httpx.put(href, content=saved.content, auth=auth, timeout=30,
                         headers={"Content-Type": "text/calendar; charset=utf-8"})
    assert restored.status_code in (201, 204)
    group = Group(tmp_path, rad, xan)
    first = group.run()
    assert (first.counts["created"], first.counts["deleted"]) == (1, 0), first.plan.writes
    group.settle()
    assert rad.uids() == xan.uids() == {"back@test", "kept@test"}
