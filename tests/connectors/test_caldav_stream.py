"""Listings read as a stream (``connectors/caldav_stream.py``): a large calendar listed page by page
against a real Radicale, pages of any size read the same on Radicale and Xandikos, and hostile or
broken XML refused with a clear error, both by the reader and by the connector talking to a
server that sends it (a canned HTTP server: no real CalDAV server sends such answers)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from caldav.response import DAVResponse, SyncCollectionResult
from lxml import etree

from calmesh.connectors import caldav_stream
from calmesh.connectors.base import ConnectorError, RetryPolicy, TransientError
from calmesh.connectors.caldav import CalDAVConnector, CalDAVSettings
from calmesh.connectors.caldav_stream import (
    MalformedAnswer,
    OversizedAnswer,
    UnreadableAnswer,
    read_multistatus,
)
from calmesh.demo.servers import seed_radicale_calendar, start_radicale
from calmesh.model import CalendarItem, Event

from .loopback import MultistatusHandler

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the fixtures

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)


def _document(responses: int, *, tail: str = "") -> bytes:
    body = "".join(f'<d:response><d:href>/cal/{n}.ics</d:href><d:propstat><d:prop><d:getetag>"{n}"</d:getetag>'
                   f'</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>'
                   for n in range(responses))
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus xmlns:d="DAV:">{body}{tail}'
            '<d:sync-token>http://example.test/sync/7</d:sync-token></d:multistatus>').encode()


def _pieces(data: bytes, size: int = 97) -> Iterator[bytes]:
    return (data[n:n + size] for n in range(0, len(data), size))


def _sync_page(page: etree._Element) -> SyncCollectionResult:
    response = DAVResponse.from_bytes(b"")
    response.tree = page
    return response.parse_sync_collection()


def _read(data: bytes) -> list[SyncCollectionResult]:
    return list(read_multistatus(_pieces(data), _sync_page))


# ------------------------------------------------------------------------------- the reader
def test_pages_hold_at_most_a_page_and_the_last_carries_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caldav_stream, "PAGE", 3)
    pages = _read(_document(7))
    assert [len(p.changed) for p in pages] == [3, 3, 1]
    assert [p.sync_token for p in pages] == [None, None, "http://example.test/sync/7"]
    assert [e.href for p in pages for e in p.changed] == [f"/cal/{n}.ics" for n in range(7)]
    assert pages[0].changed[0].etag == '"0"'
    assert _read(_document(0))[-1].sync_token == "http://example.test/sync/7"


def test_a_truncation_marker_reaches_the_last_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 6578 3.6: a bare 507 for the collection says "more next time"; the library recognises it
    by the sync-token beside it, so it is held for the last page whatever its place."""
    monkeypatch.setattr(caldav_stream, "PAGE", 2)
    marker = "<d:response><d:href>/cal/</d:href><d:status>HTTP/1.1 507 Insufficient Storage</d:status></d:response>"
    pages = _read(_document(4, tail=marker))
    assert [p.truncated for p in pages] == [False, False, True]
    assert len([e for p in pages for e in p.changed]) == 4


@pytest.mark.parametrize(("body", "why"), [
    # "billion laughs": entities declared in a document type
    (b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
     b'<d:multistatus xmlns:d="DAV:"><d:response><d:href>&b;</d:href></d:response></d:multistatus>', "document type"),
    # an external entity (a local file)
    (b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     b'<d:multistatus xmlns:d="DAV:"><d:response><d:href>&x;</d:href></d:response></d:multistatus>', "document type"),
    (b'<html><body>Service Unavailable</body></html>', "expected a DAV:multistatus"),
    (b'<d:multistatus xmlns:d="DAV:"/>', None),
    (b"", "malformed XML"),
])
def test_hostile_or_foreign_documents_are_refused(body: bytes, why: str | None) -> None:
    if why is None:  # an empty multistatus is a valid (empty) answer
        assert _read(body)[-1].changed == []
        return
    with pytest.raises(UnreadableAnswer, match=why):
        _read(body)


