"""Issue 17 item 1: the demo says what its config needs, carries the port it serves on, and the
README's commands give visible results against it (a sync group, find-time suggestions, a
duplicated meeting and a double booking in the default window, which is never one with the other),
on the real Radicale and EWS fake it starts."""

from __future__ import annotations

import json
import socket
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from calmesh.cli import app
from calmesh.cli.app import console
from calmesh.cli.freebusy import resolve_window
from calmesh.demo import run
from calmesh.demo.data import DEMO_DAY, HUB_ZONE, demo_monday, demo_today

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("today", "monday"), [
    (date(2026, 11, 30), date(2026, 11, 30)), (date(2026, 12, 1), date(2026, 11, 30)),
    (date(2026, 12, 3), date(2026, 11, 30)), (date(2026, 12, 4), date(2026, 12, 7)),
    (date(2026, 12, 6), date(2026, 12, 7))])
def test_demo_week_is_ahead_of_the_commands(today: date, monday: date) -> None:
    """The week's Thursday (its duplicate and double booking) is in the window of a week from today."""
    assert demo_monday(today) == monday
    thursday = monday + timedelta(days=DEMO_DAY)
    assert today <= thursday < today + timedelta(days=7)


@pytest.mark.parametrize("now", [datetime(2026, 12, 3, 23, 30, tzinfo=UTC), datetime(2026, 12, 3, 22, 59, tzinfo=UTC),
                                 datetime(2026, 12, 3, 0, 30, tzinfo=UTC), datetime(2026, 12, 6, 23, 30, tzinfo=UTC)])
def test_demo_week_is_counted_from_today_where_the_commands_count(now: datetime) -> None:
    """A clean clone's tests at 23:30 UTC on a Thursday seeded this week (by the machine's UTC
    date) while the commands' default window began on Friday in Paris: no conflict, no duplicate."""
    zone = ZoneInfo(HUB_ZONE)
    window = resolve_window(None, None, zone, now=now)
    thursday = demo_monday(demo_today(now)) + timedelta(days=DEMO_DAY)
    assert window.start.astimezone(zone).date() <= thursday < window.end.astimezone(zone).date()


def test_demo_prints_the_password_variable_and_writes_its_port(tmp_path: Path) -> None:
    port = free_port()
    result = runner.invoke(app, ["demo", "--no-serve", "--dir", str(tmp_path), "--port", str(port)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    config = tmp_path / "calmesh.toml"
    assert f"config: {config} (hub port {port}; sync group alice-busy; David's ACME follow-up copied into two " \
           "platforms: see `calmesh duplicates`)" in lines
    assert f"  export CALMESH_DEMO_PASSWORD=demo CALMESH_CONFIG={config}" in lines
    assert f"port = {port}\n" in config.read_text()


def test_readme_commands_show_results_against_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 250)  # fixed at its first import, maybe narrower: no cell wraps
    with run.running(tmp_path, port=free_port()) as env:
        monkeypatch.setenv("CALMESH_CONFIG", str(env.config_path))
        wide = {"COLUMNS": "250"}
        start = env.monday.isoformat()
        sync = runner.invoke(app, ["sync", "--once"], env=wide)
        assert sync.exit_code == 0, sync.output
        assert "sync alice-busy: ok" in sync.output
        # the calendar by name, not by its internal id (the runner's console may wrap the cell)
        assert "marketing-busy.ics" in sync.output and "projects/marketing-busy.ics" not in sync.output
        # check says whose each calendar it listed is (a CalDAV server shared by one account cannot)
        check = runner.invoke(app, ["check"], env=wide)
        assert check.exit_code == 0 and "Alice Martin (zoho-alice): read today's free/busy" in check.output, check.output
        status = runner.invoke(app, ["status"], env=wide)
        assert status.exit_code == 0, status.output
        assert "Alice Martin's calendar on zoho: compared in full" in status.output and "http" not in status.output
        found = runner.invoke(app, ["find-time", "carla@agency.example", "david@agency.example",
                                    "-o", "alice@agency.example", "--duration", "60"], env=wide)
        assert found.exit_code == 0 and "No suggestion" not in found.output, found.output
        # the default window (a week from today) holds the demo's Thursday: no --start needed
        dups = runner.invoke(app, ["duplicates", "--resolve", "--format", "json"], env=wide)
        assert dups.exit_code == 0, dups.output
        david = next(p for p in json.loads(dups.output)["people"] if p["email"] == "david@agency.example")
        (group,) = david["duplicates"]
        assert group["platforms"] == ["exchange", "projects"] and not group["same_uid"]
        assert group["reason"] == "same start and end, same title, 1 of 1 attendees shared on exchange and projects"
        # the copy David made by hand goes, the one on his home platform (where replies flow) stays
        assert [(d["platform"], d["remove"]) for d in group["decisions"]] == [("exchange", False), ("projects", True)]
        dups = runner.invoke(app, ["duplicates", "--start", start, "--format", "json"], env=wide)
        assert json.loads(dups.output)["start"].startswith(f"{start}T00:00:00+01:00")  # the user's zone, not UTC
        conflicts = runner.invoke(app, ["conflicts", "--person", "david@agency.example", "--format", "json"], env=wide)
        assert conflicts.exit_code == 0, conflicts.output
        (conflict,) = json.loads(conflicts.output)["people"][0]["conflicts"]  # the copies are not one
        assert conflict["cross_platform"] and [e["summary"] for e in conflict["events"]] == [
            "Q1 forecast", "Project Atlas review"]
