"""Benchmark: ``calmesh freebusy`` for 2 people of the demo, as a new process, against its floor.

The floor is what no command can avoid: starting the interpreter (``python -c pass``) plus the
platforms' own answer time (the same two people asked in-process through a new hub, so new
connections too, with every library already imported). Target (issue 16): the command within 1.5x
of that floor. Also printed: the modules the command imported from calmesh's connectors and their
libraries (only the two people's platforms), and, with ``--profile DIR``, a pyinstrument profile
of one run of the command (where its start-up goes).

The demo environment (Radicale for "zoho", the EWS fake for "exchange", an ICS folder for
"projects") runs in this process while the command runs in its own.

A second anchor says why the target is out of reach: **the libraries alone**, a new interpreter
importing every module the command had loaded but calmesh's own (Typer, Rich, pydantic, icalendar,
recurring-ical-events, caldav with niquests and urllib3-future, and the standard library they pull
in), then freezing the heap as ``calmesh.cli.main`` does. The command minus that is calmesh's own
start-up work (its modules, the config, the CLI, the fan-out, the answer, the rendering).

Every child runs with bytecode (``PYTHONDONTWRITEBYTECODE`` removed from its environment), as an
installed package does: compiling calmesh's sources at every start is not its start-up time.

Run: ``.venv/bin/python bench/startup.py`` (``--rounds``; ``--people a@x,b@y`` to choose).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from libraries_alone import importing, libraries, loaded_modules

from calmesh.config import load_config
from calmesh.demo.data import PEOPLE
from calmesh.demo.run import running
from calmesh.model import Window
from calmesh.services import availability
from calmesh.services.hub import Hub

PYTHON = sys.executable
CALMESH = str(Path(sys.executable).parent / "calmesh")


def child_env() -> dict[str, str]:
    """The children's environment (the demo's password included, once it runs), with bytecode
    written and read, as an installed calmesh runs."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


CONNECTOR_MODULES = ("calmesh.connectors.", "exchangelib", "caldav", "niquests", "cryptography", "sqlalchemy")
"""What the report lists of the modules the command imported: connectors and their libraries."""


def timed(argv: list[str], rounds: int) -> tuple[list[float], list[float]]:
    """Wall times and CPU times (user + system of the child) of ``rounds`` runs: on a loaded
    machine the wall time of a new process is mostly waiting for a core, its CPU time is not."""
    walls, cpus = [], []
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=child_env())
        walls.append(time.perf_counter() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--people", help="two demo emails, comma-separated (default: the first two)")
    parser.add_argument("--profile", metavar="DIR", type=Path)
    args = parser.parse_args()
    people = args.people.split(",") if args.people else [p.email for p in PEOPLE[:2]]
    with tempfile.TemporaryDirectory(prefix="calmesh-startup-") as tmp, running(Path(tmp) / "demo") as env:
        config = load_config(env.config_path)
        platforms = sorted({p.platform for p in config.people if p.email in people})
        kinds = sorted({config.platforms[p]["kind"] for p in platforms})
        monday = datetime.combine(env.monday, datetime.min.time(), tzinfo=UTC)
        window = Window(monday, monday + timedelta(days=7))
        command = [CALMESH, "freebusy", *people, "--start", env.monday.isoformat(), "--format", "json",
                   "--config", str(env.config_path)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=child_env())  # bytecode written, servers warm

        answers: list[float] = []
        answer_cpu: list[float] = []
        for _ in range(args.rounds):
            with Hub(load_config(env.config_path)) as hub:  # new connections, as a new process makes
                began, cpu = time.perf_counter(), time.process_time()
                availability.freebusy(hub, people, window)
                answers.append(time.perf_counter() - began)
                answer_cpu.append(time.process_time() - cpu)
        bare, bare_cpu = timed([PYTHON, "-c", "pass"], args.rounds)
        cli, cli_cpu = timed(command, args.rounds)
        loaded = loaded_modules(command, child_env())
        modules = sorted(m for m in loaded if m.startswith(CONNECTOR_MODULES)
                         and "." not in m.removeprefix("calmesh.connectors."))
        library_modules = libraries(loaded, "calmesh")
        libs, libs_cpu = timed(importing(library_modules), args.rounds)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            subprocess.run([PYTHON, "-m", "pyinstrument", "-r", "text", "-o", str(args.profile / "startup.txt"),
                            CALMESH, *command[1:]], check=True, stdout=subprocess.DEVNULL, env=child_env())
            with (args.profile / "importtime.txt").open("w") as out:  # every import, threads' too
                subprocess.run([PYTHON, "-X", "importtime", *command], check=True, stdout=subprocess.DEVNULL,
                               stderr=out, env=child_env())

    floor = statistics.median(bare) + statistics.median(answers)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
          + " ".join(f"{v:.1f}" for v in os.getloadavg()))
    print(f"calmesh freebusy {' '.join(people)} (platforms {', '.join(platforms)}: {', '.join(kinds)}), "
          f"median of {args.rounds}:")
    print(f"  python -c pass                         {statistics.median(bare) * 1000:8.1f} ms")
    print(f"  the platforms' answer (in-process)     {statistics.median(answers) * 1000:8.1f} ms")
    print(f"  floor (the two together)               {floor * 1000:8.1f} ms")
    print(f"  calmesh freebusy, a new process        {statistics.median(cli) * 1000:8.1f} ms"
          f"   ratio {statistics.median(cli) / floor:4.2f}x (target <= 1.5x)")
    cpu_floor = statistics.median(bare_cpu) + statistics.median(answer_cpu)
    print(f"  CPU: python -c pass {statistics.median(bare_cpu) * 1000:.0f} ms, the command "
          f"{statistics.median(cli_cpu) * 1000:.0f} ms ({statistics.median(cli_cpu) / statistics.median(bare_cpu):.1f}x); "
          f"the platforms' answer {statistics.median(answer_cpu) * 1000:.0f} ms in-process "
          f"(all threads of this process); CPU ratio to the floor {statistics.median(cli_cpu) / cpu_floor:.2f}x")
    alone_floor = statistics.median(libs) + statistics.median(answers)
    print(f"  the libraries alone (a new process importing what the command imported but calmesh's own, "
          f"{len(library_modules)} modules) {statistics.median(libs) * 1000:.1f} ms, CPU {statistics.median(libs_cpu) * 1000:.0f} ms;"
          f" with the platforms' answer {alone_floor * 1000:.1f} ms: the command is "
          f"{statistics.median(cli) / alone_floor:4.2f}x that, its own share "
          f"{(statistics.median(cli) - statistics.median(libs)) * 1000:.0f} ms of wall, "
          f"{(statistics.median(cli_cpu) - statistics.median(libs_cpu)) * 1000:.0f} ms of CPU; the libraries alone are "
          f"{statistics.median(libs_cpu) / cpu_floor:.1f}x the CPU floor by themselves")
    print(f"  connector modules and libraries imported: {', '.join(modules) or 'none'}")


if __name__ == "__main__":
    main()
