"""``calmesh sync --dry-run`` lists every planned action (what, from where to where, why) as a
table and as ``--format json``; ``calmesh status`` shows the deletions the guard holds. Driven as
an operator runs them, on two folders of iCalendar files (real ICSConnector writes; the state
store is a SQLite file in the test's tmp dir), as tests/cli/test_cli_sync.py does."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_cli_sync import folder, invoke, meeting, runner  # tests/cli is not a package
from test_cli_sync import write_config as team_config

from calmesh.cli import app
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.model import CalendarItem, Classification

LEFT, RIGHT = "left/team.ics", "right/team.ics"


def write_config(tmp_path: Path, mode: str = "mirror") -> Path:
    return team_config(tmp_path, f'mode = "{mode}"')


def private(n: int, summary: str) -> CalendarItem:
    item = meeting(n, summary)
    return CalendarItem(item.uid, [replace(e, classification=Classification.PRIVATE) for e in item.components])


def dry_run_json(config: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["sync", "--dry-run", "--format", "json", "-c", str(config)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    return report  # type: ignore[no-any-return]


def test_dry_run_lists_every_action_with_what_where_and_why(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    left = folder(tmp_path, "left")
    left.put("team.ics", meeting(1, "Review [draft] [b]Q1[/b]"))
    left.put("team.ics", private(2, "Doctor"))
    code, out = invoke("sync", "--dry-run", "-c", str(config))
    assert code == 0 and "planned actions of team" in out, out
    assert "Review [draft] [b]Q1[/b]" in out  # Rich markup escaped, not swallowed
    assert "m2@test" in out and "Doctor" not in out  # a private event is named by its UID
    # the table names calendars as its counts do; the JSON keeps the member keys
    assert "calendar team.ics on left" in out and "calendar team.ics on right" in out and "new" in out
    assert LEFT not in out, out
    report = dry_run_json(config)
    assert report["dry_run"] and report["status"] == "dry-run"
    by_uid = {a["uid"]: a for a in report["actions"]}
    assert by_uid["m1@test"] == {**by_uid["m1@test"], "action": "create", "what": "Review [draft] [b]Q1[/b]",
                                 "from": LEFT, "to": RIGHT, "why": "new"}
    assert by_uid["m2@test"]["what"] == "m2@test"
    assert (tmp_path / "right" / "team.ics").read_text().count("BEGIN:VEVENT") == 0


def test_dry_run_lists_deletions_with_their_reason(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    left = folder(tmp_path, "left")
    for n in range(3):
        left.put("team.ics", meeting(n, f"Weekly {n}"))
    assert invoke("sync", "-c", str(config))[0] == 0
    [gone] = [i for i in left.items("team.ics")[0] if i.uid == "m0@test"]
    assert gone.ref is not None
    left.delete("team.ics", gone.ref)
    [action] = dry_run_json(config)["actions"]
    assert action == {**action, "action": "delete", "what": "Weekly 0", "uid": "m0@test", "from": LEFT,
                      "to": RIGHT, "why": f"deleted at {LEFT}"}


def test_busy_mode_dry_run_never_shows_titles(tmp_path: Path) -> None:
    config = write_config(tmp_path, mode="busy")
    folder(tmp_path, "left").put("team.ics", meeting(1, "Secret acquisition"))
    code, out = invoke("sync", "--dry-run", "-c", str(config))
    assert code == 0 and "Secret acquisition" not in out and "create" in out, out
    [action] = dry_run_json(config)["actions"]
    assert "Secret" not in json.dumps(action) and action["what"] == action["uid"]


def test_held_deletions_show_in_status_until_confirmed(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    left = folder(tmp_path, "left")
    for n in range(8):
        left.put("team.ics", meeting(n))
    assert invoke("sync", "-c", str(config))[0] == 0
    for item in left.items("team.ics")[0]:
        assert item.ref is not None
        left.delete("team.ics", item.ref)
    code, out = invoke("sync", "-c", str(config))
    assert code == 0 and "held until confirmed" in out, out
    for _ in range(2):  # later runs say "held", not "in step"
        code, out = invoke("sync", "-c", str(config))
        assert code == 0 and "held until confirmed" in out and "--confirm-deletes" in out, out
    code, out = invoke("status", "-c", str(config))
    assert code == 0 and "held calendar team.ics on left" in out and "8 of 8" in out, out  # by name, not id
    status = runner.invoke(app, ["status", "--json", "-c", str(config)])
    [state] = json.loads(status.stdout)["groups"]
    [hold] = state["held"]
    assert hold["member"] == LEFT and hold["missing"] == 8 and hold["since"]
    code, out = invoke("sync", "--confirm-deletes", "--format", "json", "-c", str(config))
    assert code == 0 and json.loads(out)[0]["counts"]["deleted"] == 8, out
    right = ICSConnector("right", ICSSettings(kind="ics", path=str(tmp_path / "right")))
    assert right.items("team.ics")[0] == []
    status = runner.invoke(app, ["status", "--json", "-c", str(config)])
    assert json.loads(status.stdout)["groups"][0]["held"] == []


def test_restore_held_excludes_confirm_and_watch(tmp_path: Path) -> None:
    config = str(write_config(tmp_path))
    code, out = invoke("sync", "--restore-held", "--confirm-deletes", "-c", config)
    assert code != 0 and "exclude each other" in out
    code, out = invoke("sync", "--restore-held", "--watch", "-c", config)
    assert code != 0 and "--restore-held" in out


@pytest.mark.parametrize("fmt", ["yaml", "csv"])
def test_unknown_format_is_refused(tmp_path: Path, fmt: str) -> None:
    code, out = invoke("sync", "--format", fmt, "-c", str(write_config(tmp_path)))
    assert code != 0 and "--format must be table or json" in out
