"""``calmesh sync`` and ``calmesh status`` as an operator runs them, on two folders of iCalendar
files (real ICSConnector writes; the state store is a SQLite file in the test's tmp dir)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from calmesh.cli import app
from calmesh.cli.app import console
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.model import CalendarItem, Event

runner = CliRunner()
T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
EMPTY = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nEND:VCALENDAR\r\n"


def meeting(n: int, summary: str = "Review") -> CalendarItem:
    start = T0 + timedelta(hours=n)
    return CalendarItem(f"m{n}@test", [Event(f"m{n}@test", start, start + timedelta(minutes=30), summary=summary)])


def folder(tmp_path: Path, name: str) -> ICSConnector:
    (tmp_path / name).mkdir(exist_ok=True)
    (tmp_path / name / "team.ics").write_bytes(EMPTY.encode())
    return ICSConnector(name, ICSSettings(kind="ics", path=str(tmp_path / name)))


def write_config(tmp_path: Path, group_settings: str) -> Path:
    """Two ICS folders in one sync group ``team``, with ``group_settings`` (TOML lines) added."""
    folder(tmp_path, "left")
    folder(tmp_path, "right")
    path = tmp_path / "calmesh.toml"
    path.write_text("""
[hub]
state = "sqlite:///state.sqlite"
[platforms.left]
kind = "ics"
path = "left"
[platforms.right]
kind = "ics"
path = "right"
[sync.groups.team]
calendars = [{platform = "left", calendar = "team.ics"}, {platform = "right", calendar = "team.ics"}]
""" + group_settings + "\n")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, 'interval = "5m"')


def invoke(*args: str) -> tuple[int, str]:
    """The command's exit code and output, 200 columns wide: the CLI's console took its width
    from the environment when first imported (by whichever test came first in this process), so
    ``COLUMNS`` alone reaches only the commands that make their own console."""
    before, console.width = console.width, 200
    try:
        result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    finally:
        console.width = before
    return result.exit_code, result.output


def test_a_finished_command_leaves_the_store_checkpointed(config: Path, tmp_path: Path) -> None:
    """As a command ends, ``main()`` closes the state store's connections (the engines it opened,
    not a garbage collection): SQLite checkpoints its WAL into the database file and removes it."""
    folder(tmp_path, "left").put("team.ics", meeting(1))
    for argv in (["sync", "--once"], ["sync", "--once"], ["status"]):
        done = subprocess.run([sys.executable, "-c", "from calmesh.cli import main; main()", *argv, "-c", str(config)],
                              capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
        assert done.returncode == 0, done.stdout + done.stderr
        assert (tmp_path / "state.sqlite").exists() and not (tmp_path / "state.sqlite-wal").exists(), argv


def test_sync_once_then_nothing_to_do_then_status(config: Path, tmp_path: Path) -> None:
    left = folder(tmp_path, "left")
    for n in range(3):
        left.put("team.ics", meeting(n))
    code, out = invoke("sync", "--once", "-c", str(config))
    assert code == 0, out
    # calendars by name (issue 17 item 10); the table may wrap the name at the runner's width
    assert "sync team: ok" in out and "calendar team.ics on" in out and "right/" not in out
    right = ICSConnector("right", ICSSettings(kind="ics", path=str(tmp_path / "right")))
    assert sorted(i.uid for i in right.items("team.ics")[0]) == ["m0@test", "m1@test", "m2@test"]
    code, out = invoke("sync", "-c", str(config))
    assert code == 0 and "in step, no writes" in out, out
    status = runner.invoke(app, ["status", "--json", "-c", str(config)])
    [state] = json.loads(status.stdout)["groups"]  # stdout only: stray stderr from other threads is not JSON
    assert state["last_run"]["status"] == "ok" and state["items"]["items"] == 3
    assert set(state["tokens"]) == {"left/team.ics", "right/team.ics"}
    code, out = invoke("status", "-c", str(config))
    assert code == 0 and "team" in out and "3 items" in out, out


def test_status_names_the_platforms_the_server_saw_failing_in_both_forms(config: Path) -> None:
    """The server records a failing platform's technical cause (store/checks.py) so the operator
    reads it with ``status``: the table prints it, and ``--json`` carries it too (it used to be a
    list of groups only, so a script watching the hub never saw the failure)."""
    from calmesh.config import load_config
    from calmesh.store.checks import PlatformChecks
    from calmesh.store.db import open_store

    seen = datetime(2026, 11, 23, 8, tzinfo=UTC)
    PlatformChecks(open_store(load_config(config).state_url())).save("right", seen, "ConnectError: refused")
    status = runner.invoke(app, ["status", "--json", "-c", str(config)])
    document = json.loads(status.stdout)
    assert document["platforms_failing"] == [
        {"platform": "right", "last_seen": seen.isoformat(), "error": "ConnectError: refused"}]
    assert [g["group"] for g in document["groups"]] == ["team"]
    code, out = invoke("status", "-c", str(config))
    assert code == 0 and "platform right failing" in out and "ConnectError: refused" in out, out


def test_dry_run_shows_the_plan_and_writes_nothing(config: Path, tmp_path: Path) -> None:
    folder(tmp_path, "left").put("team.ics", meeting(1))
    code, out = invoke("sync", "--dry-run", "-c", str(config))
    assert code == 0 and "dry-run" in out and "calendar team.ics on right" in out, out
    assert (tmp_path / "right" / "team.ics").read_bytes() == EMPTY.encode()


def test_held_bulk_deletion_needs_confirm_deletes(config: Path, tmp_path: Path) -> None:
    left = folder(tmp_path, "left")
    for n in range(8):
        left.put("team.ics", meeting(n))
    assert invoke("sync", "-c", str(config))[0] == 0
    for item in left.items("team.ics")[0][:5]:
        assert item.ref is not None
        left.delete("team.ics", item.ref)
    code, out = invoke("sync", "-c", str(config))
    assert code == 0 and "held until confirmed" in out and "--confirm-deletes" in out, out
    right = ICSConnector("right", ICSSettings(kind="ics", path=str(tmp_path / "right")))
    assert len(right.items("team.ics")[0]) == 8
    code, out = invoke("sync", "--confirm-deletes", "-c", str(config))
    assert code == 0, out
    assert len(right.items("team.ics")[0]) == 3


def test_unreachable_member_is_an_error_exit_and_deletes_nothing(config: Path, tmp_path: Path) -> None:
    folder(tmp_path, "left").put("team.ics", meeting(1))
    assert invoke("sync", "-c", str(config))[0] == 0
    (tmp_path / "left" / "team.ics").unlink()
    code, out = invoke("sync", "-c", str(config))
    assert code == 3 and "error" in out and "calendar team.ics on left" in out, out
    right = ICSConnector("right", ICSSettings(kind="ics", path=str(tmp_path / "right")))
    assert [i.uid for i in right.items("team.ics")[0]] == ["m1@test"]


@pytest.mark.parametrize(("args", "message"), [
    (["--group", "nope"], "unknown sync group 'nope'"),
    (["--once", "--watch"], "exclude each other"),
    (["--watch", "--confirm-deletes"], "--confirm-deletes"),
    (["--interval", "5m"], "only applies with --watch"),
    (["--watch", "--interval", "soon"], "bad duration"),
])
def test_bad_options_are_clear_errors(config: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["sync", *args, "-c", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code != 0 and message in result.output + (result.stderr or ""), result.output


def test_no_groups_configured(tmp_path: Path) -> None:
    path = tmp_path / "calmesh.toml"
    path.write_text("[hub]\n")
    result = runner.invoke(app, ["sync", "-c", str(path)])
    assert result.exit_code == 1 and "no sync groups" in result.stderr
    status = runner.invoke(app, ["status", "-c", str(path)])  # it still shows the meeting copies owed
    assert status.exit_code == 0 and "no sync groups configured" in status.output


def test_worker_needs_a_queue(config: Path) -> None:
    result = runner.invoke(app, ["worker", "-c", str(config)])
    assert result.exit_code == 1 and "no queue configured" in result.stderr
