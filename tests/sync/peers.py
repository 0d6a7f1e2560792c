"""A sync group over real peers (CalDAV servers, ICS folders, the Exchange fakes) for scenario
tests: each peer is a connector plus one calendar, edited the way a user's client would (read the
object, change it, write it back with If-Match), and the group runs through the real engine and a
SQLite state store in the test's tmp dir."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from calmesh.config import SyncGroupConfig, SyncMember
from calmesh.connectors.base import Connector
from calmesh.model import CalendarItem, Event
from calmesh.services.sync import SyncEngine, SyncReport
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository


@dataclass
class Peer:
    """One member of the group: a platform's connector and the calendar synced on it."""

    platform: str
    conn: Connector
    calendar: str
    direction: str = "both"

    @property
    def key(self) -> str:
        return f"{self.platform}/{self.calendar}"

    def items(self) -> list[CalendarItem]:
        items, _problems = self.conn.items(self.calendar)
        return items

    def by_uid(self) -> dict[str, CalendarItem]:
        found = self.items()
        uids = Counter(i.uid for i in found)
        assert all(n == 1 for n in uids.values()), f"duplicate UIDs on {self.platform}: {uids}"
        return {i.uid: i for i in found}

    def uids(self) -> set[str]:
        return set(self.by_uid())

    def etags(self) -> dict[str, str | None]:
        return {i.uid: i.ref.etag if i.ref else None for i in self.items()}

    def uid_of(self, summary: str) -> str:
        """The UID of the one item titled ``summary`` (Graph assigns its own UIDs to new events)."""
        [uid] = [i.uid for i in self.items() if any(c.summary == summary for c in i.components)]
        return uid

    def titles(self) -> set[str | None]:
        return {self.master(uid).summary for uid in self.uids()}

    def create(self, item: CalendarItem) -> None:
        self.conn.put(self.calendar, item)

    def edit(self, uid: str, change: Callable[[Event], Event], *, only_master: bool = True) -> None:
        """Change the event (master only by default) the way a client does: If-Match on its ETag."""
        item = self.by_uid()[uid]
        components = [change(c) if c.recurrence_id is None or not only_master else c for c in item.components]
        self.put_back(item, components)

    def put_back(self, item: CalendarItem, components: list[Event]) -> None:
        assert item.ref is not None
        self.conn.put(self.calendar, CalendarItem(item.uid, components, item.ref), item.ref.etag)

    def delete(self, uid: str) -> None:
        item = self.by_uid()[uid]
        assert item.ref is not None
        self.conn.delete(self.calendar, item.ref, item.ref.etag)

    def master(self, uid: str) -> Event:
        return next(c for c in self.by_uid()[uid].components if c.recurrence_id is None)


def bump(**fields: Any) -> Callable[[Event], Event]:
    """An edit: set ``fields`` and raise SEQUENCE, as a client does for a significant change."""
    return lambda e: replace(e, sequence=e.sequence + 1, **fields)


class Group:
    """A sync group of ``peers`` run by the real engine; ``options`` go to SyncGroupConfig."""

    def __init__(self, tmp_path: Path, *peers: Peer, write_workers: int = 1,
                 clock: Callable[[], datetime] | None = None, engine: dict[str, Any] | None = None,
                 **options: Any) -> None:
        self.peers = {p.platform: p for p in peers}
        self.config = SyncGroupConfig(calendars=[
            SyncMember(platform=p.platform, calendar=p.calendar, direction=p.direction)  # type: ignore[arg-type]
            for p in peers], **options)
        store = open_store(f"sqlite:///{tmp_path / 'state.sqlite'}")
        self.repo = SyncRepository(store) if clock is None else SyncRepository(store, clock)
        self.engine = SyncEngine(self.repo, self.connector, retry_sleep=lambda _s: None,
                                 write_workers=write_workers, **(engine or {}))
        self.connectors: dict[str, Connector] = {p.platform: p.conn for p in peers}

    def connector(self, platform: str) -> Connector:
        return self.connectors[platform]

    def run(self, **options: Any) -> SyncReport:
        return self.engine.run("g", self.config, **options)

    def settle(self, runs: int = 3) -> SyncReport:
        """Run until a run writes nothing (a conflict may take two runs: resolve, then echo)."""
        for _ in range(runs):
            report = self.run()
            assert not report.errors, report.errors
            if not report.plan.writes:
                return report
        raise AssertionError(f"still writing after {runs} runs: {report.plan.writes}")

    def writes(self, report: SyncReport) -> int:
        return sum(report.counts[k] for k in ("created", "updated", "deleted"))


@contextmanager
def vendor_peer(kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    """A started vendor fake (``ews``, ``graph``, ``google``: tests/connectors/vendors.py) and a
    peer on its test mailbox's calendar, stopped afterwards."""
    from connectors.vendors import ALICE, VENDORS

    vendor = VENDORS[kind](monkeypatch)
    vendor.fake.start()
    try:
        yield Peer(vendor.platform, vendor.connect(), ALICE)
    finally:
        vendor.close()
