"""A working in-memory calendar platform, for exercising sync without a server.

Not a mock: it keeps items with ETags, enforces If-Match like a CalDAV server (412 ->
:class:`PreconditionFailed`), refuses a second object with the same UID in one calendar (CalDAV's
``no-uid-conflict``), keeps a change log behind opaque sync tokens that expire when the log is
compacted (``InvalidTokenError``, like an expired WebDAV sync-token), and can be switched
unreachable (``TransientError``) or made to fail one write (``fail_next``) to simulate outages
and crashes. Stored items are deep-copied in and out so callers cannot alias its state.
"""

from __future__ import annotations

import copy
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

from calmesh.connectors.base import (
    Capabilities,
    Connector,
    ConnectorSettings,
    InvalidDataError,
    InvalidTokenError,
    NotFoundError,
    PreconditionFailed,
    TransientError,
)
from calmesh.model import CalendarInfo, CalendarItem, ChangeSet, Event, ItemRef, Problem, Window


@dataclass
class _Calendar:
    items: dict[str, tuple[CalendarItem, str]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)
    """(sequence number, item id) of every change, oldest first."""
    horizon: int = 0
    """Tokens older than this sequence number are no longer accepted."""


class MemoryConnector(Connector):
    kind = "memory"
    capabilities = Capabilities(read=True, write=True, changes=True)

    def __init__(self, name: str = "mem", calendars: tuple[str, ...] = ("cal",), *,
                 persist_to: Path | None = None) -> None:
        super().__init__(name, ConnectorSettings(kind="memory"))
        self._cals = {c: _Calendar() for c in calendars}
        self._seq = 0
        self.reachable = True
        self.fail_next: type[Exception] | None = None
        self.row_ids = False
        """Give new items ids as SQLite gives rowids (the highest plus one), so a deleted last
        item's id is given again, as an in-house table's may be."""
        self.writes = 0
        self.persist_to = persist_to
        self.broken: set[str] = set()
        """When set, every change is written through to this file (atomically), so the platform
        outlives a process killed mid-sync, like a real server does."""

    def _persist(self) -> None:
        if self.persist_to is not None:
            tmp = self.persist_to.with_suffix(".tmp")
            tmp.write_bytes(pickle.dumps((self._cals, self._seq)))
            os.replace(tmp, self.persist_to)

    @classmethod
    def load(cls, name: str, path: Path) -> MemoryConnector:
        conn = cls(name, persist_to=path)
        conn._cals, conn._seq = pickle.loads(path.read_bytes())
        return conn

    # ---- helpers for tests
    def _tick(self) -> int:
        self._seq += 1
        return self._seq

    def _cal(self, calendar: str) -> _Calendar:
        if not self.reachable:
            raise TransientError(self.name, "unreachable (simulated outage)")
        if calendar not in self._cals:
            raise NotFoundError(self.name, f"no calendar {calendar!r}")
        return self._cals[calendar]

    def _out(self, calendar: str, item_id: str) -> CalendarItem:
        item, etag = self._cals[calendar].items[item_id]
        out = copy.deepcopy(item)
        out.ref = ItemRef(calendar, item_id, etag)
        return out

    def corrupt(self, uid: str, calendar: str = "cal") -> None:
        """Make an item unreadable (as a server serving a broken object would): it is reported
        in ``ChangeSet.unreadable`` instead of ``changed`` until it is written again."""
        item_id = next(i for i, (s, _) in self._cals[calendar].items.items() if s.uid == uid)
        self.broken.add(item_id)
        self._cals[calendar].log.append((self._tick(), item_id))

    def _readable(self, calendar: str, ids: list[str]) -> tuple[list[CalendarItem], list[tuple[ItemRef, Problem]]]:
        good = [self._out(calendar, i) for i in ids if i not in self.broken]
        bad = [(ItemRef(calendar, i, self._cals[calendar].items[i][1]), Problem(self.name, "unparseable object", i))
               for i in ids if i in self.broken]
        return good, bad

    def compact(self, calendar: str = "cal") -> None:
        """Forget the change log: every earlier token becomes invalid."""
        self._cals[calendar].horizon = self._seq
        self._cals[calendar].log.clear()

    def all(self, calendar: str = "cal") -> list[CalendarItem]:
        """Every stored item (ignores reachability: the test's view of the truth)."""
        return [self._out(calendar, i) for i in sorted(self._cals[calendar].items)]

    # ---- Connector
    def calendars(self) -> list[CalendarInfo]:
        self._cal(next(iter(self._cals)))
        return [CalendarInfo(id=c, name=c, platform=self.name) for c in self._cals]

    def events(self, calendar: str, window: Window) -> tuple[list[Event], list[Problem]]:
        cal = self._cal(calendar)
        return [copy.deepcopy(e) for item, _ in cal.items.values() for e in item.components], []

    def items(self, calendar: str, window: Window | None = None) -> tuple[list[CalendarItem], list[Problem]]:
        cal = self._cal(calendar)
        return [self._out(calendar, i) for i in sorted(cal.items)], []

    def changes(self, calendar: str, token: str | None) -> ChangeSet:
        cal = self._cal(calendar)
        now = str(self._seq)
        if token is None:
            changed, unreadable = self._readable(calendar, sorted(cal.items))
            return ChangeSet(changed, [], now, complete=True, unreadable=unreadable)
        since = int(token)
        if since < cal.horizon:
            raise InvalidTokenError(self.name, f"sync token {token} expired")
        touched = sorted({item_id for seq, item_id in cal.log if seq > since})
        changed, unreadable = self._readable(calendar, [i for i in touched if i in cal.items])
        deleted = [ItemRef(calendar, i) for i in touched if i not in cal.items]
        return ChangeSet(changed, deleted, now, unreadable=unreadable)

    def _maybe_fail(self) -> None:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc(self.name, "simulated failure")

    def put(self, calendar: str, item: CalendarItem, if_match: str | None = None) -> ItemRef:
        cal = self._cal(calendar)
        self._maybe_fail()
        if item.ref is None:
            if any(stored.uid == item.uid for stored, _ in cal.items.values()):
                raise InvalidDataError(self.name, "no-uid-conflict: UID already in calendar", item=item.uid)
            item_id = (str(max((int(i) for i in cal.items if i.isdigit()), default=0) + 1) if self.row_ids
                       else f"{item.uid}-{self._seq + 1}.ics")
        else:
            item_id = item.ref.id
            if item_id not in cal.items:
                raise NotFoundError(self.name, "no such item", item=item_id)
            if if_match is not None and cal.items[item_id][1] != if_match:
                raise PreconditionFailed(self.name, "ETag mismatch", item=item_id)
        self.broken.discard(item_id)
        self.writes += 1
        return ItemRef(calendar, item_id, self._store(cal, item_id, item))

    def _store(self, cal: _Calendar, item_id: str, item: CalendarItem) -> str:
        """Keep ``item`` at ``item_id`` with a new ETag (returned), logged as a change."""
        seq = self._tick()
        stored = copy.deepcopy(item)
        stored.ref = None
        cal.items[item_id] = (stored, f'"e{seq}"')
        cal.log.append((seq, item_id))
        self._persist()
        return f'"e{seq}"'

    def delete(self, calendar: str, ref: ItemRef, if_match: str | None = None) -> None:
        cal = self._cal(calendar)
        self._maybe_fail()
        if ref.id not in cal.items:
            raise NotFoundError(self.name, "no such item", item=ref.id)
        if if_match is not None and cal.items[ref.id][1] != if_match:
            raise PreconditionFailed(self.name, "ETag mismatch", item=ref.id)
        del cal.items[ref.id]
        cal.log.append((self._tick(), ref.id))
        self.writes += 1
        self._persist()

    # ---- user edits (what a person does in their calendar app)
    def user_put(self, item: CalendarItem, calendar: str = "cal") -> ItemRef:
        existing = next((i for i, (s, _) in self._cals[calendar].items.items() if s.uid == item.uid), None)
        if existing is not None:
            item = copy.deepcopy(item)
            item.ref = ItemRef(calendar, existing)
        was, pending = self.reachable, self.fail_next
        self.reachable, self.fail_next = True, None
        try:
            return self.put(calendar, item)
        finally:
            self.reachable, self.fail_next = was, pending
            self.writes -= 1

    def user_restore(self, item: CalendarItem, calendar: str = "cal") -> None:
        """Take ``item`` back out of the trash (Nextcloud's trash bin, iCloud's Recently
        Deleted): the object returns at the id it had (``item.ref``), as it was."""
        assert item.ref is not None and item.ref.id not in self._cals[calendar].items
        self._store(self._cal(calendar), item.ref.id, item)

    def user_delete(self, uid: str, calendar: str = "cal") -> None:
        item_id = next(i for i, (s, _) in self._cals[calendar].items.items() if s.uid == uid)
        was, pending = self.reachable, self.fail_next
        self.reachable, self.fail_next = True, None
        try:
            self.delete(calendar, ItemRef(calendar, item_id))
        finally:
            self.reachable, self.fail_next = was, pending
            self.writes -= 1
