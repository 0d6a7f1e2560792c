"""calmesh.ical: iCalendar text <-> model, recurrence expansion, VFREEBUSY, damage control."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
import pytest

from calmesh import ical
from calmesh.model import (
    MARKER_PROPERTY,
    Attendee,
    BusyPeriod,
    BusyType,
    CalendarItem,
    Classification,
    Event,
    EventStatus,
    PartStat,
    Role,
    Window,
)

PARIS = ZoneInfo("Europe/Paris")
WEEK = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))


def calendar(*events: str, timezones: str = "") -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{e.strip()}\r\nEND:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{timezones}{body}END:VCALENDAR\r\n"


def vevent(uid: str, start: str = "20261124T090000Z", end: str = "20261124T100000Z", extra: str = "") -> str:
    lines = [f"UID:{uid}", "DTSTAMP:20261101T000000Z", f"DTSTART:{start}", f"DTEND:{end}", f"SUMMARY:{uid}"]
    return "\r\n".join(lines) + ("\r\n" + extra.strip() if extra else "")


# ------------------------------------------------------------------------------- write + read
def test_item_round_trip_keeps_every_field() -> None:
    event = Event(
        uid="full@test", start=datetime(2026, 11, 24, 9, tzinfo=PARIS), end=datetime(2026, 11, 24, 10, tzinfo=PARIS),
        summary="Planning; Q1, \"big\"", description="line 1\nline 2", location="Room 4",
        rrule=["FREQ=WEEKLY;COUNT=4"], exdate=[datetime(2026, 12, 1, 9, tzinfo=PARIS)],
        transparent=True, status=EventStatus.TENTATIVE, classification=Classification.PRIVATE, sequence=3,
        organizer=Attendee("Boss@Example.com", "The Boss", PartStat.ACCEPTED, Role.CHAIR),
        attendees=[Attendee("alice@example.com", "Alice", PartStat.DECLINED, Role.OPTIONAL, rsvp=True)],
        busy_type=BusyType.BUSY_UNAVAILABLE, extra={MARKER_PROPERTY: "zoho/cal/1"},
    )
    override = Event(uid="full@test", recurrence_id=datetime(2026, 12, 8, 9, tzinfo=PARIS),
                     start=datetime(2026, 12, 8, 14, tzinfo=PARIS), end=datetime(2026, 12, 8, 15, tzinfo=PARIS),
                     summary="moved")
    text = ical.item_to_ical(CalendarItem("full@test", [event, override]))
    assert b"BEGIN:VTIMEZONE" in text and b"TZID:Europe/Paris" in text

    [item], problems = ical.parse_items(text, "test")
    assert problems == []
    master, moved = item.components
    assert item.marker == "zoho/cal/1"
    assert (master.start, master.end) == (event.start, event.end)
    assert master.tzid == "Europe/Paris"
    for name in ("summary", "description", "location", "rrule", "transparent", "status", "classification",
                 "sequence", "organizer", "attendees", "busy_type"):
        assert getattr(master, name) == getattr(event, name), name
    assert [d.astimezone(UTC) for d in master.exdate] == [d.astimezone(UTC) for d in event.exdate]
    assert moved.recurrence_id == override.recurrence_id and moved.summary == "moved"


def test_fixed_offset_times_are_written_as_utc_not_as_an_unknown_zone() -> None:
    """A date-time with a bare UTC offset (what Graph, EWS or a parsed ``+01:00`` give) has no
    zone name: written with a made-up TZID and no VTIMEZONE it would read back as floating time."""
    plus_one = timezone(timedelta(hours=1))
    start = datetime(2026, 12, 1, 9, tzinfo=plus_one)
    event = Event(uid="fixed", start=start, end=start + timedelta(hours=1), summary="Offset",
                  rrule=["FREQ=DAILY;COUNT=3"], exdate=[start + timedelta(days=1)])
    text = ical.item_to_ical(CalendarItem("fixed", [event])).decode()
    assert "TZID" not in text
    (item,), problems = ical.parse_items(text, "test")
    assert problems == []
    back = item.components[0]
    assert (back.start, back.end, back.exdate) == (start, start + timedelta(hours=1), [start + timedelta(days=1)])


def test_all_day_and_floating_values_survive() -> None:
    holiday = Event(uid="day@test", start=date(2026, 11, 25), end=date(2026, 11, 26))
    floating = Event(uid="float@test", start=datetime(2026, 11, 26, 10), end=datetime(2026, 11, 26, 11))
    text = ical.to_calendar([CalendarItem(e.uid, [e]) for e in (holiday, floating)]).to_ical()
    items, problems = ical.parse_items(text)
    by_uid = {i.uid: i.components[0] for i in items}
    assert problems == []
    assert by_uid["day@test"].start == date(2026, 11, 25) and by_uid["day@test"].all_day
    assert by_uid["float@test"].start == datetime(2026, 11, 26, 10)  # still naive: floating


ZONES = ["Europe/Paris", "Europe/London", "America/New_York", "America/Santiago", "Australia/Sydney",
         "Pacific/Auckland", "Asia/Tokyo", "Asia/Kolkata", "Asia/Jerusalem", "Africa/Casablanca"]


@pytest.mark.parametrize("name", ZONES)
def test_written_vtimezones_agree_with_the_zone_database(name: str) -> None:
    """Another program reading our VTIMEZONE (not the TZID) places every local time where
    zoneinfo does, for years after the event: DST edges included."""
    zone = ZoneInfo(name)
    event = Event(uid="tz@test", start=datetime(2026, 3, 1, 9, tzinfo=zone), end=datetime(2026, 3, 1, 10, tzinfo=zone))
    cal = icalendar.Calendar.from_ical(ical.item_to_ical(CalendarItem("tz@test", [event])))
    [vtimezone] = cal.walk("VTIMEZONE")
    theirs = vtimezone.to_tz(lookup_tzid=False)  # built from the observances, not the TZID
    local = datetime(2026, 1, 1, 12)
    while local.year < 2034:
        # skip the hour that does not exist or happens twice: its reading is a convention
        if local.replace(tzinfo=zone).utcoffset() == local.replace(tzinfo=zone, fold=1).utcoffset():
            assert local.replace(tzinfo=theirs).utcoffset() == local.replace(tzinfo=zone).utcoffset(), local
        local += timedelta(hours=13)


@pytest.mark.parametrize("name", ["Europe/London", "Australia/Sydney", "America/New_York"])
def test_regular_zones_are_written_with_yearly_rules(name: str) -> None:
    """Rule-based VTIMEZONEs (what Outlook and Apple write): Radicale and Outlook misread the
    RDATE lists icalendar generates by default (see tests/connectors/test_caldav.py)."""
    zone = ZoneInfo(name)
    event = Event(uid="tz@test", start=datetime(2026, 11, 24, 9, tzinfo=zone))
    text = ical.item_to_ical(CalendarItem("tz@test", [event])).decode()
    assert text.count("RRULE:FREQ=YEARLY") == 2 and "RDATE" not in text


# ------------------------------------------------------------------------------- expansion
def test_expand_applies_exdate_overrides_and_window() -> None:
    text = calendar(
        vevent("s@test", "20261123T090000", "20261123T091500",
               "RRULE:FREQ=DAILY;COUNT=10\r\nEXDATE;TZID=Europe/Paris:20261125T090000").replace(
            "DTSTART:", "DTSTART;TZID=Europe/Paris:").replace("DTEND:", "DTEND;TZID=Europe/Paris:"),
        vevent("s@test", "20261126T150000Z", "20261126T153000Z", "RECURRENCE-ID;TZID=Europe/Paris:20261126T090000"),
    )
    window = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC))
    events, problems = ical.expand(text, window, "test")
    assert problems == []
    starts = sorted(e.start.astimezone(UTC) for e in events)
    assert starts == [datetime(2026, 11, 23, 8, tzinfo=UTC), datetime(2026, 11, 24, 8, tzinfo=UTC),
                      datetime(2026, 11, 26, 15, tzinfo=UTC), datetime(2026, 11, 27, 8, tzinfo=UTC)]
    assert all(e.recurrence_id is not None and not e.rrule for e in events)


def test_expand_across_dst_keeps_local_time() -> None:
    series = Event(uid="dst@test", start=datetime(2026, 10, 23, 9, tzinfo=PARIS),
                   end=datetime(2026, 10, 23, 10, tzinfo=PARIS), rrule=["FREQ=DAILY;COUNT=5"])
    window = Window(datetime(2026, 10, 22, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC))
    events, _ = ical.expand_items([CalendarItem(series.uid, [series])], window)
    assert [e.start.astimezone(UTC).hour for e in sorted(events, key=lambda e: e.start)] == [7, 7, 8, 8, 8]  # 25th: CET from 03:00


def test_single_events_have_no_recurrence_id() -> None:
    events, _ = ical.expand(calendar(vevent("one@test")), WEEK)
    assert [(e.uid, e.recurrence_id) for e in events] == [("one@test", None)]


def test_x_wr_timezone_calendars_are_normalised() -> None:
    text = calendar(vevent("wr@test", "20261124T090000", "20261124T100000")).replace(
        "PRODID:-//test//EN\r\n", "PRODID:-//test//EN\r\nX-WR-TIMEZONE:Europe/Paris\r\n")
    events, _ = ical.expand(text, WEEK)
    assert events[0].start.astimezone(UTC) == datetime(2026, 11, 24, 8, tzinfo=UTC)


def test_x_wr_timezone_leaves_a_zone_without_tzname_alone() -> None:
    """A VTIMEZONE without TZNAME (Outlook's ``Customized Time Zone`` often has none) is a zone,
    not floating time: X-WR-TIMEZONE does not move its events (regression: read in the
    X-WR-TIMEZONE zone, 8 hours off here)."""
    text = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-TIMEZONE:Europe/Paris\r\nBEGIN:VTIMEZONE\r\n"
            b"TZID:Customized Time Zone\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\nTZOFFSETFROM:+0900\r\n"
            b"TZOFFSETTO:+0900\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:tokyo@test\r\n"
            b"DTSTART;TZID=Customized Time Zone:20261124T090000\r\nDURATION:PT1H\r\nEND:VEVENT\r\n"
            b"BEGIN:VEVENT\r\nUID:floating@test\r\nDTSTART:20261124T090000\r\nDURATION:PT1H\r\nEND:VEVENT\r\n"
            b"END:VCALENDAR\r\n")
    events, problems = ical.expand(text, WEEK)
    assert not problems
    assert {e.uid: e.start.astimezone(UTC) for e in events} == {
        "tokyo@test": datetime(2026, 11, 24, 0, tzinfo=UTC), "floating@test": datetime(2026, 11, 24, 8, tzinfo=UTC)}


# ------------------------------------------------------------------------------- damage
def test_truncated_text_keeps_complete_events() -> None:
    text = calendar(vevent("ok@test"), vevent("cut@test", "20261125T090000Z", "20261125T100000Z"))
    text = text[: text.index("SUMMARY:cut@test")]
    events, problems = ical.expand(text, WEEK, "zoho")
    assert [e.uid for e in events] == ["ok@test"]
    assert problems and all(p.platform == "zoho" for p in problems)
    assert "malformed" in problems[-1].message


@pytest.mark.parametrize(("extra_event", "needle"), [
    (vevent("bad@test", "20261399T250000Z"), "DTSTART"),
    (vevent("nostart@test").replace("DTSTART:20261124T090000Z\r\n", ""), "no DTSTART"),
    (vevent("backwards@test", "20261124T100000Z", "20261124T090000Z"), "before DTSTART"),
])  # a DTEND of another type than DTSTART costs nothing now (test_ical_broken_input.py)
def test_bad_event_is_a_problem_naming_it(extra_event: str, needle: str) -> None:
    events, problems = ical.expand(calendar(vevent("ok@test"), extra_event), WEEK, "zoho")
    assert [e.uid for e in events] == ["ok@test"]
    uid = extra_event.split("\r\n", 1)[0].removeprefix("UID:")
    assert any(needle in p.message and p.item and uid in p.item and p.platform == "zoho" for p in problems), problems
    items, item_problems = ical.parse_items(calendar(vevent("ok@test"), extra_event), "zoho")
    assert [i.uid for i in items] == ["ok@test"] and item_problems


def test_unknown_tzid_is_read_as_local_time_with_a_warning() -> None:
    text = calendar(vevent("mars@test", "20261124T100000", "20261124T110000").replace(
        "DTSTART:", "DTSTART;TZID=Mars/Olympus:").replace("DTEND:", "DTEND;TZID=Mars/Olympus:"))
    events, problems = ical.expand(text, WEEK, "zoho", default_tz=PARIS)
    assert [e.uid for e in events] == ["mars@test"]
    assert any("Mars/Olympus" in p.message and p.item and "mars@test" in p.item for p in problems)


def test_windows_tzid_is_understood() -> None:
    text = calendar(vevent("win@test", "20261124T100000", "20261124T110000").replace(
        "DTSTART:", "DTSTART;TZID=Romance Standard Time:").replace("DTEND:", "DTEND;TZID=Romance Standard Time:"))
    [item], problems = ical.parse_items(text)
    assert item.components[0].start == datetime(2026, 11, 24, 10, tzinfo=PARIS)


def test_huge_description_is_cut_with_a_warning() -> None:
    text = calendar(vevent("huge@test", extra="DESCRIPTION:" + "x" * (5 * 1024 * 1024)))
    [item], problems = ical.parse_items(text, "zoho")
    assert len(item.components[0].description or "") == ical.MAX_TEXT_PROPERTY
    assert any("DESCRIPTION" in p.message and p.item and "huge@test" in p.item for p in problems)


def test_not_a_calendar_at_all() -> None:
    events, problems = ical.expand("<html>Service unavailable</html>", WEEK, "zoho")
    assert events == [] and problems and problems[0].platform == "zoho"


# ------------------------------------------------------------------------------- free/busy
def test_vfreebusy_round_trip() -> None:
    periods = [
        BusyPeriod(datetime(2026, 11, 24, 9, tzinfo=UTC), datetime(2026, 11, 24, 10, tzinfo=UTC)),
        BusyPeriod(datetime(2026, 11, 24, 11, tzinfo=UTC), datetime(2026, 11, 24, 12, tzinfo=UTC),
                   BusyType.BUSY_TENTATIVE),
        BusyPeriod(datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC), BusyType.BUSY_UNAVAILABLE),
        BusyPeriod(datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC), BusyType.UNKNOWN),
        BusyPeriod(datetime(2026, 11, 26, 9, tzinfo=UTC), datetime(2026, 11, 26, 10, tzinfo=UTC), BusyType.FREE),
    ]
    cal = ical.vfreebusy(periods, WEEK, attendee="mailto:Alice@Example.com", method="REPLY")
    text = cal.to_ical()
    assert b"ATTENDEE:mailto:alice@example.com" in text and b"METHOD:REPLY" in text
    back = ical.parse_vfreebusy(text, "hub")
    expected = [p for p in periods if p.type is not BusyType.FREE]
    assert sorted((p.start, p.end, p.type) for p in back) == sorted((p.start, p.end, p.type) for p in expected)
    assert {p.source for p in back} == {"hub"}


def test_vfreebusy_defaults_and_durations() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VFREEBUSY\r\nDTSTAMP:20261101T000000Z\r\n"
        "FREEBUSY:20261124T090000Z/PT1H,20261124T130000Z/20261124T140000Z\r\n"
        "FREEBUSY;FBTYPE=X-WEIRD:20261125T090000Z/PT30M\r\n"
        "FREEBUSY;FBTYPE=FREE:20261126T090000Z/PT30M\r\n"
        "END:VFREEBUSY\r\nEND:VCALENDAR\r\n"
    )
    periods = ical.parse_vfreebusy(text)
    assert [(p.start.hour, (p.end - p.start), p.type) for p in periods] == [
        (9, timedelta(hours=1), BusyType.BUSY), (13, timedelta(hours=1), BusyType.BUSY),
        (9, timedelta(minutes=30), BusyType.BUSY),  # unknown FBTYPE means BUSY (RFC 5545)
    ]


def test_vfreebusy_garbage_is_an_error() -> None:
    with pytest.raises(ical.ICalError):
        ical.parse_vfreebusy("not a calendar", "zoho")


def test_written_calendar_parses_with_icalendar() -> None:
    item = CalendarItem("x@test", [Event("x@test", datetime(2026, 11, 24, 9, tzinfo=UTC))])
    parsed = icalendar.Calendar.from_ical(ical.item_to_ical(item, method="REQUEST"))
    assert parsed["METHOD"] == "REQUEST" and parsed["PRODID"] == ical.PRODID


# ----------------------------------------------------------------------- reading, and reading again
def test_vtimezones_are_written_before_the_events_that_use_them() -> None:
    """Apple, Google and Outlook write them first; icalendar reads a calendar twice when a TZID
    comes before its definition."""
    event = Event(uid="tz-order@test", start=datetime(2026, 11, 24, 9, tzinfo=PARIS),
                  end=datetime(2026, 11, 24, 10, tzinfo=PARIS), summary="order")
    text = ical.item_to_ical(CalendarItem(event.uid, [event])).decode()
    assert text.index("BEGIN:VTIMEZONE") < text.index("BEGIN:VEVENT")


CUSTOM_ZONE = """BEGIN:VTIMEZONE\r
TZID:Office/Custom\r
BEGIN:STANDARD\r
DTSTART:19700101T000000\r
TZOFFSETFROM:+0530\r
TZOFFSETTO:+0530\r
END:STANDARD\r
END:VTIMEZONE\r
"""
WRONG_PARIS = CUSTOM_ZONE.replace("Office/Custom", "Europe/Paris").replace("+0530", "+0900")


def test_custom_vtimezones_are_read_and_iana_named_ones_resolve_to_the_zone_database() -> None:
    """VTIMEZONEs named after an IANA zone are skipped before parsing (icalendar ignores them
    anyway); a zone only the calendar defines is still read from its definition."""
    text = calendar(
        vevent("custom@test", "20261124T100000", "20261124T110000").replace(
            "DTSTART:", "DTSTART;TZID=Office/Custom:").replace("DTEND:", "DTEND;TZID=Office/Custom:"),
        vevent("paris@test", "20261124T100000", "20261124T110000").replace(
            "DTSTART:", "DTSTART;TZID=Europe/Paris:").replace("DTEND:", "DTEND;TZID=Europe/Paris:"),
        timezones=CUSTOM_ZONE + WRONG_PARIS)
    items, problems = ical.parse_items(text)
    starts = {i.uid: i.components[0].start for i in items}
    assert not problems
    assert starts["custom@test"].utcoffset() == timedelta(hours=5, minutes=30)
    assert starts["paris@test"] == datetime(2026, 11, 24, 10, tzinfo=PARIS)
    plain = icalendar.Calendar.from_ical(text)  # the library alone reads the same instants
    assert {str(e["UID"]): e.decoded("DTSTART") for e in plain.walk("VEVENT")} == starts


@pytest.fixture
def parse_counter(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """A fresh object memo, and the texts it really parsed."""
    parsed: list[bytes] = []
    real = ical.parse_items

    def counting(data: str | bytes, platform: str = "") -> tuple[list[CalendarItem], list[ical.Problem]]:
        parsed.append(data if isinstance(data, bytes) else data.encode())
        return real(data, platform)

    monkeypatch.setattr(ical, "parse_items", counting)
    monkeypatch.setattr(ical, "_OBJECTS", ical._ObjectMemo(1024 * 1024))
    return parsed


def test_an_object_read_twice_is_parsed_once(parse_counter: list[bytes]) -> None:
    """Two calendars holding the same object (stamped at different times) cost one parse; each
    reader still gets its own items to attach its own ref to, and problems name its platform."""
    first = calendar(vevent("same@test", end="20261124T100000").replace("DTEND:", "DTEND;TZID=Nowhere/Land:"))
    second = first.replace("DTSTAMP:20261101T000000Z", "DTSTAMP:20261124T120000Z")
    a_items, a_problems = ical.parse_object(first, "a")
    b_items, b_problems = ical.parse_object(second, "b")
    assert len(parse_counter) == 1
    assert a_items == b_items and a_items[0] is not b_items[0]
    assert {p.platform for p in a_problems} == {"a"} and {p.platform for p in b_problems} == {"b"}
    edited = second.replace("SUMMARY:same@test", "SUMMARY:renamed")
    assert ical.parse_object(edited, "b")[0][0].components[0].summary == "renamed"
    assert len(parse_counter) == 2


def test_threads_reading_the_same_object_at_once_parse_it_once(
        parse_counter: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two calendars read side by side meet the same objects at the same moment: the second
    reader waits for the first one's result instead of parsing again."""
    started, release = threading.Event(), threading.Event()
    counting = ical.parse_items

    def slow(data: str | bytes, platform: str = "") -> tuple[list[CalendarItem], list[ical.Problem]]:
        started.set()
        release.wait(5)
        return counting(data, platform)

    monkeypatch.setattr(ical, "parse_items", slow)
    text = calendar(vevent("race@test"))
    results: list[list[CalendarItem]] = []
    first = threading.Thread(target=lambda: results.append(ical.parse_object(text, "a")[0]))
    first.start()
    assert started.wait(5)
    second = threading.Thread(target=lambda: results.append(ical.parse_object(text, "b")[0]))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waiting for the first reader, not parsing
    release.set()
    first.join(5)
    second.join(5)
    assert len(parse_counter) == 1 and len(results) == 2 and results[0] == results[1]


@pytest.fixture
def read_counter(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """A fresh memo of texts read for expansion, and the texts it really read."""
    read: list[bytes] = []
    real = ical._parse_calendars

    def counting(data: bytes, *args: object, **kwargs: object) -> list[icalendar.Calendar]:
        read.append(data)
        return real(data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ical, "_parse_calendars", counting)
    monkeypatch.setattr(ical, "_READS", ical._TextMemo(1024 * 1024))
    return read


def fresh_expand(text: str, window: Window, platform: str = "feed") -> tuple[list[Event], list[ical.Problem]]:
    """What :func:`ical.expand` gives for a text it never saw (a memo of its own)."""
    saved = ical._READS
    ical._READS = ical._TextMemo(1024 * 1024)
    try:
        return ical.expand(text, window, platform, PARIS)
    finally:
        ical._READS = saved


def test_a_text_expanded_in_other_windows_is_read_once(read_counter: list[bytes]) -> None:
    """A cold free/busy answer reads the same stored objects as the one before it: the text is
    read once, and each window still gets exactly what reading it afresh gives (a series, a moved
    occurrence, a floating event, a private one, a problem naming the asking platform)."""
    text = calendar(
        vevent("series@test", "20261123T080000Z", "20261123T083000Z", "RRULE:FREQ=DAILY;COUNT=10"),
        vevent("series@test", "20261125T150000Z", "20261125T153000Z", "RECURRENCE-ID:20261125T080000Z"),
        vevent("floating@test", "20261124T120000", "20261124T130000"),
        vevent("private@test", "20261126T090000Z", "20261126T100000Z", "CLASS:PRIVATE"),
        vevent("later@test", "20261202T090000Z", "20261202T100000Z"),
        vevent("mended@test", "20261127T090000Z", "20261127T100000Z", "CREATED:00001231T000000Z"))
    windows = [WEEK, Window(WEEK.start + timedelta(days=3), WEEK.end + timedelta(days=7)),
               Window(datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 8, tzinfo=UTC))]
    for window in windows:
        for platform in ("a", "b"):
            assert ical.expand(text, window, platform, PARIS) == fresh_expand(text, window, platform)
    assert len(read_counter) == 1 + 6  # once for the memo, and once in each fresh_expand
    assert {p.platform for p in ical.expand(text, WEEK, "b", PARIS)[1]} == {"b"}


def test_windows_across_a_span_edge_get_each_occurrence_once(read_counter: list[bytes]) -> None:
    """Series are expanded by spans of four weeks kept on the series (``ical._SPAN``): a window
    crossing a span's edge gets each occurrence once (one straddling the edge, one moved across
    it), the same as the window expanded on its own, and the text is still read once."""
    edge = ical._SPAN_EPOCH + ((WEEK.start - ical._SPAN_EPOCH) // ical._SPAN + 1) * ical._SPAN
    before = edge - timedelta(days=2)
    text = calendar(
        vevent("daily@test", f"{before:%Y%m%d}T233000Z", f"{before + timedelta(days=1):%Y%m%d}T003000Z",
               "RRULE:FREQ=DAILY;COUNT=90"),
        vevent("daily@test", f"{edge:%Y%m%d}T100000Z", f"{edge:%Y%m%d}T110000Z",
               f"RECURRENCE-ID:{edge - timedelta(days=1):%Y%m%d}T233000Z"))

    def window_alone(window: Window) -> tuple[list[Event], list[ical.Problem]]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ical, "_by_blocks", ical._expanded)
            return fresh_expand(text, window)

    def by_start(found: tuple[list[Event], list[ical.Problem]]) -> tuple[list[Event], list[ical.Problem]]:
        return sorted(found[0], key=lambda e: e.start), found[1]

    for first, last in ((-3, 4), (0, 1), (-1, 0), (-40, 40), (5, 12)):
        window = Window(edge + timedelta(days=first), edge + timedelta(days=last))
        assert by_start(ical.expand(text, window, "feed", PARIS)) == by_start(window_alone(window))
    assert len(read_counter) == 1 + 5 * 1


def test_a_rule_too_costly_for_one_window_still_counts_in_the_next(read_counter: list[bytes]) -> None:
    """Far from its start a fine-grained rule is too costly to expand and only its first instance
    counts; the text read for that window is shared, so dropping the rule must not leak into the
    next window's expansion of the same text."""
    text = calendar(vevent("often@test", "20261123T000000Z", "20261123T000500Z", "RRULE:FREQ=MINUTELY;INTERVAL=30"))
    far = Window(datetime(2040, 1, 1, tzinfo=UTC), datetime(2040, 1, 8, tzinfo=UTC))
    events, problems = ical.expand(text, far, "feed")
    assert events == [] and "too costly" in problems[0].message
    events, problems = ical.expand(text, WEEK, "feed")
    assert problems == [] and len(events) == 7 * 48
    assert len(read_counter) == 1


def test_a_damaged_text_is_read_again_for_each_window(read_counter: list[bytes]) -> None:
    """A text read by salvage is not kept: the time it leaves unknown is the window asked."""
    text = calendar(vevent("ok@test")).replace("END:VCALENDAR\r\n", "") + "BEGIN:VEVENT\r\nUID:cut@test\r\nDTSTART:2026"
    other = Window(WEEK.start + timedelta(days=1), WEEK.end + timedelta(days=1))
    for window in (WEEK, other):
        _events, problems = ical.expand(text, window, "feed")
        assert [p.unknown for p in problems if p.unknown] == [(window.start, window.end)]
    assert len(read_counter) == 2


def test_the_object_memo_keeps_to_its_byte_budget(parse_counter: list[bytes]) -> None:
    """Oldest objects are forgotten first once the budget is spent; an object above a hundredth
    of the budget is parsed but never kept (a 5 MB object must not push out thousands)."""
    memo = ical._ObjectMemo(budget=100 * len(calendar(vevent("x000@test"))) + 50)
    texts = [calendar(vevent(f"x{n:03d}@test")) for n in range(150)]
    for text in texts:
        memo.parse(text.encode(), "a")
    assert memo._size <= memo._budget and len(memo._entries) < 150
    parsed = len(parse_counter)
    memo.parse(texts[-1].encode(), "a")  # recent: still known
    assert len(parse_counter) == parsed
    memo.parse(texts[0].encode(), "a")  # oldest: forgotten, parsed again
    assert len(parse_counter) == parsed + 1
    big = calendar(vevent("big@test", extra="DESCRIPTION:" + "y" * memo._budget)).encode()
    memo.parse(big, "a")
    memo.parse(big, "a")
    assert len(parse_counter) == parsed + 3


def test_a_memo_keeps_results_not_texts() -> None:
    """A text is known by its digest: once read, nothing of the memo refers to it (the texts of
    10,000 stored objects were 8.5 MB of a memo's 22 MB), and the same bytes in another object
    are still known."""
    memo = ical._TextMemo[int](budget=1024 * 1024)
    text = calendar(vevent("digest@test")).encode()
    held = sys.getrefcount(text)
    assert memo.get(text, lambda: 1) == 1
    assert sys.getrefcount(text) == held
    assert memo.get(bytes(bytearray(text)), lambda: 2) == 1
    assert memo._size == len(text)


RICH_EVENT = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VEVENT\r\nUID:rich@x\r\n"
              b"DTSTAMP:20260101T000000Z\r\nDTSTART:20260105T090000Z\r\nDTEND:20260105T100000Z\r\n"
              b"SUMMARY:Hello\r\nCATEGORIES:Work,Client\\, Big\r\nCATEGORIES:Second\r\nGEO:48.85;2.35\r\n"
              b"COMMENT:a\\, b\\; c\r\nRELATED-TO;RELTYPE=PARENT:p1\r\nX-EVOLUTION-CALDAV-ETAG:1\r\n"
              b"X-ALT-DESC;FMTTYPE=text/html:<p>Hi\\, there</p>\r\nX-MICROSOFT-CDO-BUSYSTATUS:OOF\r\n"
              b"X-CALMESH-ORIGIN:a/b/c\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def test_properties_without_a_field_are_written_back_as_read() -> None:
    """What no field of Event holds (repeated, with parameters and escaped text) survives a
    write and a second read unchanged; what fields hold is not carried twice; the busy block and
    the synced hash ignore it."""
    from calmesh.core.projection import busy_block, content_hash

    (item,), problems = ical.parse_items(RICH_EVENT)
    event = item.components[0]
    assert problems == []
    assert event.unmodelled == ("CATEGORIES:Work,Client\\, Big", "CATEGORIES:Second", "GEO:48.85;2.35",
                                "COMMENT:a\\, b\\; c", "RELATED-TO;RELTYPE=PARENT:p1", "X-EVOLUTION-CALDAV-ETAG:1",
                                "X-ALT-DESC;FMTTYPE=text/html:<p>Hi\\, there</p>")
    written = ical.item_to_ical(item)
    assert written.count(b"X-MICROSOFT-CDO-BUSYSTATUS") == 1 and written.count(b"X-CALMESH-ORIGIN") == 1
    (again,), _ = ical.parse_items(written)
    assert set(again.components[0].unmodelled) == set(event.unmodelled)
    assert busy_block(item).components[0].unmodelled == ()
    bare = ical.parse_items(RICH_EVENT.replace(b"CATEGORIES:Second\r\n", b""))[0][0]
    assert content_hash(bare) == content_hash(item)


SKIPPED_HOUR_ZONE = (b"BEGIN:VTIMEZONE\r\nTZID:Made Up Eastern\r\nBEGIN:STANDARD\r\nDTSTART:16010101T020000\r\n"
                     b"TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nRRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11\r\n"
                     b"END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:-0500\r\n"
                     b"TZOFFSETTO:-0400\r\nRRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n")


@pytest.mark.parametrize("tzid", [b"Made Up Eastern", b"America/New_York"])
def test_an_event_ending_in_the_skipped_hour_keeps_its_length(tzid: bytes) -> None:
    """01:30 to 02:30 on the night New York's clocks go from 02:00 to 03:00: 02:30 is never shown,
    and RFC 5545 3.3.5 reads it with the offset before the gap (EST), so the event is busy from
    06:30Z to 07:30Z. Under a zone the calendar defines, the expansion used dateutil's reading
    (the offset after), and the event lasted no time at all: an hour shown free."""
    zone = SKIPPED_HOUR_ZONE.replace(b"Made Up Eastern", tzid)
    text = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\n" + zone + b"BEGIN:VEVENT\r\nUID:gap\r\n"
            b"DTSTAMP:20260101T000000Z\r\nDTSTART;TZID=" + tzid + b":20260308T013000\r\n"
            b"DTEND;TZID=" + tzid + b":20260308T023000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    events, problems = ical.expand(text, Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC)))
    assert problems == []
    assert [(e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in events] == [  # type: ignore[union-attr]
        (datetime(2026, 3, 8, 6, 30, tzinfo=UTC), datetime(2026, 3, 8, 7, 30, tzinfo=UTC))]
