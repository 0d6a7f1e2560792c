"""A platform that goes down as calmesh writes to it, for the outage tests and bench/outage.py.

A real server cannot be stopped mid-run from a test that shares it with others (the suite's
Radicale and Xandikos serve every test), so the outage is played at the connector: its first
write, and every call after it, fail as a refused connection does (``TransientError``, what the
CalDAV connector raises then), until :attr:`GoesDown.down` is set back to False.
"""

from __future__ import annotations

from typing import Any

from calmesh.connectors.base import Connector, TransientError


class GoesDown:
    """``conn``, down from its first write (``put`` or ``delete``) on."""

    def __init__(self, conn: Connector) -> None:
        self._conn, self.down, self._armed = conn, False, True

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._conn, name)
        if not callable(attr) or name.startswith("_") or name in ("planned_id", "fit"):
            return attr  # what a client knows without asking the server

        def call(*args: Any, **kwargs: Any) -> Any:
            if name in ("put", "delete") and self._armed:
                self.down, self._armed = True, False
            if self.down:
                raise TransientError(self._conn.name, "connection refused (the server is down)")
            return attr(*args, **kwargs)
        return call
