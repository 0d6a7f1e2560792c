"""``calmesh move`` and ``calmesh cancel`` on the two iCalendar-folder platforms of
test_cli_schedule (the ICS connector): what an operator types and reads. Dates are in 2030
because the commands measure "in the past" from the real clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_schedule import ALICE, CARLA, config, invoke  # noqa: F401 - config is a fixture

from calmesh.connectors.base import TransientError
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.fakes.ews import EWSFake
from calmesh.model import CalendarItem, Event, EventStatus

DORA = "dora@agency.example"


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

    kept = invoke(config, "move", uid, "-o", ALICE, "--start", "2030-03-07T16:00")  # no --end: same length
    assert kept.exit_code == 0, kept.output
    assert f"Moved {uid} to 2030-03-07 16:00–17:00 (Europe/Paris)" in kept.output
    copy = carla_copy(tmp_path, uid)
    assert (copy.start.isoformat(), copy.end.isoformat(), copy.sequence) == (
        "2030-03-07T16:00:00+01:00", "2030-03-07T17:00:00+01:00", 2)

    taken = invoke(config, "move", uid, "-o", CARLA, "--start", "2030-03-07T17:00", "--end", "2030-03-07T18:00")
    assert taken.exit_code == 1 and f"{CARLA} is an attendee of {uid}" in " ".join(taken.output.split())
    assert carla_copy(tmp_path, uid).start.isoformat() == "2030-03-07T16:00:00+01:00"

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


def test_booking_moving_and_cancelling_keep_what_calmesh_cannot_read(config: Path, tmp_path: Path) -> None:  # noqa: F811
    """Each write of ``book``, ``move`` and ``cancel`` into an iCalendar file leaves the events
    calmesh cannot read there (and whatever else it does not model) byte for byte (regression:
    booking rewrote the file from what was read, and they were gone)."""
    broken = (b"BEGIN:VEVENT\r\nUID:dentist\r\nSUMMARY:Dentist\r\nDTSTART:2030-03-07 at nine\r\nEND:VEVENT\r\n"
              b"BEGIN:VTODO\r\nUID:todo\r\nSUMMARY:Call back\r\nEND:VTODO\r\n")
    files = [tmp_path / "zoho" / f"{ALICE}.ics", tmp_path / "exchange" / f"{CARLA}.ics"]
    for path in files:
        path.write_bytes(path.read_bytes().replace(b"END:VCALENDAR", broken + b"END:VCALENDAR"))
    booked = invoke(config, "book", CARLA, "-o", ALICE, "--start", "2030-03-07T15:00", "--duration", "60",
                    "--title", "Atlas kick-off", "--format", "json")
    assert booked.exit_code == 0, booked.output
    uid = json.loads(booked.output)["uid"]
    assert all(broken in path.read_bytes() and uid.encode() in path.read_bytes() for path in files)
    moved = invoke(config, "move", uid, "-o", ALICE, "--start", "2030-03-07T15:30", "--end", "2030-03-07T16:30")
    assert moved.exit_code == 0, moved.output
    assert all(broken in path.read_bytes() for path in files)
    cancelled = invoke(config, "cancel", uid, "-o", ALICE)
    assert cancelled.exit_code == 0, cancelled.output
    assert all(broken in path.read_bytes() for path in files)
    assert carla_copy(tmp_path, uid).status is EventStatus.CANCELLED


def test_a_move_says_what_a_calendar_holds_another_way(config: Path, tmp_path: Path,  # noqa: F811
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``move`` prints, as ``sync`` does, what a calendar written to cannot hold as it is: Alice's
    copy has two alarms, Dora's Exchange (the EWS fake, calmesh.fakes.ews, protocol-faithful to
    EWS's one reminder per item) keeps one. The JSON answer carries the same notices."""
    fake = EWSFake(users={"svc": "svc-pw"})
    fake.add_mailbox(DORA, "America/New_York")
    fake.start()
    monkeypatch.setenv("CALMESH_TEST_EWS_PW", "svc-pw")
    with config.open("a") as fh:
        fh.write(f'\n[platforms.ews]\nkind = "ews"\nservice_endpoint = "{fake.ews_url}"\nauth = "basic"\n'
                 f'username = "svc"\npassword_env = "CALMESH_TEST_EWS_PW"\nserver_version = "Exchange2016"\n'
                 f'mailboxes = ["{DORA}"]\n[[people]]\nemail = "{DORA}"\nname = "Dora Park"\nplatform = "ews"\n'
                 f'calendars = ["{DORA}"]\ntimezone = "America/New_York"\n')
    try:
        booked = invoke(config, "book", DORA, "-o", ALICE, "--start", "2030-03-07T15:00", "--duration", "60",
                        "--title", "Atlas kick-off", "--format", "json")
        assert booked.exit_code == 0, booked.output
        uid = json.loads(booked.output)["uid"]
        zoho = ICSConnector("zoho", ICSSettings(kind="ics", path=str(tmp_path / "zoho")))
        (mine,) = [i for i in zoho.items(f"{ALICE}.ics")[0] if i.uid == uid]
        alarms = [f"BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT{m}M\r\nEND:VALARM\r\n" for m in (15, 60)]
        zoho.put(f"{ALICE}.ics", CalendarItem(uid, [mine.components[0].with_changes(alarms=alarms)], mine.ref),
                 if_match=mine.ref.etag if mine.ref else None)
        moved = invoke(config, "move", uid, "-o", ALICE, "--start", "2030-03-07T15:30", "--end", "2030-03-07T16:30")
        assert moved.exit_code == 0, moved.output
        assert f"! ews:{DORA}: UID {uid}: VALARM: 1 alarm(s) left out" in " ".join(moved.output.split())
        again = invoke(config, "move", uid, "-o", ALICE, "--start", "2030-03-07T16:00", "--end", "2030-03-07T17:00",
                       "--format", "json")
        assert again.exit_code == 0, again.output
        (adapted,) = json.loads(again.output)["adapted"]
        assert (adapted["member"], adapted["feature"], adapted["written"]) == (f"ews:{DORA}", "VALARM", True)
    finally:
        fake.stop()


