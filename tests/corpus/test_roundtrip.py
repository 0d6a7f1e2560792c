"""Corpus: each file's events synced through real servers; every copy must be the same event.

The file's objects (cut per UID, as a CalDAV server stores them, see expansion.split_objects) are
PUT as they are on a Radicale calendar; the real sync engine then copies them to a calendar on a
second Radicale server and to one on Xandikos. Each copy is compared with its original, as stored
on each server: the occurrences calmesh reads from it in UTC over the file's windows (start, end,
transparency, status, summary), the zone of its DTSTART, its CLASS values and its alarms.
Objects Radicale refuses, and events without UID, are left out and named.

The sample is bounded (a few unmarked files, the rest of the sample ``slow``) so the suite stays
within a couple of minutes on a busy 2-core machine.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sync.peers import Group, Peer  # tests/sync, a sibling package on the test path

from .copies import put_object, same_zones, shape, stored_objects
from .expansion import calmesh_side, split_objects, windows
from .known import ISSUE_13 as EXPANSION_BUGS
from .sources import CorpusFile, by_id, corpus

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

FAST = ("icalendar/calendars/issue_466_convert_tzid_with_slash.ics",
        "icalendar/events/rfc_9074_example_2.ics",
        "recurring-ical-events/issue_62_moved_event_2.ics")
SAMPLE_SIZE = 40
"""How many corpus files the slow round trip takes (every n-th of the files with events)."""
MAX_EVENTS = 20
"""Larger files are left out of the sample: a 160-event holiday file alone takes 90 s to sync."""

ROUNDTRIP_13: dict[str, str] = {}
"""Files whose copies differ today because of issue 13 (strict xfail: delete when they XPASS);
empty since custom zones, alarms and floating DTENDs are kept (the zone check of copies.py takes
an IANA zone for a definition it matches, the alarm check compares durations, not spellings)."""

_NOT_COPIED = ("has no copy", "DTEND before DTSTART is invalid (RFC 5545 3.8.2.2): calmesh does "
               "not copy the event and names it in a problem")
_NO_DEFINITION = ("copy ['floating or date']",
                  "a TZID ('Western/Central Europe') with no VTIMEZONE in the object (RFC 5545 3.2.19 "
                  "requires one) naming no IANA or Windows zone: calmesh reads its times as floating, "
                  "with a problem naming the TZID, and writes the copy as floating, the same wall "
                  "times (its occurrences agree); writing the name again would copy the invalid TZID")
EXPLAINED: dict[str, tuple[str, str]] = {
    "recurring-ical-events/issue_132_swapped_start_and_end.ics": _NOT_COPIED,
    "recurring-ical-events/end_before_start_event.ics": _NOT_COPIED,
    "icalendar/calendars/issue_526_calendar_with_shuffeled_events.ics": _NO_DEFINITION,
    "icalendar/calendars/issue_526_calendar_with_event_subset.ics": _NO_DEFINITION,
    "icalendar/calendars/issue_526_calendar_with_different_events.ics": _NO_DEFINITION,
    "recurring-ical-events/issue_164_duplicated_event.ics": (
        "has no copy", "two components with the same UID and RECURRENCE-ID (one instance, two "
        "versions: RFC 5545 3.8.4.4 names an instance by them): the sync quarantines the item, "
        "in the run's counts and in `calmesh sync` (reason 'the same RECURRENCE-ID twice'), "
        "rather than pick one version"),
}
"""File -> (the fault text it explains, why): those faults are listed, not failed."""


def _sample() -> list[CorpusFile]:
    eligible = [f for f in corpus() if f.id not in EXPANSION_BUGS and windows(f.data())
                and f.data().count(b"BEGIN:VEVENT") <= MAX_EVENTS
                and any(uid for uid in split_objects(f.data().decode("utf-8", "replace")))]
    step = max(1, len(eligible) // SAMPLE_SIZE)
    chosen = {f.id for f in eligible[::step][:SAMPLE_SIZE]} | set(FAST) | set(ROUNDTRIP_13) | set(EXPLAINED)
    return [by_id(i) for i in sorted(chosen)]


def _param(file: CorpusFile) -> object:
    marks: list[pytest.MarkDecorator] = [] if file.id in FAST else [pytest.mark.slow]
    if file.id in ROUNDTRIP_13:
        marks.append(pytest.mark.xfail(strict=True, reason=ROUNDTRIP_13[file.id]))
    return pytest.param(file, id=file.id, marks=marks)


def test_roundtrip_tables_name_corpus_files() -> None:
    ids = {f.id for f in corpus()}
    assert not (set(ROUNDTRIP_13) | set(EXPLAINED) | set(FAST)) - ids


@pytest.mark.parametrize("file", [_param(f) for f in _sample()])
def test_copies_are_the_same_events(file: CorpusFile, tmp_path: Path, radicale: CalDAVServer,
                                    radicale_b: CalDAVServer, xandikos: CalDAVServer) -> None:
    source = Peer("rad", radicale.connector("rad"), radicale.new_calendar())
    other = Peer("radb", radicale_b.connector("radb"), radicale_b.new_calendar())
    xan = Peer("xan", xandikos.connector("xan"), xandikos.new_calendar())
    text = file.data().decode("utf-8", "replace")
    refused = {}
    for uid, body in split_objects(text).items():
        if uid and (why := put_object(radicale, source.calendar, uid, body)):
            refused[uid] = why
    group = Group(tmp_path, source, other, xan)
    reports = [group.run(), group.run()]
    faults = [f"sync run {i + 1}: {e}" for i, r in enumerate(reports) for e in r.errors]
    originals = stored_objects(radicale, source.calendar)
    copies = {"radicale-b": stored_objects(radicale_b, other.calendar), "xandikos": stored_objects(xandikos, xan.calendar)}
    spans = windows(file.data())
    for uid, original in sorted(originals.items()):
        want = shape(original)
        want_occurrences = [Counter(calmesh_side(original.encode(), w.window)[0]) for w in spans]
        for peer, stored in copies.items():
            copy = stored.get(uid)
            if copy is None:
                faults.append(f"{peer}: UID {uid!r} has no copy")
                continue
            got = shape(copy)
            for key, value in want.items():
                if key == "zones" and same_zones(value, got[key]):  # type: ignore[arg-type]
                    continue
                if got[key] != value:
                    faults.append(f"{peer}: UID {uid!r} {key}: original {value}, copy {got[key]}")
            for named, expected in zip(spans, want_occurrences, strict=True):
                found = Counter(calmesh_side(copy.encode(), named.window)[0])
                if found != expected:
                    lost = sorted((expected - found).elements())[:3]
                    extra = sorted((found - expected).elements())[:3]
                    faults.append(f"{peer}: UID {uid!r} {named.name}: lost {[o.show() for o in lost]}, "
                                  f"gained {[o.show() for o in extra]}")
    notes = [f"Radicale refused UID {u!r}: {why}" for u, why in refused.items()]
    if file.id in EXPLAINED:
        explained, _why = EXPLAINED[file.id]
        faults = [f for f in faults if explained not in f]
    assert not faults, f"{file.id}:\n" + "\n".join(notes + faults)
