"""``calmesh conflicts``, ``duplicates``, ``find-time``, ``book`` and ``inbox`` on a config of two
iCalendar-folder platforms (the ICS connector): what an operator types and reads. Dates are in
2030 because ``find-time`` and ``book`` measure notice from the real clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from calmesh.cli import app
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.model import Attendee, CalendarItem, Event, PartStat
from calmesh.services import itip

runner = CliRunner()
ALICE, CARLA = "alice@agency.example", "carla@agency.example"
PARIS = ZoneInfo("Europe/Paris")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2030, 3, day, hour, minute, tzinfo=PARIS)


def put(root: Path, platform: str, owner: str, *events: Event) -> None:
    connector = ICSConnector(platform, ICSSettings(kind="ics", path=str(root / platform)))
    for event in events:
        connector.put(f"{owner}.ics", CalendarItem(event.uid, [event]))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    carla = Attendee(CARLA, "Carla Jones", PartStat.ACCEPTED)
    for platform in ("zoho", "exchange"):
        (tmp_path / platform).mkdir()
    put(tmp_path, "zoho", ALICE,
        Event("call", at(4, 10), at(4, 11), "Client call"),
        Event("atlas@agency.example", at(5, 14), at(5, 15), "Atlas review", organizer=carla,
              attendees=[carla, Attendee(ALICE)]))
    put(tmp_path, "exchange", ALICE,
        Event("review", at(4, 10, 30), at(4, 11, 30), "Design review"),
        Event("ATLAS@AGENCY.EXAMPLE", at(5, 14), at(5, 15), "Atlas review", organizer=carla,
              attendees=[carla, Attendee(ALICE)]))
    put(tmp_path, "exchange", CARLA, Event("pipeline", at(6, 14), at(6, 15), "Pipeline"))
    path = tmp_path / "calmesh.toml"
    path.write_text(f"""
