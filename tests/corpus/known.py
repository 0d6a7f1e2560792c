"""What the corpus comparison knows about today, each entry with why.

``EXPLAINED``: disagreements the RFC leaves open (invalid input each side reads its own way, or
extensions RFC 5545 does not define) and the reference library's own limits. They pass, and
are listed in the census so that they stay visible.

``ISSUE_13``: disagreements that are calmesh's bugs of issue 13; their tests are
``xfail(strict=True)`` naming the item, so that they turn to XPASS when the fix lands (then
delete the entry). Anything in neither table fails.
"""

from __future__ import annotations

_DUPLICATE_VERSIONS = (
    "several versions of one series in one file (two VEVENTs with the same UID and an RRULE each, "
    "told apart by SEQUENCE): invalid per RFC 5545 3.8.4.7 (a UID names one object); calmesh "
    "(like recurring-ical-events, whose regression files these are) keeps the latest version, "
    "the reference shows all of them")
_PERIOD_RDATE = ("RDATE;VALUE=PERIOD: the reference library cannot expand period RDATEs "
                 "(it drops the event or the periods), so only calmesh shows them")

_UNSYNCHRONISED = (
    "DTSTART not one of its RRULE's instances: RFC 5545 3.8.5.3 leaves such a recurrence set "
    "undefined; calmesh counts DTSTART as the first instance (the safe side: busy), the "
    "reference only the rule's instances")
_DATE_WITH_TZID = (
    "a DATE value with a TZID (invalid: RFC 5545 3.2.19 gives TZID to DATE-TIMEs only); calmesh "
    "reads the day in that zone, the reference as a floating day")
_END_AND_DURATION = (
    "an override with both DTEND and DURATION (RFC 5545 3.6.1: MUST NOT occur together); calmesh "
    "takes DTEND, the reference DURATION (PT0S)")
_RECURRENCE_ID_TYPE = (
    "RECURRENCE-ID in UTC (or as a date-time) for a series in a zone (or of dates): RFC 5545 "
    "3.8.4.4 identifies the instance by its time, so the override replaces it; the reference "
    "matches RECURRENCE-ID by its text and shows both")
_END_BEFORE_START = (
    "DTEND before DTSTART: invalid (RFC 5545 3.8.2.2); calmesh refuses the event with a problem "
    "naming it, the reference keeps a negative span")

