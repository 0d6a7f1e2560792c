"""bench/outage.py still runs: two small Xandikos calendars, B down mid-run, the outage runs and
their anchors printed. Timings are not checked (they belong to the bench); that no outage run
lists A in full is (tests/sync/test_sync_caldav.py checks it too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "outage.py"


def test_the_outage_bench_runs_without_listing_the_member_that_is_up() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--events", "40", "--edited", "3", "--rounds", "2",
                           "--server", "xandikos"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count("listed in full: none") == 2 and "outage run (median of 2)" in done.stdout
