"""The JSON API's person object, written as text (``person_json_bytes``): byte for byte what
``json.dumps`` gives for the ``PersonFreeBusy`` schema's object, whatever the strings hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calmesh.core.freebusy import availability_view
from calmesh.model import (
    BusyPeriod,
    BusyType,
    PersonFreeBusy,
    Problem,
    Window,
    WorkingHours,
    WorkingPeriod,
    shown,
)
from calmesh.services.answer_json import (
    error_text,
    person_json,
    person_json_bytes,
    working_hours_json,
)

WINDOW = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
TEXTS = (None, "Budget review", 'Quote " and \\ backslash', "tab\there\nnewline", "Zoë, 会議 🎉", "line\u2028sep\x00nul")
NAMES = {BusyType.BUSY_TENTATIVE: "tentative", BusyType.BUSY: "busy", BusyType.BUSY_UNAVAILABLE: "oof",
         BusyType.UNKNOWN: "unknown"}


def schema_object(person: PersonFreeBusy, zone: tzinfo, interval: timedelta, details: bool | None) -> dict[str, Any]:
    """The object the OpenAPI document describes, field by field (the test's own reading of it)."""
    busy = []
    for p in person.busy:
        entry = {"start": p.start.astimezone(zone).isoformat(), "end": p.end.astimezone(zone).isoformat(),
                 "type": NAMES[p.type]}
        entry |= {k: v for k, v in (("summary", p.summary), ("location", p.location)) if v is not None}
        busy.append(entry)
    return {"email": person.email, "name": person.name, "platform": person.platform, "busy": busy,
            "availability_view": availability_view(person.busy, person.window, interval),
            "working_hours": working_hours_json(person.working_hours), "error": error_text(person, details),
            "warnings": shown(person.warnings, details)}


def people() -> list[PersonFreeBusy]:
    hours = WorkingHours("Europe/Paris", (WorkingPeriod(frozenset(range(5)), time(9), time(17, 30)),))
    out = []
    for n, text in enumerate(TEXTS):
        start = WINDOW.start + timedelta(hours=7 + 13 * n, minutes=5 * n)
        busy = [BusyPeriod(start + timedelta(hours=3 * k), start + timedelta(hours=3 * k, minutes=45), kind, "p",
                           text, TEXTS[-1 - n]) for k, kind in enumerate(NAMES)]
        out.append(PersonFreeBusy(f"person{n}@example.com", WINDOW, busy, hours if n % 2 else None,
                                  errors=[Problem("p", f"down: {text}")] if text else [],
                                  warnings=[Problem("p", f"odd item {text}", f"uid-{n}")] if n % 3 else [],
                                  name=text, platform="p" if n % 2 else None))
    return out


@pytest.mark.parametrize("zone", [UTC, timezone(timedelta(hours=5, minutes=30)), ZoneInfo("America/New_York")])
@pytest.mark.parametrize("details", [False, True, None])
def test_the_text_is_what_json_dumps_gives_for_the_schema_object(zone: tzinfo, details: bool | None) -> None:
    for person in people():
        expected = json.dumps(schema_object(person, zone, timedelta(minutes=30), details), ensure_ascii=False,
                              allow_nan=False, separators=(",", ":")).encode()
        assert person_json_bytes(person, zone, timedelta(minutes=30), details) == expected
        assert person_json(person, zone, timedelta(minutes=30), details) == json.loads(expected)
