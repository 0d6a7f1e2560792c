"""Running sync groups on a clock: ``calmesh sync --watch`` and the loop inside ``calmesh serve``.

Each group is due every ``SyncGroupConfig.interval`` seconds, counted from the end of its last
run (a run longer than the interval is followed by a pause, never by a pile-up). A failing run is
logged and retried at the next due time: the loop itself never dies of a group's error, so the
server that hosts it never does either. The clock and the wait are injected so that tests drive
time by hand; the wait is a :class:`threading.Event`'s by default, so :meth:`SyncScheduler.stop`
interrupts a sleeping loop at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from calmesh.config import SyncGroupConfig
from calmesh.services.hub import Hub
from calmesh.services.sync import SyncEngine, SyncReport
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository

log = logging.getLogger(__name__)

RunGroup = Callable[[str, SyncGroupConfig], object]
"""Runs one group once (its return value is ignored; an exception is logged)."""

Chore = tuple[float, Callable[[], object]]
"""Work the loop does beside the groups, every so many seconds: ``(interval, do)``."""

DELIVERY_INTERVAL = 60.0
"""Seconds between two attempts at the meeting copies owed to calendars that were down."""


def hub_engine(hub: Hub) -> SyncEngine:
    """The sync engine of a hub: its connectors and the state store its config names."""
    return SyncEngine(SyncRepository(open_store(hub.config.state_url())), hub.connector,
                      write_workers=hub.config.hub.sync_write_workers)


class SyncScheduler:
    """Runs every group of ``groups`` each ``interval`` seconds until stopped."""

    def __init__(self, groups: Mapping[str, SyncGroupConfig], run: RunGroup, *,
                 clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[float], bool] | None = None,
                 interval: float | None = None, chores: Mapping[str, Chore] | None = None) -> None:
        """``wait(seconds)`` sleeps and returns True when the loop should stop; ``interval``
        overrides every group's own (``calmesh sync --watch --interval``); ``chores`` are done
        on their own intervals, after the groups due."""
        self.groups = dict(groups)
        self.chores = dict(chores or {})
        self._run = run
        self._clock = clock
        self._stopping = threading.Event()
        self._wait = wait or self._stopping.wait
        self._interval = interval
        self._due: dict[str, float] = {}
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called (the loop ends after the run in progress)."""
        return self._stopping.is_set()

    def interval(self, name: str) -> float:
        return self._interval if self._interval is not None else self.groups[name].interval

    def tick(self) -> float:
        """Run the groups that are due (in name order); returns the seconds until the next one."""
        for name in sorted(self.groups):
            if self._stopping.is_set():
                break
            if self._due.setdefault(name, self._clock()) > self._clock():
                continue
            try:
                self._run(name, self.groups[name])
            except Exception:
                log.exception("sync group %s failed; it runs again in %ss", name, self.interval(name))
            self._due[name] = self._clock() + self.interval(name)
        for name, (every, do) in sorted(self.chores.items()):
            if self._stopping.is_set() or self._due.setdefault(f"chore:{name}", self._clock()) > self._clock():
                continue
            try:
                do()
            except Exception:
                log.exception("%s failed; tried again in %ss", name, every)
            self._due[f"chore:{name}"] = self._clock() + every
        return max(0.0, min(self._due.values(), default=self._clock()) - self._clock())

    def run_forever(self) -> None:
        """Tick until :meth:`stop` (or the injected ``wait`` says stop)."""
        while not self._stopping.is_set():
            if self._wait(self.tick()):
                break

    def start(self) -> None:
        """Run the loop in a daemon thread (a hung platform call cannot keep the process alive)."""
        if self._thread is not None:
            raise RuntimeError("scheduler already started")
        self._thread = threading.Thread(target=self.run_forever, name="calmesh-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the run in progress (if any); waits up to ``timeout`` seconds for it."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("sync loop still busy after %ss; leaving it to exit with the process", timeout)
            self._thread = None


def logged_runner(engine: Callable[[], SyncEngine],
                  on_report: Callable[[SyncReport], object] | None = None) -> RunGroup:
    """A :data:`RunGroup` for the server: one line per run in the log. The engine is built on the
    first run, so a state store that cannot be opened is a logged error, not a failed start.
    ``on_report`` sees every finished run (the hub drops cached answers of calendars it changed)."""
    built: list[SyncEngine] = []

    def run(name: str, group: SyncGroupConfig) -> SyncReport:
        if not built:
            built.append(engine())
        report = built[0].run(name, group)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()) if v)
        log.info("sync %s: %s%s", name, report.status, f" ({counts})" if counts else "")
        for error in report.errors:
            log.warning("sync %s: %s", name, error)
        if on_report is not None:
            on_report(report)
        return report

    return run


def owed_deliveries(hub: Hub) -> Chore:
    """The chore that writes the meeting copies owed to calendars that were down
    (:func:`calmesh.services.scheduling.redeliver`), one log line per copy tried."""
    # imported here: `calmesh sync --once` loads this module too, and a cold run pays every import
    from calmesh.services import scheduling

    def deliver() -> None:
        try:
            done = scheduling.redeliver(hub, now=datetime.now(UTC))
        except scheduling.SchedulingError as exc:  # the state store cannot be used: said, not a traceback
            log.warning("owed deliveries: %s", exc)
            return
        for tried in done:
            d = tried.delivery
            if d.method in ("calendar", "email"):
                log.info("delivered meeting %s, owed to %s (%s)", tried.uid, d.email, d.platform or "by email")
            else:
                log.warning("could not yet deliver meeting %s, owed to %s (%s): %s", tried.uid, d.email,
                            d.platform or "by email", d.detail)

    return DELIVERY_INTERVAL, deliver
