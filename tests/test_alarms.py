"""VALARMs as the reminders Exchange and Google hold (calmesh.alarms): which alarms are reminders,
which are left out and why, and the alarm a reminder reads back as."""

from __future__ import annotations

from calmesh.alarms import Reminder, alarm, reminders


def valarm(*lines: str) -> str:
    return "BEGIN:VALARM\r\n" + "\r\n".join(lines) + "\r\nEND:VALARM\r\n"


def test_minutes_before_the_start_are_reminders_in_order() -> None:
    alarms = [valarm("ACTION:DISPLAY", "TRIGGER:-PT15M"), valarm("ACTION:EMAIL", "TRIGGER;RELATED=START:-P1D"),
              valarm("ACTION:AUDIO", "TRIGGER:PT0S")]
    assert reminders(alarms, 5) == ([Reminder(15), Reminder(1440, email=True), Reminder(0)], [])


def test_what_no_reminder_can_say_is_left_out_with_its_trigger() -> None:
    alarms = [valarm("ACTION:DISPLAY", "TRIGGER:PT10M"), valarm("ACTION:DISPLAY", "TRIGGER;RELATED=END:-PT5M"),
              valarm("ACTION:DISPLAY", "TRIGGER;VALUE=DATE-TIME:20260105T090000Z"),
              valarm("ACTION:DISPLAY", "TRIGGER:-PT5M", "REPEAT:2", "DURATION:PT1M")]
    kept, left = reminders(alarms, 5)
    assert kept == []
    assert [why.split(" (")[0] for why in left] == ["TRIGGER:PT10M", "TRIGGER;RELATED=END:-PT5M",
                                                    "TRIGGER;VALUE=DATE-TIME:20260105T090000Z", "TRIGGER:-PT5M"]


def test_beyond_the_platforms_count_and_reach_is_left_out() -> None:
    alarms = [valarm("ACTION:DISPLAY", "TRIGGER:-PT15M"), valarm("ACTION:DISPLAY", "TRIGGER:-PT30M"),
              valarm("ACTION:DISPLAY", "TRIGGER:-P5W")]
    kept, left = reminders(alarms, 1, longest=40320)
    assert kept == [Reminder(15)]
    assert left == ["TRIGGER:-PT30M (only 1 reminder kept)", "TRIGGER:-P5W (at most 40320 minutes before)"]


def test_a_reminder_reads_back_as_the_alarm_it_was() -> None:
    for reminder in (Reminder(15), Reminder(0), Reminder(60, email=True)):
        assert reminders([alarm(reminder)], 1)[0] == [reminder]
