"""``calmesh freebusy`` and ``calmesh check`` on calendar files that cannot be read (issue 13,
items 1, 6, 7): unknown with an error naming the file and exit 3, never free; a failed check."""

from __future__ import annotations

import json
from pathlib import Path

import icalendar
import pytest
from typer.testing import CliRunner

from calmesh.cli import app

runner = CliRunner()
EMMA = "emma@agency.example"
GOOD = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        "DTSTART:20261124T100000Z\r\nDTEND:20261124T110000Z\r\nSUMMARY:Café\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
UNREADABLE = {
    "garbage": b"<html>502 Bad Gateway</html>\r\n",
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "cut-mid-event": GOOD.encode()[:110],
}


def config_with(tmp_path: Path, data: bytes) -> Path:
    (tmp_path / "projects").mkdir()
    (tmp_path / "projects" / f"{EMMA}.ics").write_bytes(data)
    path = tmp_path / "calmesh.toml"
    path.write_text(f"""
[hub]
timezone = "Europe/Paris"
[platforms.projects]
kind = "ics"
path = "projects"
[[people]]
email = "{EMMA}"
name = "Emma Dubois"
platform = "projects"
calendars = ["{EMMA}.ics"]
""")
    return path


def freebusy(config: Path, fmt: str) -> tuple[int, str]:
    result = runner.invoke(app, ["freebusy", EMMA, "--start", "2026-11-23", "--end", "2026-11-28",
                                 "--format", fmt, "-c", str(config)], env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.mark.parametrize("data", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_unreadable_file_is_unknown_not_free_in_json(tmp_path: Path, data: bytes) -> None:
    code, output = freebusy(config_with(tmp_path, data), "json")
    assert code == 3, output
    (emma,) = json.loads(output)["people"]
    assert [b["type"] for b in emma["busy"]] == ["unknown"]
    assert "projects" in emma["error"] and f"{EMMA}.ics" in emma["error"]


def test_unreadable_file_is_unknown_in_the_table_and_the_vfreebusy(tmp_path: Path) -> None:
    config = config_with(tmp_path, UNREADABLE["garbage"])
    code, table = freebusy(config, "table")
    assert code == 3 and "?" in table and "unreadable" in table
    code, text = freebusy(config, "ics")
    (fb,) = icalendar.Calendar.from_ical(text[text.index("BEGIN:VCALENDAR"):]).walk("VFREEBUSY")
    assert fb["FREEBUSY"].params["FBTYPE"] == "X-UNKNOWN"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "latin-1"])
def test_utf16_and_latin1_files_are_read(tmp_path: Path, encoding: str) -> None:
    code, output = freebusy(config_with(tmp_path, GOOD.encode(encoding)), "json")
    assert code == 0, output
    (emma,) = json.loads(output)["people"]
    assert [(b["start"], b["type"]) for b in emma["busy"]] == [("2026-11-24T11:00:00+01:00", "busy")]


def test_a_valid_empty_calendar_is_free(tmp_path: Path) -> None:
    config = config_with(tmp_path, b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n")
    code, output = freebusy(config, "json")
    assert code == 0 and json.loads(output)["people"][0]["busy"] == []
    assert runner.invoke(app, ["check", "-c", str(config)]).exit_code == 0


@pytest.mark.parametrize("data", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_check_fails_on_an_unreadable_file(tmp_path: Path, data: bytes) -> None:
    result = runner.invoke(app, ["check", "-c", str(config_with(tmp_path, data))], env={"COLUMNS": "200"})
    assert result.exit_code == 3 and "failed" in result.output and f"{EMMA}.ics" in result.output


def test_endless_secondly_rule_answers_unknown_and_exits(tmp_path: Path) -> None:
    """Before the work bound this command ran for hours; now it ends, with the time unknown."""
    data = GOOD.replace("DTSTART:20261124T100000Z\r\nDTEND:20261124T110000Z",
                        "DTSTART:20200101T100000Z\r\nDURATION:PT1S\r\nRRULE:FREQ=SECONDLY")
    code, output = freebusy(config_with(tmp_path, data.encode()), "json")
    assert code == 3, output
    (emma,) = json.loads(output)["people"]
    assert [b["type"] for b in emma["busy"]] == ["unknown"] and "too costly" in emma["error"]


def test_rrule_typo_keeps_the_first_instance_and_the_rest_is_unknown(tmp_path: Path) -> None:
    data = GOOD.replace("SUMMARY", "RRULE:FREQ=DAILY;UNTL=20261130T000000Z\r\nSUMMARY")
    code, output = freebusy(config_with(tmp_path, data.encode()), "json")
    assert code == 3, output
    (emma,) = json.loads(output)["people"]
    assert [(b["start"], b["end"], b["type"]) for b in emma["busy"]] == [
        ("2026-11-24T11:00:00+01:00", "2026-11-24T12:00:00+01:00", "busy"),
        ("2026-11-24T12:00:00+01:00", "2026-11-28T00:00:00+01:00", "unknown")]
    # the CLI answers the local operator, who may read which series (the server's doors count it
    # for askers not granted the details: tests/server/test_server_privacy.py)
    assert "'Café' (UID a)" in emma["error"]
