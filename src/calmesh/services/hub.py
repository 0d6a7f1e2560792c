"""The running hub: the config, the directory, and one connector per configured platform.

Every door (CLI, server) builds one Hub and asks services for answers; connectors are created
lazily so that a platform nobody asks about is never contacted, and closed together.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from calmesh.config import Config, SecretUnavailable
from calmesh.connectors import registry
from calmesh.connectors.base import AuthenticationError, Connector
from calmesh.directory import Directory

if TYPE_CHECKING:
    from calmesh.store.identities import IdentityRepository

log = logging.getLogger(__name__)


class Hub:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.directory = Directory(config)
        self._connectors: dict[str, Connector] = {}
        self._identities: IdentityRepository | None = None
        self._engine: Any = None
        self._lock = threading.Lock()
        self._meetings: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
        self._change_listeners: list[Callable[[list[str]], None]] = []

    @contextlib.contextmanager
    def changing(self, uid: str, *, wait: float = 30.0) -> Iterator[bool]:
        """Hold meeting ``uid`` for one change: a move made from the web page while the watch
        loop writes a copy owed to that meeting would otherwise write the older version last.
        Within this process by a lock per meeting (dropped when unused), across processes by the
        hold on its record in the state store (:meth:`IdentityRepository.hold`). Yields whether
        it is held; False when another process still changed it after ``wait`` seconds. Other
        meetings are not held up. Without a state store there is no record to keep apart."""
        from calmesh.store.db import StoreError

        with self._lock:
            lock = self._meetings.get(uid)
            if lock is None:
                lock = self._meetings[uid] = threading.Lock()
        if not (lock.acquire(timeout=wait) if wait > 0 else lock.acquire(blocking=False)):
            yield False
            return
        try:
            try:
                identities = self.identities()
            except StoreError:
                yield True
                return
            with identities.hold(uid, wait=wait) as held:
                yield held
        finally:
            lock.release()

    def on_change(self, listener: Callable[[list[str]], None]) -> None:
        """Call ``listener(emails)`` whenever calmesh sees these people's calendars change (the
        server's free/busy cache drops their answers)."""
        self._change_listeners.append(listener)

    def calendars_changed(self, members: Iterable[str]) -> list[str]:
        """A sync run or change feed read or wrote these calendars (``platform/calendar``): tell
        the listeners, and with a shared ``[hub] cache`` drop the people's answers in every
        process (a ``calmesh worker`` has no listener of its own). Returns the people."""
        from calmesh.services.cache import SharedStore, people_holding

        emails = people_holding(self.config, members)
        if not emails:
            return emails
        for listener in list(self._change_listeners):
            listener(emails)
        if not self._change_listeners and self.config.hub.cache:
            try:
                SharedStore(self.config.hub.cache).forget(emails)
            except Exception:  # the sync itself succeeded; say loudly that answers may be stale
                log.exception("shared free/busy cache: could not drop the answers of %s", emails)
        return emails

    def connector(self, platform: str) -> Connector:
        with self._lock:
            if platform not in self._connectors:
                raw: dict[str, Any] = dict(self.config.platforms[platform])
                if self.config.path is not None:
                    raw.setdefault("base_dir", str(self.config.path.parent))
                raw.setdefault("timezone", self.config.hub.timezone)
                try:
                    self._connectors[platform] = registry.create(platform, raw)
                except SecretUnavailable as exc:  # a connector reading its secret when created
                    raise AuthenticationError(platform, exc.detail, setting=exc.setting) from exc
            return self._connectors[platform]

    def identities(self) -> IdentityRepository:
        """The identity record in the state store, opened (and migrated) on first use: only the
        features that book, change or recognise meetings need it."""
        with self._lock:
            if self._identities is None:
                from calmesh.store.db import open_store
                from calmesh.store.identities import IdentityRepository

                sessions = open_store(self.config.state_url())
                self._engine = sessions.kw.get("bind")
                self._identities = IdentityRepository(sessions)
            return self._identities

    @property
    def platforms(self) -> list[str]:
        return list(self.config.platforms)

    def close(self) -> None:
        with self._lock:
            for connector in self._connectors.values():
                connector.close()
            self._connectors.clear()
            if self._engine is not None:
                self._engine.dispose()
            self._engine, self._identities = None, None

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
