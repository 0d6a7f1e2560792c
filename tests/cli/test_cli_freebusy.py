"""The ``calmesh`` command line on a config of iCalendar folders: what an operator types and reads."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import icalendar
import pytest
from typer.testing import CliRunner

from calmesh.cli import app
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.demo.data import build_week

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    connector = ICSConnector("projects", ICSSettings(kind="ics", path=str(tmp_path / "projects")))
    (tmp_path / "projects").mkdir()
    for (platform, owner), items in build_week(date(2026, 11, 23)).items.items():
        if platform == "projects":
            for item in items:
                connector.put(f"{owner}.ics", item)
    path = tmp_path / "calmesh.toml"
    path.write_text("""
[hub]
timezone = "Europe/Paris"
[platforms.projects]
kind = "ics"
path = "projects"
[[people]]
email = "emma@agency.example"
name = "Emma Dubois"
team = "projects"
platform = "projects"
[[people]]
email = "farid@agency.example"
name = "Farid Haddad"
team = "projects"
platform = "projects"
timezone = "Asia/Tokyo"
""")
    return path


def test_table(config: Path) -> None:
    result = runner.invoke(app, ["freebusy", "team:projects", "--start", "2026-11-23", "--end", "2026-11-28",
                                 "-c", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Emma Dubois" in result.output and "Farid Haddad" in result.output
    assert "Mon 23" in result.output and "Fri 27" in result.output
    assert "█" in result.output


def test_json_in_requested_zone(config: Path) -> None:
    result = runner.invoke(app, ["freebusy", "farid@agency.example", "--start", "2026-11-23", "--end", "2026-11-24",
                                 "--tz", "Tokyo Standard Time", "--format", "json", "-c", str(config)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (farid,) = data["people"]
    assert farid["busy"][0] == {"start": "2026-11-23T18:00:00+09:00", "end": "2026-11-23T20:00:00+09:00",
                                "type": "BUSY", "source": "projects"}


def test_ics_output_is_vfreebusy(config: Path) -> None:
    result = runner.invoke(app, ["freebusy", "emma@agency.example", "--start", "2026-11-23", "--end", "2026-11-28",
                                 "--format", "ics", "-c", str(config)])
    assert result.exit_code == 0, result.output
    cal = icalendar.Calendar.from_ical(result.stdout)
    (fb,) = cal.walk("VFREEBUSY")
    assert str(fb["ATTENDEE"]) == "mailto:emma@agency.example"
    assert len(fb["FREEBUSY"]) == 2


def test_unknown_person_and_bad_dates(config: Path) -> None:
    result = runner.invoke(app, ["freebusy", "nobody@agency.example", "-c", str(config)])
    assert result.exit_code == 1 and "not in the people directory" in result.output
    result = runner.invoke(app, ["freebusy", "*", "--start", "2026-13-01", "-c", str(config)])
    assert result.exit_code == 2 and "not a date" in result.output


def test_missing_config_is_explained(tmp_path: Path) -> None:
    result = runner.invoke(app, ["freebusy", "*", "-c", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "cannot read config" in result.output


def test_check_reports_each_platform(config: Path) -> None:
    result = runner.invoke(app, ["check", "-c", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "projects" in result.output and "ok" in result.output and "writable files" in result.output
