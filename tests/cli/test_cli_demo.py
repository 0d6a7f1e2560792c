"""Issue 17 item 1: the demo says what its config needs, carries the port it serves on, and the
README's commands give visible results against it (a sync group, find-time suggestions), on the real Radicale and EWS fake it starts."""

from __future__ import annotations

import json
import socket
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from calmesh.cli import app
from calmesh.demo import run
from calmesh.demo.data import demo_monday

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("today", "monday"), [
    (date(2026, 11, 30), date(2026, 11, 30)), (date(2026, 12, 1), date(2026, 11, 30)),
    (date(2026, 12, 2), date(2026, 12, 7)), (date(2026, 12, 6), date(2026, 12, 7))])
def test_demo_week_is_ahead_of_the_commands(today: date, monday: date) -> None:
    assert demo_monday(today) == monday


def test_demo_prints_the_password_variable_and_writes_its_port(tmp_path: Path) -> None:
    port = free_port()
    result = runner.invoke(app, ["demo", "--no-serve", "--dir", str(tmp_path), "--port", str(port)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    config = tmp_path / "calmesh.toml"
    assert f"config: {config} (hub port {port}; sync group alice-busy)" in lines
    assert f"  export CALMESH_DEMO_PASSWORD=demo CALMESH_CONFIG={config}" in lines
    assert f"port = {port}\n" in config.read_text()


def test_readme_commands_show_results_against_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with run.running(tmp_path, port=free_port()) as env:
        monkeypatch.setenv("CALMESH_CONFIG", str(env.config_path))
        wide = {"COLUMNS": "250"}
        start = env.monday.isoformat()  # the README's commands look from today on; the week is ahead
        sync = runner.invoke(app, ["sync", "--once"], env=wide)
        assert sync.exit_code == 0, sync.output
        assert "sync alice-busy: ok" in sync.output
        # the calendar by name, not by its internal id (the runner's console may wrap the cell)
        assert "marketing-busy.ics" in sync.output and "projects/marketing-busy.ics" not in sync.output
        found = runner.invoke(app, ["find-time", "carla@agency.example", "david@agency.example",
                                    "-o", "alice@agency.example", "--duration", "60", "--start", start], env=wide)
        assert found.exit_code == 0 and "No suggestion" not in found.output, found.output
        dups = runner.invoke(app, ["duplicates", "--start", start, "--format", "json"], env=wide)
        assert dups.exit_code == 0, dups.output
        assert json.loads(dups.output)["start"].startswith(f"{start}T00:00:00+01:00")  # the user's zone, not UTC
