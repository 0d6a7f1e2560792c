"""The bulk-delete guard and the retry budget on real CalDAV servers (Radicale and Xandikos,
started on 127.0.0.1 by tests/conftest.py), through the real engine and a SQLite state store.

Each test replays a way the guard used to be walked around: an emptied calendar whose hold was
forgotten once its change token moved on, a listing that silently left out a fifth of a calendar,
a calendar eroded a little on every run, and a hanging server that cost a run 16 timeouts."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from calmesh.connectors.base import RetryPolicy
from calmesh.connectors.caldav import CalDAVConnector
from calmesh.model import ChangeSet
from calmesh.services.sync import RETRY_FAILURES

from .peers import Group, Peer
from .test_sync_caldav import meeting

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from conftest import CalDAVServer  # tests/conftest.py, which provides the fixtures


@pytest.fixture
def pair(tmp_path: Path, rad: Peer, xan: Peer) -> Group:
    return Group(tmp_path, rad, xan)


def fill(pair: Group, rad: Peer, n: int) -> None:
    for k in range(n):
        rad.create(meeting(f"e{k:02}@test", hour=8 + k % 10, day=k // 10))
    assert pair.run().counts["created"] == n


def held(pair: Group) -> dict[str, str]:
    return {member: info.hold.kind for member, info in pair.repo.holds("g").items()}


def test_an_emptied_calendar_stays_held_until_confirmed(pair: Group, rad: Peer, xan: Peer) -> None:
    """The walk-around of issue 12: the empty full listing was held, but its change token moved
    on, so `--confirm-deletes` and every later run saw "in step, no writes"."""
    fill(pair, rad, 12)
    for uid in list(rad.uids()):
        rad.delete(uid)
    first = pair.run(full=True)
    assert first.counts["deleted"] == 0 and any("listed no items" in n for n in first.notices)
    assert held(pair) == {rad.key: "empty"}
    for _ in range(2):  # later runs, incremental or not, keep it held and say so
        later = pair.run()
        assert later.counts["deleted"] == 0 and any("held until confirmed" in n for n in later.notices)
    assert len(xan.uids()) == 12 and held(pair) == {rad.key: "empty"}
    confirmed = pair.run(confirm_deletes=True)
    assert confirmed.counts["deleted"] == 12 and xan.uids() == set()
    assert held(pair) == {} and pair.run().plan.writes == []


def test_a_dismissed_hold_puts_the_events_back(pair: Group, rad: Peer, xan: Peer) -> None:
    fill(pair, rad, 8)
    for uid in list(rad.uids()):
        rad.delete(uid)
    assert pair.run().counts["deleted"] == 0 and held(pair) == {rad.key: "empty"}
    restored = pair.run(restore_held=True)
    assert restored.counts["created"] == 8 and restored.counts["deleted"] == 0 and held(pair) == {}
    assert rad.uids() == xan.uids() and len(rad.uids()) == 8
    assert pair.run().plan.writes == []


class Forgetful(CalDAVConnector):
    """A CalDAV connector whose full listings silently leave out the objects named in ``hide``
    (a proxy or a server bug dropping part of an answer), while its change feed stays honest."""

    hide: frozenset[str] = frozenset()

    def changes(self, calendar: str, token: str | None) -> ChangeSet:
        return self._forget(super().changes(calendar, token), token)

    def changes_skipping(self, calendar: str, token: str | None, known: Mapping[str, str]) -> ChangeSet:
        return self._forget(super().changes_skipping(calendar, token, known), token)

    def _forget(self, changes: ChangeSet, token: str | None) -> ChangeSet:
        if token is not None:
            return changes
        keep = [i for i in changes.changed if i.uid not in self.hide]
        unchanged = [r for r in changes.unchanged if not any(r.id.endswith(f"/{u}.ics") for u in self.hide)]
        return replace(changes, changed=keep, unchanged=unchanged)


def test_a_listing_that_silently_omits_a_fifth_is_held(pair: Group, rad: Peer, xan: Peer,
                                                       radicale: CalDAVServer) -> None:
    """Four of twenty left out of a full listing (under the 25% share) used to delete four
    originals' copies at once. The change feed never reported them deleted: held."""
    fill(pair, rad, 20)
    real = pair.connectors["rad"]
    forgetful = Forgetful("rad", real.settings)
    forgetful.hide = frozenset(f"e{k:02}@test" for k in range(4))
    pair.connectors["rad"] = forgetful
    suspect = pair.run(full=True)
    assert suspect.counts["deleted"] == 0 and held(pair) == {rad.key: "shrink"}
    assert any("never reported deleted" in n for n in suspect.notices)
    assert len(xan.uids()) == 20
    pair.connectors["rad"] = real  # the listing is whole again: the hold is undone by itself
    whole = pair.run(full=True)
    assert whole.plan.writes == [] and held(pair) == {} and len(xan.uids()) == 20
    for k in range(17, 20):  # deletions the change feed does report are no suspects
        rad.delete(f"e{k:02}@test")
    assert pair.run(full=True).counts["deleted"] == 3 and held(pair) == {}
    assert len(xan.uids()) == 17


