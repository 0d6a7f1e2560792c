"""The ICS connector against real files and a real HTTP feed served on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

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
