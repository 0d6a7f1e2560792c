"""Child process for the SIGKILL test: sync once, and kill itself with SIGKILL right after
its N-th write to a platform (platform files and the state file outlive it).

Usage: python -m sync.kill_child STATE_URL DIR N PLATFORM...
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from calmesh.config import SyncGroupConfig, SyncMember
from calmesh.services.sync import SyncEngine
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository

from .memory_connector import MemoryConnector


def main(url: str, folder: str, kill_after: str, *names: str) -> None:
    platforms = {n: MemoryConnector.load(n, Path(folder) / f"{n}.pickle") for n in names}
    budget = int(kill_after)
    for conn in platforms.values():
        for method in ("put", "delete"):
            real = getattr(conn, method)

            def counted(*args: object, _real=real) -> object:  # type: ignore[no-untyped-def]
                nonlocal budget
                result = _real(*args)
                budget -= 1
                if budget == 0:
                    os.kill(os.getpid(), signal.SIGKILL)
                return result

            setattr(conn, method, counted)
    group = SyncGroupConfig(calendars=[SyncMember(platform=n, calendar="cal") for n in names])
    SyncEngine(SyncRepository(open_store(url)), platforms.__getitem__).run("g", group)


if __name__ == "__main__":
    main(*sys.argv[1:])