def test_malformed_xml_is_refused_as_malformed() -> None:
    whole = _document(5)
    with pytest.raises(MalformedAnswer, match="malformed XML"):
        _read(whole[: len(whole) // 2])  # cut off part way
    with pytest.raises(MalformedAnswer, match="malformed XML"):
        _read(whole.replace(b"</d:href>", b"</d:hre>", 1))


def test_lxml_limits_stay_on_for_one_element_not_for_the_document() -> None:
    """One text node over 10 MB or nesting deeper than 256 is not read here (no huge_tree: the
    connector then lists first and asks for the objects apart); a document of any size is
    read, since it is never held (here 20,000 responses, ~4 MB)."""
    huge = ('<d:multistatus xmlns:d="DAV:"><d:response><d:href>/a</d:href><d:x>' + "y" * 11_000_000
            + "</d:x></d:response></d:multistatus>").encode()
    with pytest.raises(OversizedAnswer):
        _read(huge)
    deep = ('<d:multistatus xmlns:d="DAV:">' + "<d:x>" * 300 + "</d:x>" * 300 + "</d:multistatus>").encode()
    with pytest.raises(OversizedAnswer):
        _read(deep)
    assert sum(len(p.changed) for p in read_multistatus(_pieces(_document(20_000), 65536), _sync_page)) == 20_000


# ------------------------------------------------------------------------ against real servers
def _item(n: int) -> CalendarItem:
    uid = f"stream-{n:05d}@calmesh.test"
    start = datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(hours=n)
    master = Event(uid, start, start + timedelta(minutes=30), summary=f"event {n}",
                   rrule=["FREQ=WEEKLY;COUNT=5"] if n % 7 == 0 else [])
    if n % 14 == 0:  # a series with a moved occurrence: one object, two components
        moved = start + timedelta(days=7)
        return CalendarItem(uid, [master, Event(uid, moved + timedelta(hours=2), moved + timedelta(hours=3),
                                                summary=f"event {n} (moved)", recurrence_id=moved)])
    return CalendarItem(uid, [master])


@pytest.fixture
def pages(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each page the connector's streamed listings read, in order."""
    sizes: list[int] = []
    real_read = caldav_stream.read_multistatus

    def counting(chunks: Any, read_page: Any) -> Any:
        def read(page: etree._Element) -> Any:
            sizes.append(len(page))
            return read_page(page)
        return real_read(chunks, read)

    monkeypatch.setattr("calmesh.connectors.caldav.read_multistatus", counting)
    return sizes


def test_a_large_calendar_is_listed_as_a_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               radicale: CalDAVServer, pages: list[int]) -> None:
    """700 objects seeded into Radicale's storage: the first listing (objects inline) reads them
    page by page, never as one document, and reads every one of them right."""
    items = [_item(n) for n in range(700)]
    seed_radicale_calendar(tmp_path, radicale.username, "big", items)
    monkeypatch.setattr(CalDAVConnector, "_multiget_batch", None)  # not called: the listing brought all
    with start_radicale(tmp_path, {radicale.username: radicale.password}) as server:
        connector = CalDAVConnector("big", CalDAVSettings(kind="caldav", url=server.url, username=radicale.username,
                                                          password_env=radicale.password_env, timeout=60.0))
        calendar = f"{server.url}{radicale.username}/big/"
        with connector:
            first = connector.changes(calendar, None)
    assert first.complete and first.token and not first.unreadable
    assert max(pages) <= caldav_stream.PAGE and sum(pages) >= 700 and len(pages) >= 700 // caldav_stream.PAGE
    got = {i.uid: i for i in first.changed}
    assert sorted(got) == sorted(i.uid for i in items)
    for item in items:
        read = got[item.uid]
        assert [(c.summary, c.start, c.recurrence_id) for c in read.components] == \
            [(c.summary, c.start, c.recurrence_id) for c in item.components]
        assert read.ref is not None and read.ref.etag and read.ref.id.endswith(".ics")


def test_small_pages_read_the_same(caldav_server: CalDAVServer, monkeypatch: pytest.MonkeyPatch,
                                   pages: list[int]) -> None:
    """Pages of two responses: a first listing and a listing from its token (a change and a
    deletion) come out as with one page, on Radicale (objects inline) and Xandikos (listed, then
    fetched)."""
    monkeypatch.setattr(caldav_stream, "PAGE", 2)
    calendar = caldav_server.new_calendar()
    with caldav_server.connector() as connector:
        refs = [connector.put(calendar, _item(n)) for n in range(5)]
        first = connector.changes(calendar, None)
        assert sorted(i.uid for i in first.changed) == sorted(_item(n).uid for n in range(5))
        assert len(pages) >= 3 and max(pages) <= 2 + 1  # the last page also holds the sync-token
        changed = _item(1)
        changed.components[0].summary = "renamed"
        connector.put(calendar, CalendarItem(changed.uid, changed.components,
                                             next(i.ref for i in first.changed if i.uid == changed.uid)))
        connector.delete(calendar, refs[3])
        later = connector.changes(calendar, first.token)
    assert [(i.uid, i.components[0].summary) for i in later.changed] == [(changed.uid, "renamed")]
    assert [r.id for r in later.deleted] == [refs[3].id]


class _Canned(http.server.ThreadingHTTPServer):
    body = b""
    """What every REPORT is answered with."""


class _Hostile(MultistatusHandler):
    """Answers a PROPFIND with a calendar without CTag and every REPORT with the server's ``body``."""

    server: _Canned

    def do_PROPFIND(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_multistatus(b'<d:multistatus xmlns:d="DAV:"><d:response><d:href>/cal/</d:href><d:propstat>'
                              b"<d:prop/><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
                              b"</d:multistatus>")

    def do_REPORT(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_multistatus(self.server.body)


@pytest.fixture
def canned() -> Iterator[_Canned]:
    server = _Canned(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_connector_refuses_a_hostile_listing(canned: _Canned) -> None:
    canned.body = (b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">]><d:multistatus xmlns:d="DAV:">'
                   b"<d:response><d:href>&a;</d:href></d:response></d:multistatus>")
    url = f"http://127.0.0.1:{canned.server_address[1]}/cal/"
    connector = CalDAVConnector("evil", CalDAVSettings(kind="caldav", url=url, timeout=10.0))
    connector.retry = FAST_RETRY
    with connector:
        with pytest.raises(ConnectorError, match="sync-collection on .*unreadable answer.*document type") as refused:
            connector.changes(url, None)
        assert not isinstance(refused.value, TransientError)  # not asked again: it would say the same
        canned.body = _document(300)[:-40]  # cut off part way: malformed
        with pytest.raises(TransientError, match="the server answered malformed XML"):
            connector.changes(url, None)


def test_a_listing_before_the_auth_scheme_is_learnt(radicale: CalDAVServer) -> None:
    """A connector that has not learnt the server's auth scheme yet is refused the streamed
    listing (401) and asks again the usual way (the library negotiates from the 401); the next
    listing streams: both read the calendar the same."""
    calendar = radicale.new_calendar()
    with radicale.connector() as writer:
        writer.put(calendar, _item(1))
    reader = radicale.connector()
    with reader:
        assert reader._dav().auth is None
        whole = reader._listing(calendar, None, with_data=True)
        assert reader._dav().auth is not None
        streamed = reader._listing(calendar, None, with_data=True)
    assert whole is not None and streamed is not None
    assert list(whole.changed) == list(streamed.changed) and len(whole.changed) == 1
    [(items, problems)] = streamed.read.values()
    assert problems == [] and [i.uid for i in items] == [_item(1).uid]


def test_the_member_listing_is_read_as_a_stream(caldav_server: CalDAVServer, monkeypatch: pytest.MonkeyPatch,
                                                pages: list[int]) -> None:
    """The PROPFIND (Depth 1) of every object's ETag and size, by which a server without
    sync-collection is listed and every full listing is checked (objects a server leaves out of
    its REPORTs), is read page by page too: pages of two, five objects, all listed."""
    monkeypatch.setattr(caldav_stream, "PAGE", 2)
    calendar = caldav_server.new_calendar()
    with caldav_server.connector(sync_collection=False) as connector:
        refs = [connector.put(calendar, _item(n)) for n in range(5)]
        first = connector.changes(calendar, None)
    assert first.complete and not first.unreadable
    assert sorted((i.ref.id, bool(i.ref.etag)) for i in first.changed if i.ref) == sorted((r.id, True) for r in refs)
    assert len(pages) >= 3 and max(pages) <= 2 + 1  # six responses (the collection's own too)
