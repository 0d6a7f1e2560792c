"""bench/tombstones.py still runs: a small state file, its loads and purges, printed. Timings
are not checked (they belong to the bench)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "tombstones.py"


def test_the_tombstone_bench_runs_and_forgets_every_deletion() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--live", "40", "--deleted", "30", "--rounds", "1"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "(0 forgotten)" in done.stdout and "purge of all 30 at once" in done.stdout
