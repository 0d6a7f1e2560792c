"""Corpus: calmesh's expansion (what free/busy reads) against an independent RFC 5545 expansion.

Every public test calendar of the corpus (see sources.py) is expanded over several windows by
calmesh and by allenporter's ``ical`` library; occurrences must agree in UTC start and end,
transparency, status and summary. Disagreements are either explained (known.EXPLAINED: open in
the RFC, or the reference's limits) or calmesh bugs of issue 13 (known.ISSUE_13, strict xfail);
anything else fails with the occurrences each side has alone. Files the reference cannot read
are compared for nothing but still must not make calmesh raise; the census lists them.
"""

from __future__ import annotations

import pytest

from .expansion import compare
from .known import EXPLAINED, ISSUE_13
from .sources import CorpusFile, corpus

FAST = {
    "icalendar/calendars/america_new_york.ics",
    "icalendar/calendars/example.ics",
    "icalendar/calendars/issue_722_timezone_transition_ambiguity.ics",
    "icalendar/events/event_with_recurrence.ics",
    "icalendar/events/issue_112_missing_tzinfo_on_exdate.ics",
    "recurring-ical-events/bad_rrule_missing_until_event.ics",
    "recurring-ical-events/duration.ics",
    "recurring-ical-events/issue_148_ignored_exdate.ics",
    "recurring-ical-events/issue_201_test_matrix.ics",
    "recurring-ical-events/daylight_saving_time.ics",
    "recurring-ical-events/issue_36_recurrence_ID_format.ics",
    "ical.js/samples/daily_recur.ics",
    "ical.net/Ical.Net.Tests/Calendars/Recurrence/YearlyComplex1.ics",
    "libical/test-data/calendar.ics",
}
"""A handful that covers each kind of case (agreement across DST, explained, issue 13): the
unmarked run; the whole corpus is ``slow``."""


def _param(file: CorpusFile) -> object:
    marks: list[pytest.MarkDecorator] = [] if file.id in FAST else [pytest.mark.slow]
    if file.id in ISSUE_13:
        marks.append(pytest.mark.xfail(strict=True, reason=ISSUE_13[file.id]))
    return pytest.param(file, id=file.id, marks=marks)


@pytest.mark.parametrize("file", [_param(f) for f in corpus()])
def test_expansion_agrees_with_reference(file: CorpusFile) -> None:
    result = compare(file.data())
    assert result.calmesh_error is None, f"calmesh raised on {file.id}: {result.calmesh_error}"
    if file.id in EXPLAINED:
        return
    assert not result.differences, f"{file.id} disagrees with the reference:\n{result.report()}"


def test_known_tables_name_corpus_files() -> None:
    """A renamed or removed corpus file must not leave a stale entry behind."""
    ids = {f.id for f in corpus()}
    assert not (set(EXPLAINED) | set(ISSUE_13) | FAST) - ids
    assert not set(EXPLAINED) & set(ISSUE_13)
