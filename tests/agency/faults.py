"""Faults the agency test injects between calmesh and a platform: an outage, and a kill.

:class:`Flaky` wraps a real connector and forwards every call to it, unless the platform is
"down" (every call raises :class:`TransientError`, as a server that stopped answering does after
the connector's own timeout) or a kill is armed: the n-th write (put or delete) is made or not,
then :class:`Killed` is raised. ``Killed`` is a ``BaseException`` so no layer of calmesh catches
it, and the sync run stops where it is, without its final commit: an in-process stand-in for a
SIGKILL landing just before or just after a write reached the server (the subprocess kill test is
tests/sync/test_sync_crash.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from calmesh.connectors.base import Capabilities, Connector, FreeBusyRequest, TransientError
from calmesh.model import (
    CalendarInfo,
    CalendarItem,
    ChangeSet,
    Event,
    ItemRef,
    PersonFreeBusy,
    Problem,
    Window,
)

T = TypeVar("T")


class Killed(BaseException):
    """The process running a sync was killed (see the module docstring)."""


@dataclass
class Faults:
    """What is wrong right now, shared by every connector of one agency."""

    down: set[str] = field(default_factory=set)
    """Platforms that do not answer."""
    kill_at: int | None = None
    """Armed kill: the write with this number (1-based, counted from arming) is the last."""
    kill_after_write: bool = True
    """Whether the last write reached the server before the kill."""
    writes: int = 0

    def arm(self, at: int, after_write: bool) -> None:
        self.kill_at, self.kill_after_write, self.writes = at, after_write, 0

    def disarm(self) -> None:
        self.kill_at = None


class Flaky(Connector):
    """A real connector behind :class:`Faults` (see the module docstring)."""

    kind = "flaky"

    def __init__(self, inner: Connector, faults: Faults) -> None:
        super().__init__(inner.name, inner.settings)
        self.inner, self.faults = inner, faults

    @property  # type: ignore[override]
    def capabilities(self) -> Capabilities:  # the wrapped platform's, not the base class's
        return self.inner.capabilities

    @property
    def keeps_uids(self) -> bool:
        return self.inner.keeps_uids

    def _gate(self) -> None:
        if self.name in self.faults.down:
            raise TransientError(self.name, "not answering (taken down by the agency test)")

    def _call(self, fn: Callable[[], T]) -> T:
        self._gate()
        return fn()

    def _write(self, fn: Callable[[], T]) -> T:
        self._gate()
        faults = self.faults
        if faults.kill_at is None:
            return fn()
        faults.writes += 1
        if faults.writes < faults.kill_at:
            return fn()
        faults.disarm()
        if faults.kill_after_write:
            fn()
        raise Killed(f"killed at write {faults.writes} on {self.name} "
                     f"({'after' if faults.kill_after_write else 'before'} it reached the server)")

    def calendars(self) -> list[CalendarInfo]:
        return self._call(self.inner.calendars)

    def events(self, calendar: str, window: Window) -> tuple[list[Event], list[Problem]]:
        return self._call(lambda: self.inner.events(calendar, window))

    def items(self, calendar: str, window: Window | None = None) -> tuple[list[CalendarItem], list[Problem]]:
        return self._call(lambda: self.inner.items(calendar, window))

    def calendars_of(self, email: str) -> list[str]:
        return self._call(lambda: self.inner.calendars_of(email))

    def freebusy(self, people: Sequence[FreeBusyRequest], window: Window) -> list[PersonFreeBusy]:
        return self._call(lambda: self.inner.freebusy(people, window))

    def changes(self, calendar: str, token: str | None) -> ChangeSet:
        return self._call(lambda: self.inner.changes(calendar, token))

    def changes_skipping(self, calendar: str, token: str | None, known: Mapping[str, str]) -> ChangeSet:
        return self._call(lambda: self.inner.changes_skipping(calendar, token, known))

    def fetch(self, calendar: str, ids: Sequence[str]) -> tuple[list[CalendarItem], list[Problem]]:
        return self._call(lambda: self.inner.fetch(calendar, ids))

    def planned_id(self, calendar: str, item: CalendarItem) -> str | None:
        return self.inner.planned_id(calendar, item)

    def deleted_since(self, calendar: str, copies: Mapping[str, str], since: datetime) -> set[str]:
        return self._call(lambda: self.inner.deleted_since(calendar, copies, since))

    def put(self, calendar: str, item: CalendarItem, if_match: str | None = None) -> ItemRef:
        return self._write(lambda: self.inner.put(calendar, item, if_match))

    def delete(self, calendar: str, ref: ItemRef, if_match: str | None = None) -> None:
        self._write(lambda: self.inner.delete(calendar, ref, if_match))

    def check(self) -> list[str]:
        return self._call(self.inner.check)

    def close(self) -> None:
        self.inner.close()