def test_a_move_a_calendar_missed_is_owed_then_delivered(config: Path, tmp_path: Path,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Carla's platform fails its writes while Alice moves the meeting: the move says the copy is
    owed, and ``calmesh deliver`` writes it once the platform takes writes again."""
    booked = invoke(config, "book", CARLA, "-o", ALICE, "--start", "2030-03-07T15:00", "--duration", "60",
                    "--title", "Atlas kick-off", "--format", "json")
    uid = json.loads(booked.output)["uid"]
    assert "nothing owed" in invoke(config, "deliver").output

    put = ICSConnector.put

    def down(self: ICSConnector, calendar: str, item: CalendarItem, if_match: str | None = None) -> object:
        if self.name == "exchange":
            raise TransientError("exchange", "no answer in time")
        return put(self, calendar, item, if_match=if_match)

    with monkeypatch.context() as patched:
        patched.setattr(ICSConnector, "put", down)
        moved = invoke(config, "move", uid, "-o", ALICE, "--start", "2030-03-07T16:00")
        assert moved.exit_code == 4, moved.output
        assert "calmesh writes it there once the platform answers" in " ".join(moved.output.split())
        still = invoke(config, "deliver", "--format", "json")
        assert still.exit_code == 4 and json.loads(still.output)["deliveries"][0]["owed"] is True
    status = invoke(config, "status")
    assert status.exit_code == 0, status.output
    assert f"owed meeting {uid} to Carla Jones (Carla Jones's calendar on exchange): 2 failed attempts, the last: " \
           "exchange: no answer in time" in " ".join(status.output.split())
    [owed] = json.loads(invoke(config, "status", "--format", "json").output)["owed_deliveries"]
    assert (owed["uid"], owed["email"], owed["attempts"]) == (uid, CARLA, 2)
    assert carla_copy(tmp_path, uid).start.isoformat() == "2030-03-07T15:00:00+01:00"

    delivered = invoke(config, "deliver")
    assert delivered.exit_code == 0, delivered.output
    assert f"{uid} for Carla Jones (Carla Jones's calendar on exchange): written" in delivered.output
    assert carla_copy(tmp_path, uid).start.isoformat() == "2030-03-07T16:00:00+01:00"
    assert "nothing owed" in invoke(config, "deliver").output
    assert json.loads(invoke(config, "status", "--format", "json").output)["owed_deliveries"] == []
