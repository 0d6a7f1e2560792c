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
                                "type": "busy"}


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


def test_json_is_the_api_schema(config: Path) -> None:
    """Issue 17 item 5: the command line prints the API's FreeBusyAnswer, checked against the
    OpenAPI document the server publishes."""
    import jsonschema_rs  # schemathesis's validator, installed with the dev tools

    from calmesh.server.api import OPENAPI

    result = runner.invoke(app, ["freebusy", "team:projects", "--start", "2026-11-23", "--end", "2026-11-25",
                                 "--format", "json", "-c", str(config)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    schema = {"$ref": "#/components/schemas/FreeBusyAnswer", "components": OPENAPI["components"]}
    jsonschema_rs.Draft202012Validator(schema).validate(data)
    emma = data["people"][0]
    assert emma["error"] is None and {b["type"] for b in emma["busy"]} <= {"tentative", "busy", "oof", "unknown"}
    assert len(emma["availability_view"]) == 2 * 24 * 2  # 30-minute digits over two days


def test_outside_working_hours_has_its_own_mark(config: Path) -> None:
    """Issue 17 item 7: time outside working hours is not shown as out of office."""
    config.write_text(config.read_text().replace('timezone = "Asia/Tokyo"\n', 'timezone = "Asia/Tokyo"\n'
                                                 '[people.working_hours]\ndays = "Mon-Fri"\nstart = "09:00"\nend = "17:00"\n'))
    result = runner.invoke(app, ["freebusy", "farid@agency.example", "--start", "2026-11-23", "--end", "2026-11-24",
                                 "--working-hours", "--tz", "Asia/Tokyo", "-c", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    [row] = [line for line in result.output.splitlines() if line.startswith("│ Farid Haddad")]
    strip = row.split("│")[3].strip()
    # 08:00-20:00 by half-hours: 9-17 inside; his 18:00-20:00 meeting stays busy
    assert strip == "░░" + "··" * 8 + "░░" + "████", strip
    assert "░ Outside working hours" in result.output and "▓" not in row
