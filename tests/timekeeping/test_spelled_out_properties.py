"""Property: a series a vendor cannot hold as it is, spelled out for it (a weekly series with
deleted and moved occurrences, calmesh.connectors._fitting), has the same occurrences as the
original, both expanded by the independent reference (allenporter's ``ical``, see
tests/corpus/expansion.py), never by the library calmesh reads with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dateutil.rrule import MONTHLY, rrule, weekdays
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from calmesh import ical
from calmesh.connectors import _exchange_common as ex
from calmesh.connectors.ews import _pattern_to_ews
from calmesh.model import Window
from corpus.expansion import reference_calendars, reference_side

from .zone_calendars import calendar, vevent

ALWAYS = Window(datetime(2024, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def spans(text: bytes) -> list[tuple[datetime, datetime]]:
    return sorted((o.start, o.end) for o in reference_side(reference_calendars(text).calendars, ALWAYS))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days=st.sets(st.integers(0, 6), min_size=2, max_size=4), setpos=st.sampled_from([1, 2, 3, -1]),
       count=st.integers(2, 8), month=st.integers(1, 12), hour=st.integers(7, 20),
       zone=st.sampled_from(["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"]),
       extra=st.booleans())
def test_a_bysetpos_rule_spelled_out_for_ews_has_the_same_occurrences(
        days: set[int], setpos: int, count: int, month: int, hour: int, zone: str, extra: bool) -> None:
    # the reference does not apply an override whose RECURRENCE-ID is a UTC value (it shows the
    # instance and the override: known.py, _RECURRENCE_ID_TYPE), so moved occurrences need a zone
    assume(not (extra and zone == "UTC"))
    byday = ",".join(DAYS[d] for d in sorted(days))
    # DTSTART on the rule's first occurrence (RFC 5545 3.8.5.3 leaves other starts undefined)
    first = rrule(MONTHLY, dtstart=datetime(2025, month, 1, hour), bysetpos=setpos,
                  byweekday=[weekdays[d] for d in sorted(days)], count=1)[0]
    lines = [f"RRULE:FREQ=MONTHLY;COUNT={count};BYDAY={byday};BYSETPOS={setpos}"]
    if extra:  # an extra occurrence at another time of day, two days after the first
        lines.append(f"RDATE;TZID={zone}:{(first + timedelta(days=2, hours=1)):%Y%m%dT%H%M%S}")
    original = calendar(vevent("p@test", f"{first:%Y%m%dT%H%M%S}", f"{first + timedelta(hours=1):%Y%m%dT%H%M%S}",
                               tzid=zone, extra="\n".join(lines))).encode()
    (item,), _ = ical.parse_items(original)
    fitted, notes = ex.fit("ews", item, "UTC", _pattern_to_ews, reminders=1)
    held = days == {5, 6} and not extra  # EWS's WeekendDay: a pattern of its own
    assert [n.feature for n in notes] == ([] if held else ["RRULE"])
    master = fitted.master
    assert master is not None and len(master.rrule) == 1 and not master.rdate
    assert spans(ical.item_to_ical(fitted)) == spans(original)
