"""The ICS connector against real files and a real HTTP feed served on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from calmesh import ical
from calmesh.connectors.base import (
    AuthenticationError,
    InvalidDataError,
    NotFoundError,
    PreconditionFailed,
    UnsupportedOperation,
)
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.demo.data import build_week
from calmesh.model import CalendarItem, Event, Window

MONDAY = date(2026, 10, 26)  # the week after the EU DST change
WEEK = Window(datetime(2026, 10, 26, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))


def folder_connector(root: Path) -> ICSConnector:
    return ICSConnector("projects", ICSSettings(kind="ics", path=str(root), timezone="Europe/Paris"))


def seed(connector: ICSConnector) -> None:
    for (platform, owner), items in build_week(MONDAY).items.items():
        if platform == "projects":
            for item in items:
                connector.put(f"{owner}.ics", item)


def test_folder_calendars_and_events(tmp_path: Path) -> None:
    connector = folder_connector(tmp_path)
    seed(connector)
    cals = {c.id: c for c in connector.calendars()}
    assert "emma@agency.example.ics" in cals and cals["emma@agency.example.ics"].owner == "emma@agency.example"
    events, problems = connector.events("emma@agency.example.ics", WEEK)
    assert not problems
    assert {e.summary for e in events} == {"Project Atlas review", "Sprint planning", "Vendor demo"}
    assert connector.calendars_of("farid@agency.example") == ["farid@agency.example.ics"]


def test_writes_are_guarded_by_etag(tmp_path: Path) -> None:
    connector = folder_connector(tmp_path)
    event = Event("u1@test", datetime(2026, 11, 2, 9, tzinfo=UTC), datetime(2026, 11, 2, 10, tzinfo=UTC), "One")
    ref = connector.put("cal.ics", CalendarItem("u1@test", [event]))
    with pytest.raises(PreconditionFailed):  # creating the same UID twice
        connector.put("cal.ics", CalendarItem("u1@test", [event]))
    changed = CalendarItem("u1@test", [event.with_changes(summary="Two")], ref)
    new_ref = connector.put("cal.ics", changed, if_match=ref.etag)
    assert new_ref.etag != ref.etag
    with pytest.raises(PreconditionFailed):  # a stale version
        connector.put("cal.ics", changed, if_match=ref.etag)
    items, _ = connector.items("cal.ics")
    assert [i.master.summary for i in items if i.master] == ["Two"]
    with pytest.raises(PreconditionFailed):
        connector.delete("cal.ics", new_ref, if_match=ref.etag)
    connector.delete("cal.ics", new_ref, if_match=new_ref.etag)
    assert connector.items("cal.ics")[0] == []
    with pytest.raises(NotFoundError):
        connector.delete("cal.ics", new_ref)


def test_changes_token_is_content_hash(tmp_path: Path) -> None:
    connector = folder_connector(tmp_path)
    seed(connector)
    first = connector.changes("emma@agency.example.ics", None)
    assert first.complete and len(first.changed) == 3
    again = connector.changes("emma@agency.example.ics", first.token)
    assert not again.changed and again.token == first.token
    item = first.changed[0]
    connector.put("emma@agency.example.ics", CalendarItem(item.uid, [e.with_changes(summary="x") for e in item.components], item.ref),
                  if_match=item.ref.etag if item.ref else None)
    assert connector.changes("emma@agency.example.ics", first.token).complete


def test_malformed_file_keeps_the_good_events(tmp_path: Path) -> None:
    (tmp_path / "bad.ics").write_bytes(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
        b"BEGIN:VEVENT\r\nUID:good\r\nSUMMARY:Good\r\nDTSTART:20261027T090000Z\r\nDTEND:20261027T100000Z\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:baddate\r\nSUMMARY:Broken\r\nDTSTART:2026-10-27 nine\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:big\r\nDTSTART:20261028T090000Z\r\nDTEND:20261028T100000Z\r\nDESCRIPTION:"
        + b"x" * (5 * 1024 * 1024) + b"\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:trunc\r\nDTSTART:20261029T0900"
    )
    connector = folder_connector(tmp_path)
    events, problems = connector.events("bad.ics", WEEK)
    assert sorted(e.uid for e in events) == ["big", "good"]
    text = [str(p) for p in problems]
    assert any("projects: 'Broken' (UID baddate): bad DTSTART" in t for t in text), text
    assert any("UID big" in t and "DESCRIPTION of 5.2 MB cut" in t for t in text), text
    assert any("malformed" in t for t in text), text
    with pytest.raises(InvalidDataError, match="damaged"):  # never rewrite (and lose) a damaged file
        connector.put("bad.ics", CalendarItem("n", [Event("n", datetime(2026, 11, 2, tzinfo=UTC))]))


def test_missing_calendar_and_path_escape(tmp_path: Path) -> None:
    connector = folder_connector(tmp_path)
    with pytest.raises(NotFoundError):
        connector.events("nobody.ics", WEEK)
    with pytest.raises(NotFoundError):
        connector.events("../etc/passwd", WEEK)


# ----------------------------------------------------------------------------- HTTP feeds
class _Feed(http.server.BaseHTTPRequestHandler):
    body = b""
    etag = '"v1"'
    delay = 0.0
    requests: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        type(self).requests.append(dict(self.headers))
        time.sleep(self.delay)
        if self.path == "/private.ics" and self.headers.get("Authorization") is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="feed"')
            self.end_headers()
            return
        if self.headers.get("If-None-Match") == self.etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("ETag", self.etag)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def feed() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    _Feed.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_feed_uses_conditional_get(feed: str, tmp_path: Path) -> None:
    source = folder_connector(tmp_path)
    seed(source)
    _Feed.body = (tmp_path / "farid@agency.example.ics").read_bytes()
    connector = ICSConnector("feed", ICSSettings(kind="ics", url=f"{feed}/farid.ics"))
    first, _ = connector.events(f"{feed}/farid.ics", WEEK)
    second, _ = connector.events(f"{feed}/farid.ics", WEEK)
    assert {e.summary for e in first} == {e.summary for e in second} == {
        "Project Atlas review", "Sprint planning", "Tokyo office sync"}
    assert _Feed.requests[1].get("If-None-Match") == '"v1"'
    with pytest.raises(UnsupportedOperation):
        connector.put(f"{feed}/farid.ics", CalendarItem("x", [Event("x", datetime(2026, 11, 2, tzinfo=UTC))]))


def test_feed_auth_failure_is_clear(feed: str) -> None:
    connector = ICSConnector("feed", ICSSettings(kind="ics", url=f"{feed}/private.ics"))
    with pytest.raises(AuthenticationError, match="feed: feed refused access"):
        connector.events(f"{feed}/private.ics", WEEK)


def test_all_day_events_are_local_days(tmp_path: Path) -> None:
    connector = folder_connector(tmp_path)
    day = Event("allday", date(2026, 10, 28), date(2026, 10, 29), "Off")
    connector.put("x.ics", CalendarItem("allday", [day]))
    events, _ = connector.events("x.ics", Window(datetime(2026, 10, 27, 22, 30, tzinfo=UTC),
                                                 datetime(2026, 10, 27, 23, 30, tzinfo=UTC)))
    assert [e.uid for e in events] == ["allday"]  # 00:00 Paris = 23:00 UTC the day before
    assert events[0].span_utc(connector._zone)[0] == datetime(2026, 10, 27, 23, tzinfo=UTC)
    assert events[0].span_utc(connector._zone)[1] - events[0].span_utc(connector._zone)[0] == timedelta(days=1)


# ----------------------------------------------------------------------------- writing keeps all
UNREAD = (  # what calmesh does not read of a file, each exactly as written (LF line ends, as some tools save)
    b"BEGIN:VEVENT\nUID:baddate\nSUMMARY:Broken\nDTSTART:2026-10-27 nine\nEND:VEVENT\n",
    b"BEGIN:VTODO\nUID:todo\nSUMMARY:A task\nEND:VTODO\n",
    b"BEGIN:X-VENDOR-THING\nX-A:1\nEND:X-VENDOR-THING\n",
)
NEIGHBOUR = (b"BEGIN:VEVENT\nUID:good\nSUMMARY:Good\nDTSTART:20261027T090000Z\nDTEND:20261027T100000Z\n"
             b"X-VENDOR-NOTE:kept\nATTACH:https://files.example/a.pdf\nEND:VEVENT\n")


def unread_file(path: Path) -> None:
    path.write_bytes(b"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Vendor//Tool//EN\nX-WR-CALNAME:Team\n"
                     + UNREAD[0] + NEIGHBOUR + UNREAD[1] + UNREAD[2] + b"END:VCALENDAR\n")


def test_writing_a_file_keeps_what_calmesh_cannot_read(tmp_path: Path) -> None:
    """Booking into a file, changing and deleting there, leaves every other byte of it as it was:
    a VEVENT calmesh cannot place, a VTODO, an X- component, the calendar's own properties and a
    neighbour's properties calmesh does not model (regression: the file was written from what
    was read, and they were gone)."""
    path = tmp_path / "team.ics"
    unread_file(path)
    connector = folder_connector(tmp_path)
    booked = Event("new@hub", datetime(2026, 11, 2, 9, tzinfo=UTC), datetime(2026, 11, 2, 10, tzinfo=UTC), "Booked")
    ref = connector.put("team.ics", CalendarItem("new@hub", [booked]))
    moved = CalendarItem("new@hub", [booked.with_changes(start=datetime(2026, 11, 2, 11, tzinfo=UTC),
                                                        end=datetime(2026, 11, 2, 12, tzinfo=UTC))], ref)
    for write in (lambda: None, lambda: connector.put("team.ics", moved, if_match=ref.etag)):
        write()
        data = path.read_bytes()
        assert all(text in data for text in (*UNREAD, NEIGHBOUR)), data.decode()
        assert b"X-WR-CALNAME:Team\n" in data and data.count(b"BEGIN:VCALENDAR") == 1
        assert b"\r\n" not in data  # the file's own line ends
    items, problems = connector.items("team.ics")
    assert {i.uid: i.master.start.hour for i in items if i.master} == {"good": 9, "new@hub": 11}
    assert [p.item for p in problems] == ["UID baddate"]
    (good,) = [i for i in items if i.uid == "good"]
    connector.delete("team.ics", good.ref)  # type: ignore[arg-type]
    connector.delete("team.ics", items[-1].ref if items[-1].uid == "new@hub" else items[0].ref)  # type: ignore[arg-type]
    data = path.read_bytes()
    assert all(text in data for text in UNREAD) and NEIGHBOUR not in data and b"new@hub" not in data


def test_a_broken_override_outlives_a_change_to_its_series(tmp_path: Path) -> None:
    """An occurrence's change calmesh cannot read stays in the file when its series is rewritten:
    it is not calmesh's to drop, and the problem stays visible on every read."""
    broken = b"BEGIN:VEVENT\r\nUID:s\r\nRECURRENCE-ID:2026-10-28\r\nDTSTART:later\r\nEND:VEVENT\r\n"
    path = tmp_path / "s.ics"
    path.write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:s\r\nDTSTART:20261027T090000Z\r\n"
                     b"DTEND:20261027T100000Z\r\nRRULE:FREQ=DAILY;COUNT=3\r\nEND:VEVENT\r\n" + broken + b"END:VCALENDAR\r\n")
    connector = folder_connector(tmp_path)
    (series,), _ = connector.items("s.ics")
    changed = CalendarItem("s", [series.components[0].with_changes(summary="Renamed")], series.ref)
    connector.put("s.ics", changed, if_match=series.ref.etag)  # type: ignore[union-attr]
    assert broken in path.read_bytes()
    (series,), problems = connector.items("s.ics")
    assert series.master.summary == "Renamed" and [p.item for p in problems] == ["UID s"]  # type: ignore[union-attr]


