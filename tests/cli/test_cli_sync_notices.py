"""``calmesh sync`` shows what a target could not hold of a copy (issue 13): a notice line in
its output, ``adapted`` in ``--format json``, in dry runs too. The two ICS folders of
test_cli_sync.py hold iCalendar as it is, so the target's ``fit`` is made to say what Exchange
would (tests/timekeeping/test_vendor_fit.py covers the vendors themselves)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_sync import folder, invoke, meeting, write_config  # tests/cli is not a package

from calmesh.connectors.base import Adaptation
from calmesh.connectors.ics import ICSConnector
from calmesh.model import CalendarItem


@pytest.fixture
def adapting(monkeypatch: pytest.MonkeyPatch) -> None:
    def fit(self: ICSConnector, item: CalendarItem) -> tuple[CalendarItem, list[Adaptation]]:
        return item, [Adaptation("VALARM", "1 alarm(s) left out")] if self.name == "right" else []

    monkeypatch.setattr(ICSConnector, "fit", fit)


@pytest.mark.usefixtures("adapting")
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_sync_shows_what_a_target_could_not_hold(tmp_path: Path, dry_run: bool) -> None:
    config = write_config(tmp_path, "")
    folder(tmp_path, "left").put("team.ics", meeting(1, "Secret review"))
    flags = ["--dry-run"] if dry_run else []
    code, out = invoke("sync", *flags, "-c", str(config))
    assert code == 0, out
    assert "calendar team.ics on right: UID m1@test: VALARM: 1 alarm(s) left out" in out, out  # cli/labels.py
    code, out = invoke("sync", *flags, "--format", "json", "-c", str(config))
    [report] = json.loads(out)
    if dry_run:
        assert report["adapted"] == [{"member": "right/team.ics", "item": report["adapted"][0]["item"],
                                      "uid": "m1@test", "feature": "VALARM", "detail": "1 alarm(s) left out",
                                      "written": True}]
        assert "Secret" not in json.dumps(report["adapted"])
    else:  # the copy was written by the first run: nothing to write, nothing to say
        assert report["adapted"] == []
