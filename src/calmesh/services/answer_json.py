"""A person's free/busy answer as JSON: the one schema of the JSON API (``FreeBusyAnswer`` in its
OpenAPI document) and of ``calmesh freebusy --format json``, rendered per asker.

It lives apart from the server so that the command line renders the same answer without
importing the web stack or the state store (issue 16: a command imports what it uses).
"""

from __future__ import annotations

from datetime import timedelta, tzinfo
from typing import Any

from calmesh.core.freebusy import availability_view
from calmesh.model import BusyType, PersonFreeBusy, WorkingHours, shown
from calmesh.services.public_errors import publicise

_TYPE_NAMES = {BusyType.BUSY_TENTATIVE: "tentative", BusyType.BUSY: "busy",
               BusyType.BUSY_UNAVAILABLE: "oof", BusyType.UNKNOWN: "unknown"}
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def working_hours_json(hours: WorkingHours | None) -> dict[str, Any] | None:
    if hours is None:
        return None
    return {"timezone": hours.timezone,
            "periods": [{"days": [_DAY_NAMES[d] for d in sorted(p.days)],
                         "start": p.start.strftime("%H:%M"), "end": p.end.strftime("%H:%M")}
                        for p in hours.periods]}


def error_text(person: PersonFreeBusy, details: bool | None = False) -> str | None:
    """Why some of ``person``'s time is missing, as an asker may read it: platforms in public words
    only (the cause is in the server's log), items as :func:`shown` allows."""
    errors = person.errors if details is None else publicise(person.errors)  # None: the local operator
    return "; ".join(dict.fromkeys(shown(errors, details))) or None


def person_json(person: PersonFreeBusy, zone: tzinfo, interval: timedelta, details: bool | None) -> dict[str, Any]:
    """One person's answer as the JSON API gives it; ``details`` as :func:`calmesh.model.shown`
    takes it (None: the local operator, on the command line)."""
    busy = []
    for period in person.busy:
        entry: dict[str, Any] = {"start": period.start.astimezone(zone).isoformat(),
                                 "end": period.end.astimezone(zone).isoformat(),
                                 "type": _TYPE_NAMES.get(period.type, "busy")}
        if period.summary is not None:
            entry["summary"] = period.summary
        if period.location is not None:
            entry["location"] = period.location
        busy.append(entry)
    return {
        "email": person.email,
        "name": person.name,
        "platform": person.platform,
        "busy": busy,
        "availability_view": availability_view(person.busy, person.window, interval),
        "working_hours": working_hours_json(person.working_hours),
        "error": error_text(person, details),
        "warnings": shown(person.warnings, details),
    }
