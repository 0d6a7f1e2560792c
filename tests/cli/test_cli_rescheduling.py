"""``calmesh move`` and ``calmesh cancel`` on the two iCalendar-folder platforms of
test_cli_schedule (the ICS connector): what an operator types and reads. Dates are in 2030
because the commands measure "in the past" from the real clock."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli_schedule import ALICE, CARLA, config, invoke  # noqa: F401 - config is a fixture

from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.model import Event, EventStatus


def carla_copy(tmp_path: Path, uid: str) -> Event:
    items, _ = ICSConnector("exchange", ICSSettings(kind="ics", path=str(tmp_path / "exchange"))).items(f"{CARLA}.ics")
    (item,) = [i for i in items if i.uid == uid]
    return item.components[0]


def test_book_move_and_cancel(config: Path, tmp_path: Path) -> None:  # noqa: F811
    booked = invoke(config, "book", CARLA, "-o", ALICE, "--start", "2030-03-07T15:00", "--duration", "60",
                    "--title", "Atlas kick-off", "--format", "json")
    assert booked.exit_code == 0, booked.output
    uid = json.loads(booked.output)["uid"]

    moved = invoke(config, "move", uid, "-o", ALICE, "--start", "2030-03-07T15:30", "--end", "2030-03-07T16:30")
    assert moved.exit_code == 0, moved.output
    assert f"Moved {uid} to 2030-03-07 15:30–16:30 (Europe/Paris)" in moved.output
    assert "Carla Jones: calendar (Carla Jones's calendar on exchange)" in moved.output  # by name, not by id
    copy = carla_copy(tmp_path, uid)
    assert (copy.start.isoformat(), copy.sequence) == ("2030-03-07T15:30:00+01:00", 1)

    taken = invoke(config, "move", uid, "-o", CARLA, "--start", "2030-03-07T17:00", "--end", "2030-03-07T18:00")
    assert taken.exit_code == 1 and f"{CARLA} is an attendee of {uid}" in " ".join(taken.output.split())
    assert carla_copy(tmp_path, uid).start.isoformat() == "2030-03-07T15:30:00+01:00"

    clash = invoke(config, "move", uid, "-o", ALICE, "--start", "2030-03-06T14:00", "--end", "2030-03-06T15:00")
    assert clash.exit_code == 1 and "carla@agency.example (busy)" in clash.output  # Carla's pipeline meeting

    cancelled = invoke(config, "cancel", uid, "-o", ALICE, "--reason", "Postponed", "--format", "json")
    assert cancelled.exit_code == 0, cancelled.output
    assert [d["method"] for d in json.loads(cancelled.output)["deliveries"]] == ["organizer", "calendar"]
    assert carla_copy(tmp_path, uid).status is EventStatus.CANCELLED


def test_refusals_are_clear(config: Path) -> None:  # noqa: F811
    missing = invoke(config, "cancel", "nope@agency.example", "-o", ALICE)
    assert missing.exit_code == 1 and "no meeting with UID nope@agency.example" in missing.output
    theirs = invoke(config, "cancel", "atlas@agency.example", "-o", ALICE)  # Carla organises it
    assert theirs.exit_code == 1 and "only its organiser can cancel it" in theirs.output