def test_an_event_without_uid_is_rewritten_alone(tmp_path: Path) -> None:
    """Events without a UID are read under one derived from their content: deleting one takes
    out that one's text only."""
    first = b"BEGIN:VEVENT\r\nSUMMARY:One\r\nDTSTART:20261027T090000Z\r\nDTEND:20261027T100000Z\r\nEND:VEVENT\r\n"
    second = b"BEGIN:VEVENT\r\nSUMMARY:Two\r\nDTSTART:20261028T090000Z\r\nDTEND:20261028T100000Z\r\nEND:VEVENT\r\n"
    path = tmp_path / "n.ics"
    path.write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + first + second + b"END:VCALENDAR\r\n")
    connector = folder_connector(tmp_path)
    items, _ = connector.items("n.ics")
    (one,) = [i for i in items if i.master and i.master.summary == "One"]
    connector.delete("n.ics", one.ref)  # type: ignore[arg-type]
    data = path.read_bytes()
    assert first not in data and second in data


def test_a_copy_keeps_its_meaning_beside_the_files_zones(tmp_path: Path) -> None:
    """New text goes into the file's calendar object unless it would mean something else there:
    a zone name the object defines otherwise, or an X-WR-TIMEZONE that would make a series in
    UTC recur in local time. Then it is an object of its own after it (RFC 5545 3.4)."""
    custom = (b"BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n"
              b"TZOFFSETFROM:+0900\r\nTZOFFSETTO:+0900\r\nTZNAME:JST\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n")
    path = tmp_path / "z.ics"
    path.write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-TIMEZONE:Europe/Paris\r\n" + custom
                     + b"BEGIN:VEVENT\r\nUID:tokyo\r\nDTSTART;TZID=Customized Time Zone:20261027T090000\r\n"
                     b"DURATION:PT1H\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    other = ical.parse_items(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\nBEGIN:STANDARD\r\n"
        b"DTSTART:16010101T000000\r\nTZOFFSETFROM:-0317\r\nTZOFFSETTO:-0317\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        b"BEGIN:VEVENT\r\nUID:rio\r\nDTSTART;TZID=Customized Time Zone:20261027T090000\r\nDURATION:PT1H\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n")[0][0]
    weekly = Event("weekly", datetime(2026, 10, 20, 9, tzinfo=UTC), datetime(2026, 10, 20, 10, tzinfo=UTC),
                   "In UTC", rrule=["FREQ=WEEKLY;COUNT=3"])
    connector = folder_connector(tmp_path)
    connector.put("z.ics", CalendarItem("rio", other.components))
    data = path.read_bytes()
    assert data.count(b"BEGIN:VCALENDAR") == 2 and data.index(b"UID:rio") > data.index(b"END:VCALENDAR")
    window = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    starts = {e.uid: e.start for e in connector.events("z.ics", window)[0]}
    assert starts == {"tokyo": datetime(2026, 10, 27, 0, tzinfo=UTC), "rio": datetime(2026, 10, 27, 12, 17, tzinfo=UTC)}

    google = tmp_path / "google.ics"
    google.write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-TIMEZONE:Europe/Paris\r\nEND:VCALENDAR\r\n")
    connector.put("google.ics", CalendarItem("weekly", [weekly]))
    assert google.read_bytes().count(b"BEGIN:VCALENDAR") == 2
    assert sorted(e.start for e in connector.events("google.ics", window)[0]) == [
        datetime(2026, 10, 20, 9, tzinfo=UTC), datetime(2026, 10, 27, 9, tzinfo=UTC), datetime(2026, 11, 3, 9, tzinfo=UTC)]


