"""bench/sync_vs_vdirsyncer.py still runs end to end: ``--quick --skip-vdirsyncer`` starts two real
Radicale servers on 127.0.0.1 per mode (free ports, a tmp dir), syncs 200 events through the real
engine in a warm and a cold process (the cold one also timing its libraries alone), and prints
its table; ``--server xandikos --start warm`` does the same on two Xandikos servers seeded
through Git, in a warm process. Timings are not checked (they belong to the bench); the bench
itself fails if B does not end up holding A's objects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sync_vs_vdirsyncer.py"


@pytest.mark.slow
@pytest.mark.parametrize(("options", "starts"), [
    ([], ("warm", "cold")),
    (["--server", "xandikos", "--start", "warm"], ("warm",)),
], ids=["radicale", "xandikos"])
def test_quick_bench_completes_and_prints_a_table(options: list[str], starts: tuple[str, ...]) -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--skip-vdirsyncer", *options],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    header = next(line for line in done.stdout.splitlines() if line.split()[:3] == ["size", "start", "phase"])
    assert "calmesh s" in header and "vdirsyncer s" in header
    rows = [row for row in (line.split() for line in done.stdout.splitlines())
            if row[:1] == ["200"] and row[1] in ("warm", "cold")]
    assert {(row[1], " ".join(row[2:-3])) for row in rows} == {
        (start, phase) for start in starts
        for phase in ("initial", "no-op", "no-op again", "1% changed")
        + (("libraries alone",) if start == "cold" else ())}
