"""How each platform answered the last time calmesh asked it: what ``/healthz`` reports.

Recorded from the free/busy fan-outs the server makes anyway (no probe traffic of its own), so
"degraded" means a platform failed the last real question put to it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from calmesh.model import PersonFreeBusy
from calmesh.services.public_errors import is_platform_failure


@dataclass(frozen=True, slots=True)
class Check:
    """How a platform answered the last time it was asked."""

    at: datetime
    error: str | None = None
    """The technical cause of its failure (for monitoring only), None when it answered."""


class PlatformHealth:
    """The last answer of each platform to a free/busy fan-out (thread-safe: fan-outs run on
    worker threads). A platform never asked yet counts as up. ``changed(platform, check)`` is
    called when a platform starts failing, fails differently or answers again (the server keeps
    those in the state store for ``calmesh status``)."""

    def __init__(self, changed: Callable[[str, Check], None] | None = None) -> None:
        self._checks: dict[str, Check] = {}
        self._lock = threading.Lock()
        self._changed = changed

    def record(self, asked: Iterable[str], answers: Iterable[PersonFreeBusy]) -> None:
        failed: dict[str, str] = {}
        for answer in answers:
            for error in answer.errors:
                if is_platform_failure(error) and error.item is None:  # not one missing mailbox
                    failed.setdefault(error.platform, str(error))
        now = datetime.now(UTC)
        changes: list[tuple[str, Check]] = []
        with self._lock:
            for platform in asked:
                check = Check(now, failed.get(platform))
                before = self._checks.get(platform)
                if check.error != (before.error if before else None):
                    changes.append((platform, check))
                self._checks[platform] = check
        if self._changed is not None:
            for platform, check in changes:
                self._changed(platform, check)

    def checks(self) -> dict[str, Check]:
        with self._lock:
            return dict(self._checks)

    @property
    def degraded(self) -> bool:
        return any(c.error is not None for c in self.checks().values())
