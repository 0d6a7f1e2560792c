"""Benchmark: what remembered deletions cost a sync run that reads its state (issue 16).

Every run that is not quiet loads its group's whole record (``SyncRepository.load_group``),
deleted events included: before ``keep_deletions``, nothing ever forgot one, so that load grew
with every deletion ever made, not with the calendar. Timed on a SQLite state file of its own:
the load of ``--live`` items (two copies each) beside ``--deleted`` tombstones, the purge a
settled run makes when none is due (what it costs every run), the purge of all of them at once
(the day a large batch of deletions comes of age), and the load again without them (the anchor:
the same calendar with no history).

Run: ``.venv/bin/python bench/tombstones.py`` (``--live N``, ``--deleted N``, ``--rounds N``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from calmesh.core.syncplan import CopyState, ItemState
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository


def records(prefix: str, n: int, *, deleted: bool) -> list[ItemState]:
    """``n`` items of a two-calendar group, each with its copy on both members."""
    return [ItemState(f"a/cal/{prefix}{i}.ics", "a/cal", "h" * 64,
                      {m: CopyState(m, f"{prefix}{i}.ics", f"{prefix}{i}@bench", '"e1"', "h" * 64, deleted=deleted)
                       for m in ("a/cal", "b/cal")}, deleted=deleted)
            for i in range(n)]


def load_ms(repo: SyncRepository, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        repo.load_group("g")
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=int, default=10_000)
    parser.add_argument("--deleted", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="calmesh-tombstones-") as tmp:
        repo = SyncRepository(open_store(f"sqlite:///{Path(tmp) / 'state.sqlite'}"))
        repo.save_records("g", records("live", args.live, deleted=False) + records("gone", args.deleted, deleted=True))
        repo.load_group("g")  # the file in the page cache, as a run's second load
        with_history = load_ms(repo, args.rounds)
        began = time.perf_counter()
        none_due = repo.purge_tombstones("g", timedelta(days=90))
        none_due_ms = (time.perf_counter() - began) * 1000
        began = time.perf_counter()
        forgotten = repo.purge_tombstones("g", timedelta(0))
        forget_ms = (time.perf_counter() - began) * 1000
        without = load_ms(repo, args.rounds)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
          + " ".join(f"{v:.1f}" for v in os.getloadavg()))
    print(f"load_group, {args.live:,} live items beside {args.deleted:,} tombstones: {with_history:7.0f} ms "
          f"(median of {args.rounds})")
    print(f"load_group, the same {args.live:,} live items alone (anchor):       {without:7.0f} ms "
          f"-> {with_history / without:.2f}x")
    print(f"purge when none is due (every settled run): {none_due_ms:.1f} ms ({none_due} forgotten)")
    print(f"purge of all {forgotten:,} at once: {forget_ms:.0f} ms")


if __name__ == "__main__":
    main()
