"""``fanout.within`` tells a straggler's work to stop (issue 13, item 7): a thread cannot be
killed, but work that checks :func:`calmesh.cancel.check` ends at its next step instead of keeping
a core busy for an answer nobody waits for."""

from __future__ import annotations

import threading

from calmesh import cancel
from calmesh.services import fanout


def test_a_late_call_is_told_to_stop_and_stops() -> None:
    stopped = threading.Event()

    def endless() -> None:
        try:
            while True:  # stands for an expansion that would run for hours
                cancel.check()
        finally:
            stopped.set()

    outcome = fanout.within({"endless": endless}, timeout=0.1)
    assert outcome.late == ["endless"]
    assert stopped.wait(timeout=60)  # an event, not a sleep: it ends as soon as it checks


def test_work_outside_a_fanout_is_never_abandoned() -> None:
    assert not cancel.abandoned()
    cancel.check()
