"""A person's free/busy answer as JSON: the one schema of the JSON API (``FreeBusyAnswer`` in its
OpenAPI document) and of ``calmesh freebusy --format json``, rendered per asker.

It lives apart from the server so that the command line renders the same answer without
importing the web stack or the state store (issue 16: a command imports what it uses).
"""

from __future__ import annotations

import json
from datetime import timedelta, tzinfo
from functools import lru_cache
from typing import Any

from calmesh.core.freebusy import availability_view
from calmesh.model import BusyType, PersonFreeBusy, WorkingHours, shown
from calmesh.services.public_errors import publicise

_TYPE_NAMES = {BusyType.BUSY_TENTATIVE: "tentative", BusyType.BUSY: "busy",
               BusyType.BUSY_UNAVAILABLE: "oof", BusyType.UNKNOWN: "unknown"}
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_TYPE_FIELDS = {kind: f',"type":"{name}"' for kind, name in _TYPE_NAMES.items()}
_BUSY_FIELD = ',"type":"busy"'
_text = json.JSONEncoder(ensure_ascii=False).encode
"""A string as JSON, exactly as ``json.dumps(..., ensure_ascii=False)`` writes it (the C encoder)."""


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
    """One person's answer as the JSON API gives it, as a dict (the command line adds the window
    asked before writing it); ``details`` as :func:`calmesh.model.shown` takes it (None: the
    local operator, on the command line). Read back from :func:`person_json_bytes`, so both doors
    give the same answer from one renderer."""
    answer: dict[str, Any] = json.loads(person_json_bytes(person, zone, interval, details))
    return answer


def person_json_bytes(person: PersonFreeBusy, zone: tzinfo, interval: timedelta, details: bool | None) -> bytes:
    """One person's answer as the JSON API sends it: the bytes ``json.dumps`` gives for the
    ``PersonFreeBusy`` schema's object (``ensure_ascii=False``, no spaces, UTF-8), written
    straight as text.

    Why not build a dict and ``json.dumps`` it: a cold answer for 1,000 people renders 1,000
    objects of ~16 busy periods and ~500 digits each, and building the dicts and walking them in
    the encoder was about a third of that rendering (measured on such objects). Times, digits and
    type names never need escaping; every free text (names, summaries, locations, errors,
    warnings) goes through the json module's own string encoder.
    ``tests/services/test_answer_json.py`` checks the bytes against ``json.dumps`` of the
    schema's object."""
    busy = []
    for period in person.busy:
        entry = (f'{{"start":"{period.start.astimezone(zone).isoformat()}",'
                 f'"end":"{period.end.astimezone(zone).isoformat()}"{_TYPE_FIELDS.get(period.type, _BUSY_FIELD)}')
        if period.summary is not None:
            entry += ',"summary":' + _text(period.summary)
        if period.location is not None:
            entry += ',"location":' + _text(period.location)
        busy.append(entry + "}")
    return "".join((
        '{"email":', _text(person.email),
        ',"name":', _nullable(person.name),
        ',"platform":', _nullable(person.platform),
        ',"busy":[', ",".join(busy),
        '],"availability_view":"', availability_view(person.busy, person.window, interval),
        '","working_hours":', _working_hours_text(person.working_hours),
        ',"error":', _nullable(error_text(person, details)),
        ',"warnings":[', ",".join(_text(w) for w in shown(person.warnings, details)),
        "]}",
    )).encode()


def _nullable(value: str | None) -> str:
    return "null" if value is None else _text(value)


@lru_cache(maxsize=1024)
def _working_hours_text(hours: WorkingHours | None) -> str:
    """Working hours as JSON: the same few objects for everybody (from the config), written once."""
    return json.dumps(working_hours_json(hours), ensure_ascii=False, separators=(",", ":"))