[hub]
timezone = "Europe/Paris"
state = "sqlite:///state.sqlite"
[platforms.zoho]
kind = "ics"
path = "zoho"
[platforms.exchange]
kind = "ics"
path = "exchange"
[[people]]
email = "{ALICE}"
name = "Alice Martin"
platform = "zoho"
calendars = ["{ALICE}.ics"]
working_hours = {{ days = "Mon-Fri", start = "09:00", end = "18:00" }}
also = [{{ platform = "exchange", calendars = ["{ALICE}.ics"] }}]
[[people]]
email = "{CARLA}"
name = "Carla Jones"
platform = "exchange"
calendars = ["{CARLA}.ics"]
timezone = "America/New_York"
working_hours = {{ days = "Mon-Fri", start = "08:30", end = "17:00" }}
""")
    return path


def invoke(config: Path, *args: str, stdin: bytes | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [*args, "-c", str(config)], input=stdin, env={"COLUMNS": "200"})


def test_conflicts_table_and_json(config: Path) -> None:
    result = invoke(config, "conflicts", "--person", ALICE, "--start", "2030-03-04", "--end", "2030-03-09")
    assert result.exit_code == 0, result.output
    assert "Client" in result.output and "Design" in result.output and "exchange" in result.output
    assert "Atlas" not in result.output  # one meeting in two calendars is a duplicate, not a conflict
    result = invoke(config, "conflicts", "-p", "*", "--start", "2030-03-04", "--end", "2030-03-09", "--format", "json")
    data = json.loads(result.stdout)
    (conflict,) = data["people"][0]["conflicts"]
    assert conflict["platforms"] == ["exchange", "zoho"] and conflict["start"] == "2030-03-04T10:30:00+01:00"
    assert data["people"][1]["conflicts"] == []


def test_duplicates_and_a_dry_run_resolution(config: Path, tmp_path: Path) -> None:
    result = invoke(config, "duplicates", "--start", "2030-03-04", "--end", "2030-03-09", "--format", "json",
                    "--resolve")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (group,) = data["people"][0]["duplicates"]
    assert group["score"] == 1.0 and group["same_uid"] and "same UID" in group["reason"]
    assert data["dry_run"] is True
    assert [(r["platform"], r["uid"]) for r in data["removals"]] == [("zoho", "atlas@agency.example")]
    assert "ATLAS" in (tmp_path / "exchange" / f"{ALICE}.ics").read_text()  # nothing deleted
    assert "atlas@agency.example" in (tmp_path / "zoho" / f"{ALICE}.ics").read_text()
    table = invoke(config, "duplicates", "--start", "2030-03-04", "--end", "2030-03-09", "--resolve")
    assert "Dry run: 1 copy would be removed" in table.output and "--apply" in table.output


def test_apply_needs_resolve(config: Path) -> None:
    result = invoke(config, "duplicates", "--apply")
    assert result.exit_code == 1 and "--apply needs --resolve" in result.output


def test_find_time_book_and_reply(config: Path, tmp_path: Path) -> None:
    result = invoke(config, "find-time", CARLA, "-o", ALICE, "--duration", "60", "--start", "2030-03-06",
                    "--end", "2030-03-07", "--format", "json")
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)["suggestions"][0]
    # Carla starts 08:30 in New York (13:30 UTC = 14:30 Paris) but is busy 14:00-15:00 Paris
    assert first["start"] == "2030-03-06T15:00:00+01:00"
    table = invoke(config, "find-time", CARLA, "-o", ALICE, "--start", "2030-03-06", "--end", "2030-03-07")
    assert "Suggested times" in table.output and "Carla Jones" in table.output

    booked = invoke(config, "book", CARLA, "-o", ALICE, "--start", first["start"], "--duration", "60",
                    "--title", "Atlas kick-off", "--format", "json")
    assert booked.exit_code == 0, booked.output
    booking = json.loads(booked.output)
    assert [d["method"] for d in booking["deliveries"]] == ["organizer", "calendar"]

    carla_copy = ICSConnector("exchange", ICSSettings(kind="ics", path=str(tmp_path / "exchange")))
    items, _ = carla_copy.items(f"{CARLA}.ics")
    (meeting,) = [i for i in items if i.uid == booking["uid"]]
    reply = tmp_path / "reply.ics"
    reply.write_bytes(itip.reply(meeting, CARLA, PartStat.DECLINED))
    done = invoke(config, "inbox", str(reply))
    assert done.exit_code == 0, done.output
    assert f"REPLY for {booking['uid']}: {CARLA} DECLINED" in done.output

    again = invoke(config, "book", CARLA, "-o", ALICE, "--start", "2030-03-06T14:00:00+01:00", "--duration", "30",
                   "--title", "Clash")
    assert again.exit_code == 1 and "carla@agency.example (busy) became busy" in again.output


def test_inbox_reads_stdin_and_refuses_garbage(config: Path) -> None:
    result = invoke(config, "inbox", stdin=b"not a calendar")
    assert result.exit_code == 1 and "error:" in result.output


def test_book_in_the_past_is_refused(config: Path) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    result = invoke(config, "book", CARLA, "-o", ALICE, "--start", past, "--title", "Late")
    assert result.exit_code == 1 and "in the past" in result.output


def test_apply_then_undo_from_the_log(config: Path, tmp_path: Path) -> None:
    window = ["--start", "2030-03-04", "--end", "2030-03-09"]
    result = invoke(config, "duplicates", *window, "--resolve", "--apply", "--format", "json")
    assert result.exit_code == 0, result.output
    (applied,) = json.loads(result.stdout)["applied"]
    assert applied["error"] is None and applied["platform"] == "zoho"
    assert "atlas@agency.example" not in (tmp_path / "zoho" / f"{ALICE}.ics").read_text()
    assert (tmp_path / "state.sqlite").exists()  # the deletion log, next to the config

    result = invoke(config, "duplicates", "--undo", str(applied["log_id"]))
    assert result.exit_code == 0, result.output
    assert "restored" in result.output
    assert "atlas@agency.example" in (tmp_path / "zoho" / f"{ALICE}.ics").read_text()
    again = invoke(config, "duplicates", "--undo", "424242")
    assert again.exit_code == 1 and "cannot undo 424242" in again.output
