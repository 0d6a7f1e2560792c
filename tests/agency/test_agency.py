"""The agency test of issue 12: a model-based state machine (hypothesis) lives through an
agency's weeks on real peers and checks, after every step, that booking, sync, conflicts and
duplicates work together.

Peers: Radicale and Xandikos (real CalDAV servers on 127.0.0.1, started once per session by
tests/conftest.py), the EWS and Graph fakes (``calmesh.fakes``: protocol-faithful Exchange fakes
served on loopback once per module, reached through the real connectors), an ICS folder and the
in-house SQL table (see world.py). Each example gets fresh calendars, mailboxes, table and state.

Rules drive calmesh through its services, as the CLI does: book, move and cancel a meeting; an
attendee's answer (an iTIP REPLY through ``process_message``); someone other than the organiser
trying to move or cancel it (which must be refused); a person creating, editing or deleting an
event directly on their own platform, taking an event they deleted on a CalDAV calendar back out
of the trash, or copying a meeting into another of their calendars; a
sync group running (``mirror``: Alice's Radicale and Exchange calendars; ``busy``: David's Graph
and project calendars); a run killed at its n-th write, just before or just after the write
reached the server (faults.py: an in-process stand-in for SIGKILL); a platform down for a while;
duplicates resolved and undone.

Invariants (model.py; each failure message starts with the invariant's name in brackets):
``busy-shown-free``, ``exactly-once``, ``deleted-returns``, ``edit-lost``, ``organiser-only``,
``copy-is-conflict``, ``deletion-reason``.

Runs: ``test_agency`` runs a fixed (derandomized) bounded walk in CI, and
test_agency_regressions.py the shortest failing sequences found so far;
``test_agency_replays_known_failures`` replays the examples kept in tests/agency/examples
(failures found once stay found; under ``make soak`` while one of them still fails), the same
walk in every process (ids.py, the seeded run below, ``make soak``'s fixed hash seed);
``make soak`` runs ``test_agency_soak`` for ``SOAK_SECONDS`` (30 minutes), saving any failure
to tests/agency/examples for the next commit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.stateful import run_state_machine_as_test

from .machine import TRACE, AgencyMachine
from .world import Peers

EXAMPLES = Path(__file__).parent / "examples"


# ---------------------------------------------------------------------------------- the runs
class EveryKey(ExampleDatabase):
    """The kept examples of every version of the machine, read-only. Hypothesis files a state
    machine's examples under a digest of the machine's source, so any change to a rule would
    forget every failure found before it; a step sequence saved then still drives the machine
    (through whatever rules it has now), and replaying it is how failures found once stay found."""

    def __init__(self, db: DirectoryBasedExampleDatabase) -> None:
        super().__init__()
        self.db = db

    def fetch(self, key: bytes) -> Iterable[bytes]:
        if key.endswith((b".secondary", b".pareto")):
            return  # each kept example once, as a primary one
        seen: set[bytes] = set()
        for kept in self.db.fetch(self.db._metakeys_name):
            for value in self.db.fetch(kept):
                if value not in seen:
                    seen.add(value)
                    yield value

    def save(self, key: bytes, value: bytes) -> None:
        """Read-only: what a replay finds is already kept."""

    def delete(self, key: bytes, value: bytes) -> None:
        """Read-only: a replay that passes forgets nothing."""



def _run(peers: Peers, root: Path, *, seed_with: int | None = None, **options: object) -> None:
    """``seed_with``: draw with this seed where the choices run out. A kept example saved by an
    earlier version of the machine no longer fits its rules from some step on, and hypothesis
    then extends it with random choices: unseeded, each process replays another walk from there
    (two of four replays failed in session 9, the others passed the same code)."""
    AgencyMachine.peers, AgencyMachine.root = peers, root
    if TRACE:  # every step too, on stdout (pytest -s)
        options.setdefault("verbosity", Verbosity.debug)
    machine = AgencyMachine if seed_with is None else seed(seed_with)(type("Seeded", (AgencyMachine,), {}))
    run_state_machine_as_test(machine, settings=settings(
        deadline=None, suppress_health_check=list(HealthCheck), print_blob=True, **options))  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SOAK_SECONDS"), reason=(
    "replays every kept example (long walks with killed runs and outages: several minutes), so "
    "`make soak` runs it; each failure they found is a fixed sequence in "
    "test_agency_regressions.py and test_syncplan.py, which CI runs"))
def test_agency_replays_known_failures(peers: Peers, tmp_path: Path) -> None:
    """Every example kept in tests/agency/examples (found by a soak or an earlier run) again.
    ``AGENCY_REPLAY_SEED`` (default 0) chooses the tails of the examples that no longer fit the
    machine: another seed walks on from the states they reach, a search of its own."""
    _run(peers, tmp_path, seed_with=int(os.environ.get("AGENCY_REPLAY_SEED", "0")),
         database=EveryKey(DirectoryBasedExampleDatabase(EXAMPLES)), phases=[Phase.explicit, Phase.reuse],
         max_examples=1000)


@pytest.mark.slow
def test_agency(peers: Peers, tmp_path: Path) -> None:
    """A fixed, bounded walk through the agency's weeks (the same examples on every run)."""
    _run(peers, tmp_path, derandomize=True, database=None, max_examples=4, stateful_step_count=15,
         phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False)


@pytest.mark.soak
@pytest.mark.skipif(not os.environ.get("SOAK_SECONDS"), reason="a soak: `make soak` (sets SOAK_SECONDS)")
def test_agency_soak(peers: Peers, tmp_path: Path) -> None:
    """Fresh examples until ``SOAK_SECONDS`` have passed; a failure is saved to tests/agency/examples.
    No reuse phase: hypothesis deletes a reused example that passes, so a soak in a checkout
    would erase the kept examples of the current machine from the working tree (the replay
    above runs them, read-only)."""
    deadline = time.monotonic() + float(os.environ["SOAK_SECONDS"])
    while time.monotonic() < deadline:
        _run(peers, tmp_path, database=DirectoryBasedExampleDatabase(EXAMPLES), max_examples=10,
             stateful_step_count=40, phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink])
