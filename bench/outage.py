"""Benchmark: what a run costs while one member of the group is down (issue 16).

"Sync at the cost of what changed" must hold when a platform is down for hours too: every run
meanwhile still reads the members that are up. Two calendars on real CalDAV servers started on
127.0.0.1 (``--server``: Radicale, or Xandikos), A seeded with ``--events`` events and B with the
same objects; a SyncEngine with a SQLite state store, in this process, pairs them. Then
``--edited`` events are edited on A, and B goes down as the run writes them (its connector fails
every call from its first write on, as a refused connection does): those edits are left
half-written, their records dirty. Timed, the same engine, B still down:

- ``outage run``: a run with one more edit on A before it (median of ``--rounds``), with the
  items it read and whether any member was listed in full;
- ``A's change feed alone``: A's connector asked for its changes since the stored token, the
  server's own share of any run that reads A (Radicale reads every object's cache entry to
  answer it, Xandikos does not);
- ``A listed in full``, the anchor: A's connector asked for every object of A
  (``changes(calendar, None)``), what each outage run did on top of the above while a dirty
  record had every other member listed in full, every object read (before this bench's change);
- ``full comparison``: a run with ``full=True``, B still down (A's ETags listed, only the objects
  changed since the last run read);
- ``quiet run``: a run with B up again and nothing changed since the last (the group at rest:
  each server asked for its CTag, nothing loaded or planned).

Run: ``.venv/bin/python bench/outage.py`` (``--events N``, ``--edited N``, ``--rounds N``,
``--server radicale|xandikos``).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sync_vs_vdirsyncer import (
    PASSWORD,
    PASSWORD_ENV,
    USER,
    apply_edits,
    edited,
    generate,
    set_server,
    start_pair,
)

from calmesh.config import SyncGroupConfig, SyncMember
from calmesh.connectors.caldav import CalDAVConnector, CalDAVSettings
from calmesh.fakes.outage import GoesDown
from calmesh.services.sync import SyncEngine, SyncReport
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository


def timed(run: Callable[[], SyncReport]) -> tuple[float, SyncReport]:
    began = time.perf_counter()
    report = run()
    return time.perf_counter() - began, report


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--edited", type=int, default=5, help="edits left half-written when B goes down")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--server", choices=("radicale", "xandikos"), default="radicale")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    set_server(args.server)
    os.environ.setdefault(PASSWORD_ENV, PASSWORD)
    items = generate(args.events, args.seed)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="calmesh-outage-") as tmp:
        pair = start_pair(Path(tmp), items, prefill=True)
        try:
            url_a, url_b = pair.urls
            b = GoesDown(CalDAVConnector("b", CalDAVSettings(kind="caldav", url=url_b, username=USER,
                                                            password_env=PASSWORD_ENV, timeout=600.0)))
            connectors: dict[str, Any] = {
                "a": CalDAVConnector("a", CalDAVSettings(kind="caldav", url=url_a, username=USER,
                                                         password_env=PASSWORD_ENV, timeout=600.0)),
                "b": b}
            group = SyncGroupConfig(calendars=[SyncMember(platform="a", calendar=url_a),
                                               SyncMember(platform="b", calendar=url_b)], conflict="a")
            engine = SyncEngine(SyncRepository(open_store(f"sqlite:///{Path(tmp) / 'state.sqlite'}")),
                                connectors.__getitem__, retry_sleep=lambda _s: None)
            for _ in range(3):  # pair, then the runs that settle it
                engine.run("bench", group)
            print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; {args.server}; "
                  f"{args.events} events on A and B", flush=True)
            apply_edits(pair.client, url_a, rng.sample(items, args.edited))
            failed = engine.run("bench", group)
            dirty = engine.repo.counts("bench")["dirty"]
            print(f"B went down at its first write: {failed.counts['failed']} write(s) failed, {dirty} record(s) "
                  "dirty", flush=True)
            outage: list[float] = []
            for n in range(args.rounds):
                apply_edits(pair.client, url_a, [edited(rng.choice(items))])
                seconds, report = timed(lambda: engine.run("bench", group))
                outage.append(seconds)
                print(f"  outage run {n + 1}: {seconds:.3f}s, {len(report.read)} item(s) read, listed in full: "
                      f"{sorted(report.full) or 'none'}", flush=True)
            token = engine.repo.tokens("bench")[f"a/{url_a}"].token
            began = time.perf_counter()
            connectors["a"].changes(url_a, token)
            feed = time.perf_counter() - began
            print(f"  A's change feed alone, from the stored token: {feed:.3f}s", flush=True)
            began = time.perf_counter()
            listed = len(connectors["a"].changes(url_a, None).changed)
            listing = time.perf_counter() - began
            print(f"  A listed in full: {listing:.3f}s, {listed} item(s) read", flush=True)
            full, report = timed(lambda: engine.run("bench", group, full=True))
            print(f"  full comparison, B down: {full:.3f}s, {len(report.read)} item(s) read", flush=True)
            b.down = False
            engine.run("bench", group)
            engine.run("bench", group)
            quiet, _ = timed(lambda: engine.run("bench", group))
        finally:
            pair.close()
    median = statistics.median(outage)
    print(f"\nA's change feed alone (the server's floor): {feed:.3f}s; "
          f"outage run (median of {args.rounds}): {median:.3f}s; A listed in full (the anchor: what every outage "
          f"run added before): {listing:.3f}s ({listing / median:.1f}x the outage run); full comparison, B down: "
          f"{full:.3f}s; quiet run, B back (a no-op at rest, CTags only): {quiet:.3f}s (the outage run is {median / quiet:.1f}x)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