def test_deletions_are_judged_across_runs(pair: Group, rad: Peer, xan: Peer) -> None:
    """Two deletions a run never reach the per-run threshold; four within the window do."""
    fill(pair, rad, 12)
    for k in range(2):
        rad.delete(f"e{k:02}@test")
    assert pair.run().counts["deleted"] == 2 and held(pair) == {}
    for k in range(2, 4):
        rad.delete(f"e{k:02}@test")
    second = pair.run()
    assert second.counts["deleted"] == 0 and held(pair) == {rad.key: "budget"}
    assert any("2 deleted in recent runs" in n for n in second.notices)
    assert pair.run().counts["deleted"] == 0 and len(xan.uids()) == 10
    assert pair.run(confirm_deletes=True).counts["deleted"] == 2 and held(pair) == {}
    assert xan.uids() == rad.uids()
    for k in range(4, 6):  # a confirmation starts the budget afresh
        rad.delete(f"e{k:02}@test")
    assert pair.run().counts["deleted"] == 2 and held(pair) == {} and len(xan.uids()) == 6


class Silent:
    """A TCP server on 127.0.0.1 that accepts connections and never answers (a hung server).
    It stops by itself after ``lifetime`` seconds at the latest."""

    def __init__(self, lifetime: float = 120.0) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._serve, name="silent-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/dav/"

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                self.accepted.append(self.sock.accept()[0])
            except TimeoutError:
                continue

    def close(self) -> int:
        """Stop; the number of connections made to it (those still queued included)."""
        if self._stop.is_set():
            return len(self.accepted)
        self._stop.set()
        self._thread.join()
        self.sock.setblocking(False)
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except BlockingIOError:
                break
        for conn in self.accepted:
            conn.close()
        self.sock.close()
        return len(self.accepted)


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.close()


def test_a_hanging_server_costs_one_retry_budget(tmp_path: Path, rad: Peer, silent: Silent,
                                                  radicale: CalDAVServer) -> None:
    """Retries inside retries (the engine's around the connector's) made 16 attempts of one
    timeout each; the run's budget allows RETRY_FAILURES attempts on the platform in all, then
    reports it unreachable. Attempts are counted as connections: no timing assert."""
    hung = radicale.connector("hung", url=silent.url, timeout=0.5)
    hung.retry, hung.sleep = RetryPolicy(), lambda _s: None  # the connector's own default attempts
    group = Group(tmp_path, rad, Peer("hung", hung, silent.url + "cal/"))
    rad.create(meeting("kept@test"))
    report = group.run()
    assert report.status == "partial" and report.plan.writes == []
    assert any("hung/" in e and "gave up for this run" in e for e in report.errors), report.errors
    assert any("hung/" in n and "unreachable" in n for n in report.notices)
    assert silent.close() == RETRY_FAILURES