EXPLAINED: dict[str, str] = {
    "ical.net/Ical.Net.Tests/Calendars/Recurrence/WeeklyWeekStartsLastYear.ics": _UNSYNCHRONISED,
    "ical.net/Ical.Net.Tests/Calendars/Recurrence/YearlyComplex1.ics": _UNSYNCHRONISED,
    "ical.net/Ical.Net.Tests/Calendars/Recurrence/YearlyInterval1.ics": _UNSYNCHRONISED,
    "ical.net/Ical.Net.Tests/Calendars/Serialization/Categories1.ics": _UNSYNCHRONISED,
    "ical.net/Ical.Net.Tests/Calendars/Serialization/Duration1.ics": _DATE_WITH_TZID,
    "ical.net/Ical.Net.Tests/Calendars/Serialization/TimeZone3.ics": _DATE_WITH_TZID,
    "ical.net/Ical.Net.Tests/Calendars/Serialization/Parameter1.ics": (
        "VALUE=DATE (twice, once VALUE=OTHER) on a date-time value: invalid; calmesh reads the "
        "date-time, the reference the date"),
    "ics-parser/examples/ICal.ics": (
        "a DATE with a TZID whose DTEND equals its DTSTART (invalid twice): calmesh reads an "
        "instant at local midnight, the reference one floating day"),
    "ics-parser/tests/ical/issue-196.ics": _END_AND_DURATION,
    "recurring-ical-events/recurring_events_moved.ics": _END_AND_DURATION,
    "recurring-ical-events/issue_28_rrule_with_UTC_endinginZ.ics": _RECURRENCE_ID_TYPE,
    "recurring-ical-events/end_before_start_event.ics": _END_BEFORE_START,

    "icalendar/calendars/example.ics": (
        "all-day events whose DTEND equals DTSTART: invalid (RFC 5545 3.6.1, DTEND is exclusive "
        "and must be later); the reference reads one day (as Google does), calmesh an instant"),
    "icalendar/calendars/issue_178_custom_component_contains_other.ics": (
        "a VEVENT nested inside an X- component: RFC 5545 3.6 leaves unknown components to the "
        "reader; calmesh reads the nested event, the reference ignores it"),
    "icalendar/calendars/issue_722_timezone_transition_ambiguity.ics": (
        "the reference reads a custom VTIMEZONE it cannot map (TZID MyTimezone, +12:00 in winter) "
        "as UTC; calmesh follows the definition (08:00+12:00 = 20:00Z the day before)"),
    "icalendar/calendars/rfc_7529.ics": (
        "RSCALE and SKIP (RFC 7529, not RFC 5545): neither side implements non-Gregorian rules; "
        "the reference refuses two of the rules and places a leap-day rule differently"),
    "icalendar/calendars/issue_1426.ics": _PERIOD_RDATE,
    "icalendar/events/issue_156_RDATE_with_PERIOD.ics": _PERIOD_RDATE,
    "icalendar/events/issue_156_RDATE_with_PERIOD_list.ics": _PERIOD_RDATE,
    "recurring-ical-events/issue_36_recurrence_ID_format.ics": _RECURRENCE_ID_TYPE,
    "recurring-ical-events/issue_132_swapped_start_and_end.ics": _END_BEFORE_START,
    "recurring-ical-events/alarm_absolute_edited.ics": _DUPLICATE_VERSIONS,
    "recurring-ical-events/issue_148_edge_case_1.ics": _DUPLICATE_VERSIONS,
    "recurring-ical-events/issue_148_edge_case_2.ics": _DUPLICATE_VERSIONS,
    "recurring-ical-events/issue_148_exdate_and_rdate_updated.ics": _DUPLICATE_VERSIONS,
    "recurring-ical-events/issue_148_ignored_exdate.ics": _DUPLICATE_VERSIONS,
    "recurring-ical-events/issue_163_deleted_modification.ics": _DUPLICATE_VERSIONS,
    "recurring-ical-events/issue_164_duplicated_event.ics": _DUPLICATE_VERSIONS,
    "recurring-ical-events/issue_253_additional_recurrence_id.ics": _DUPLICATE_VERSIONS,
    "recurring-ical-events/issue_253_edge_case_1.ics": _DUPLICATE_VERSIONS,
    "recurring-ical-events/issue_253_recurrence_id_included.ics": _DUPLICATE_VERSIONS,
    "ical.js/samples/timezone_from_file.ics": (
        "a custom VTIMEZONE (TZID Nowhere/Middle, -07:41) the reference cannot map: it reads "
        "13:42 as UTC; calmesh follows the definition (13:42-07:41 = 21:23Z)"),
    "libical/test-data/calendar.ics": (
        "a malformed DTEND (19970701T1100000Z, one digit too many: not a DATE-TIME of RFC 5545 "
        "3.3.5): calmesh drops it with a problem naming it and keeps the event from its start "
        "(RFC 5545 3.6.1: no DTEND, a date-time start, no length); the reference reads it as "
        "the end of that day"),
    "recurring-ical-events/bad_rrule_missing_until_event.ics": (
        "an RRULE with a part RFC 5545 3.3.10 does not define (UNTL= for UNTIL=): calmesh keeps "
        "the first instance and reports the rest of the series unknown (never free); the "
        "reference drops the unknown part and expands an endless weekly rule"),
    "recurring-ical-events/issue_113_period_rdate_duration.ics": _PERIOD_RDATE,
}

ISSUE_13: dict[str, str] = {}
"""Empty since the last of them was fixed: events without UID, DTEND of another type than
DTSTART, Lotus Notes series (RANGE=THISANDFUTURE, no master) are read (docs/broken-input.md)."""