def test_an_escaped_uid_is_found_and_one_object_is_kept_where_asked(tmp_path: Path) -> None:
    """A UID written with an escaped comma is the UID the parser reads; a CalDAV resource (one
    VCALENDAR, RFC 4791 4.1) is never given a second object: the caller writes the item alone."""
    path = tmp_path / "e.ics"
    path.write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-TIMEZONE:Europe/Paris\r\nBEGIN:VEVENT\r\nUID:a\\,b\r\n"
                     b"DTSTART:20261027T090000Z\r\nDTEND:20261027T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    connector = folder_connector(tmp_path)
    (item,), _ = connector.items("e.ics")
    assert item.uid == "a,b"
    connector.put("e.ics", CalendarItem("a,b", [item.components[0].with_changes(summary="Named")], item.ref),
                  if_match=item.ref.etag)  # type: ignore[union-attr]
    data = path.read_bytes()
    assert data.count(b"BEGIN:VEVENT") == 1 and b"SUMMARY:Named" in data
    weekly = CalendarItem("w", [Event("w", datetime(2026, 10, 20, 9, tzinfo=UTC), datetime(2026, 10, 20, 10, tzinfo=UTC),
                                      rrule=["FREQ=WEEKLY;COUNT=2"])])
    with pytest.raises(ical.ICalError, match="object of its own"):
        ical.replace_in_text(data, "w", weekly, present=False, one_object=True)
