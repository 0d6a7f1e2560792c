"""Benchmark: reading and expanding events in a zone the calendar defines itself (issue 16).

Outlook and Exchange exports name their zones ``Customized Time Zone`` or by Windows names and
define them in a VTIMEZONE whose observances start in 1601 and recur yearly. The calendar: 500
weekly series in such a zone (Paris rules), each started on one of 28 November days. Timed, each
in a new interpreter (so every cache starts cold, as a process reading its first calendar):
``ical.parse_items`` of the text, then ``ical.expand`` over one week. Scenarios:

- ``defined``: the series all start in 2026;
- ``defined-12y``: the series start in 2026, 2025... 2015 (500 spread over twelve years), which
  makes calmesh match the definition to an IANA zone for each of those years;
- ``iana`` and ``iana-12y``: the same calendars with ``TZID=Europe/Paris`` and no VTIMEZONE, the
  anchor (what the same events cost in a zone the database knows).

The first read of a made-up zone name imports exchangelib for the CLDR Windows-zone table (about
0.3 to 0.5 s on this machine): it is inside the ``defined`` figures, once per process, and is
printed on its own too (``tables``).

Run: ``.venv/bin/python bench/defined_zones.py`` (``--rounds N``, median of N runs; ``--src DIR``
to time another checkout's ``src``, e.g. the branch point's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r'''
import json, sys, time
from datetime import UTC, datetime
from calmesh import ical
from calmesh.model import Window

tzid, years = sys.argv[1].encode(), int(sys.argv[2])
vtz = (b"BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\nBEGIN:STANDARD\r\nDTSTART:16010101T030000\r\n"
       b"TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n"
       b"BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
       b"RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n")
text = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + (vtz if tzid == b"Customized Time Zone" else b"") + b"".join(
    b"BEGIN:VEVENT\r\nUID:e%d\r\nDTSTART;TZID=%s:%04d11%02dT090000\r\nDURATION:PT1H\r\n"
    b"RRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\n" % (i, tzid, 2026 - i % years, 1 + i % 28)
    for i in range(500)) + b"END:VCALENDAR\r\n")
started = time.perf_counter()
items, problems = ical.parse_items(text)
parsed = time.perf_counter()
window = Window(datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC))
occurrences, issues = ical.expand(text, window)
expanded = time.perf_counter()
assert len(items) == 500 and len(occurrences) == 500 and not problems and not issues
from calmesh.timezones import _windows_tables
before_tables = time.perf_counter()
_windows_tables()
print(json.dumps({"parse": parsed - started, "expand": expanded - parsed,
                  "tables": time.perf_counter() - before_tables}))
'''
"""One run: the calendar built, parsed and expanded; then the CLDR tables loaded, which imports
exchangelib where the calendar did not (an IANA TZID): its cost alone."""

SCENARIOS = {"defined": ("Customized Time Zone", 1), "defined-12y": ("Customized Time Zone", 12),
             "iana": ("Europe/Paris", 1), "iana-12y": ("Europe/Paris", 12)}


def run(src: Path, tzid: str, years: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed calmesh runs: from bytecode
    out = subprocess.run([sys.executable, "-c", CHILD, tzid, str(years)], env=env, check=True,
                         capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parent.parent / "src")
    args = parser.parse_args()
    print(f"src {args.src}; load average {os.getloadavg()[0]:.2f}; median of {args.rounds} (seconds)")
    for name, (tzid, years) in SCENARIOS.items():
        runs = [run(args.src, tzid, years) for _ in range(args.rounds)]
        figures = {key: statistics.median(r[key] for r in runs) for key in ("parse", "expand", "tables")}
        print(f"{name:12} parse {figures['parse']:.3f}  expand {figures['expand']:.3f}"
              + (f"  (CLDR tables' import alone: {figures['tables']:.3f})" if tzid == "Europe/Paris" else ""))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
