"""Platforms failing as the server last saw them, for ``calmesh status``.

Answers at the server's doors name a failing platform in plain words only; its technical cause
(URL, address, exception) is logged and kept here while the failure lasts, so the operator can read
it with ``calmesh status`` without searching the server's log. Written only when a platform's
state changes, so a healthy hub never writes here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from calmesh.store.models import PlatformCheck
from calmesh.store.repository import _aware


class PlatformChecks:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def save(self, platform: str, at: datetime, error: str | None) -> None:
        """Record ``platform``'s failure (``error``), or clear it when it answered again (None)."""
        with self._sessions.begin() as session:
            if error is None:
                session.execute(delete(PlatformCheck).where(PlatformCheck.platform == platform))
            else:
                session.merge(PlatformCheck(platform=platform, checked_at=at, error=error))

    def failing(self) -> dict[str, tuple[datetime, str]]:
        """Each failing platform: when the server last saw it fail, and why."""
        with self._sessions() as session:
            rows = session.scalars(select(PlatformCheck).order_by(PlatformCheck.platform))
            return {c.platform: (_aware(c.checked_at) or c.checked_at, c.error) for c in rows}
