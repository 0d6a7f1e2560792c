"""Corpus: a few corpus files synced from Radicale to Exchange, through the EWS and the Graph
connectors. No Exchange or Microsoft 365 service is reachable from the test machines, so the
other side is calmesh.fakes.ews.EWSFake / calmesh.fakes.graph.GraphFake: protocol-faithful fakes
(SOAP and Graph v1.0 JSON over HTTP on 127.0.0.1, see tests/connectors/vendors.py) spoken to
through the connectors' real client code.

What is compared is what Exchange can hold: the occurrences calmesh reads back from the mailbox
in UTC over the file's windows (start, end, transparency, status, summary) against those of the
originals as Radicale stores them, and the CLASS (Exchange's sensitivity) of every component.
Graph mints its own UIDs, so a file is compared as a whole. Exchange keeps one reminder, minutes
before the start, not VALARMs: alarms are checked here on CalDAV copies only (test_roundtrip.py),
reminders in tests/timekeeping/test_vendor_fit.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sync.peers import Group, Peer, vendor_peer

from .copies import EVENT, klass, put_object, stored_objects, unfold
from .expansion import Occurrence, calmesh_side, in_window, split_objects, windows
from .sources import CorpusFile, by_id

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

FILES: dict[str, str | None] = {
    "recurring-ical-events/issue_62_moved_event_2.ics": None,
    "ical.js/samples/daily_recur.ics": None,
    "ical.net/Ical.Net.Tests/Calendars/Recurrence/MonthlyBySetPos1.ics": None,
    "icalendar/calendars/issue_836_do_not_quote_tzid.ics": None,
    "icalendar/calendars/issue_722_timezone_transition_ambiguity.ics": None,
    "recurring-ical-events/issue_75_range_parameter.ics": None,
    "ical.js/samples/timezone_from_file.ics": None,
}
"""Files -> None, or the issue 13 item they fail on today (strict xfail): a DST change in
Sydney, a Google series with exceptions, BYSETPOS over several weekdays (EWS spells it out), a
Windows zone name, a custom VTIMEZONE with one-off changes (EWS carries it as a definition with
AbsoluteDateTransitions), THISANDFUTURE with an RDATE (spelled out on both), a custom zone at
-07:41 (a definition with a positive Bias on EWS)."""


def _params() -> list[object]:
    out = []
    for kind in ("ews", "graph"):
        for file_id, known in FILES.items():
            marks = [pytest.mark.xfail(strict=True, reason=known)] if known else []
            out.append(pytest.param(kind, by_id(file_id), id=f"{kind}-{file_id}", marks=marks))
    return out


@pytest.fixture
def mailbox_peer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    with vendor_peer(request.param, monkeypatch) as peer:
        yield peer


@pytest.mark.slow
@pytest.mark.parametrize(("mailbox_peer", "file"), _params(), indirect=["mailbox_peer"])
def test_exchange_copies_are_the_same_events(mailbox_peer: Peer, file: CorpusFile, tmp_path: Path,
                                             radicale: CalDAVServer) -> None:
    source = Peer("rad", radicale.connector("rad"), radicale.new_calendar())
    for uid, body in split_objects(file.data().decode("utf-8", "replace")).items():
        if uid:
            put_object(radicale, source.calendar, uid, body)
    group = Group(tmp_path, source, mailbox_peer)
    reports = [group.run(), group.run()]
    faults = [f"sync run {i + 1}: {e}" for i, r in enumerate(reports) for e in r.errors]
    originals = stored_objects(radicale, source.calendar)
    # as sets: a copy may hold more components than its original (RANGE=THISANDFUTURE and rules
    # Exchange lacks are spelled out occurrence by occurrence), each with its original's CLASS
    want_class = sorted({klass(e) for text in originals.values() for e in EVENT.findall(unfold(text))})
    got_class = sorted({c.classification.value for i in mailbox_peer.items() for c in i.components})
    if got_class != want_class:
        faults.append(f"class: originals {want_class}, copies {got_class}")
    for named in windows(file.data()):
        expected: Counter[Occurrence] = Counter()
        for text in originals.values():
            expected.update(calmesh_side(text.encode(), named.window)[0])
        events, _problems = mailbox_peer.conn.events(mailbox_peer.calendar, named.window)
        found: Counter[Occurrence] = Counter()
        for event in events:
            start, end = event.span_utc(UTC)
            if in_window(named.window, start, end):
                found[Occurrence(start, end, event.transparent, event.status.value, event.summary or "")] += 1
        if found != expected:
            lost = [o.show() for o in sorted((expected - found).elements())[:3]]
            extra = [o.show() for o in sorted((found - expected).elements())[:3]]
            faults.append(f"{named.name}: lost {lost}, gained {extra}")
    assert not faults, f"{file.id} on {mailbox_peer.platform}:\n" + "\n".join(faults)
