"""VALARMs as the reminders Exchange (EWS, Graph) and Google hold, and back.

Those platforms keep no VALARM: EWS and Graph keep one reminder, minutes before the start
(``ReminderIsSet``/``ReminderMinutesBeforeStart``, ``isReminderOn``/``reminderMinutesBeforeStart``);
Google keeps up to five, each minutes before the start with a method (``popup`` or ``email``).
An alarm is held only when it is such a reminder: a TRIGGER that is a duration before (or at)
the start (RFC 5545 3.8.6.3, RELATED=START, the default). Triggers after the start or relative to
the end, absolute triggers and repeats have no place there; :func:`reminders` says which were
left out, so the caller reports it (:class:`calmesh.connectors.base.Adaptation`), never silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import icalendar


@dataclass(frozen=True, slots=True)
class Reminder:
    minutes: int
    """Minutes before the start (0: at the start)."""
    email: bool = False
    """ACTION:EMAIL (Google's ``email`` method); DISPLAY and AUDIO are a pop-up."""


def _reminder(text: str) -> Reminder | None:
    """The reminder one VALARM stands for, or None when it is not one (see module docstring)."""
    try:
        alarm = icalendar.Alarm.from_ical(text)
    except ValueError:
        return None
    trigger = alarm.get("TRIGGER")
    if trigger is None or alarm.get("REPEAT") is not None:
        return None
    related = str(trigger.params.get("RELATED", "START")).upper()
    value = trigger.dt
    if related != "START" or not isinstance(value, timedelta) or value > timedelta(0):
        return None
    seconds = int(-value.total_seconds())
    if seconds % 60:
        return None
    return Reminder(seconds // 60, str(alarm.get("ACTION", "DISPLAY")).upper() == "EMAIL")


def reminders(alarms: list[str], most: int, longest: int | None = None) -> tuple[list[Reminder], list[str]]:
    """The reminders (at most ``most``, in their order, none more than ``longest`` minutes
    before the start) that ``alarms`` stand for, and a description of each alarm left out."""
    held: list[Reminder] = []
    left: list[str] = []
    for text in alarms:
        found = _reminder(text)
        trigger = next((line for line in text.splitlines() if line.upper().startswith("TRIGGER")), "no TRIGGER")
        if found is None:
            left.append(f"{trigger.strip()} (not minutes before the start)")
        elif found in held:
            continue
        elif longest is not None and found.minutes > longest:
            left.append(f"{trigger.strip()} (at most {longest} minutes before)")
        elif len(held) >= most:
            left.append(f"{trigger.strip()} (only {most} reminder{'s' if most > 1 else ''} kept)")
        else:
            held.append(found)
    return held, left


def alarm(reminder: Reminder) -> str:
    """The VALARM a platform's reminder reads back as (DISPLAY, or EMAIL for Google's email)."""
    component = icalendar.Alarm()
    component.add("ACTION", "EMAIL" if reminder.email else "DISPLAY")
    component.add("DESCRIPTION", "Reminder")
    component.add("TRIGGER", -timedelta(minutes=reminder.minutes))
    if reminder.email:
        component.add("SUMMARY", "Reminder")
    return component.to_ical().decode()
