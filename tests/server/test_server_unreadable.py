"""Every door of a real hub server on 127.0.0.1 when a person's calendar file is not iCalendar
(issue 13, item 1): the JSON API, the VFREEBUSY URL, the busy feed, EWS availability (exchangelib),
the CalDAV outbox (the ``caldav`` client), the web grid and find-time all say unknown with an error
naming the source, never free. Emma's only calendar is ``projects/emma@agency.example.ics``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import caldav
import httpx
import icalendar
import pytest

from calmesh.ical import parse_vfreebusy
from calmesh.model import BusyType

from .conftest import DEMO, OPS, Served, at
from .test_server_ews import views

EMMA = "emma@agency.example"
WEEK = {"start": "2026-11-23T00:00:00+01:00", "end": "2026-11-28T00:00:00+01:00"}


@pytest.fixture
def broken(make_server, tmp_path: Path) -> Served:  # type: ignore[no-untyped-def]
    served: Served = make_server()
    (tmp_path / "projects" / f"{EMMA}.ics").write_bytes(b"<html>502 Bad Gateway</html>\r\n")
    return served


def names_the_file(text: str) -> bool:
    return "projects" in text and f"{EMMA}.ics" in text and "unreadable" in text


def test_json_api_says_unknown_with_the_file(broken: Served) -> None:
    response = httpx.post(f"{broken.url}/api/v1/freebusy", json={"attendees": [EMMA], **WEEK, "interval": 60},
                          auth=OPS, timeout=10)
    (emma,) = response.json()["people"]
    assert names_the_file(emma["error"])
    assert emma["availability_view"] == "4" * 120 and [b["type"] for b in emma["busy"]] == ["unknown"]


def test_vfreebusy_url_says_unknown_with_the_file(broken: Served) -> None:
    response = httpx.get(f"{broken.url}/freebusy/{EMMA}.vfb", params={"start": "2026-11-23", "end": "2026-11-28"},
                         auth=OPS)
    assert names_the_file(response.headers["X-Calmesh-Error"])
    assert [p.type for p in parse_vfreebusy(response.content)] == [BusyType.UNKNOWN]
    (fb,) = icalendar.Calendar.from_ical(response.content).walk("VFREEBUSY")
    assert "Data missing" in str(fb["COMMENT"])


def test_busy_feed_shows_unknown_time_never_a_free_gap(broken: Served) -> None:
    response = httpx.get(f"{broken.url}/feeds/{EMMA}.ics", params={"start": "2026-11-23", "end": "2026-11-28"},
                         auth=DEMO)
    assert names_the_file(response.headers["X-Calmesh-Error"])
    (event,) = icalendar.Calendar.from_ical(response.content).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Unknown (data missing)" and str(event["TRANSP"]) == "OPAQUE"
    assert event.decoded("DTSTART") == at(0, 0) and event.decoded("DTEND") == at(5, 0)


def test_ews_availability_says_no_data(broken: Served) -> None:
    (emma,) = views(broken, [EMMA])
    assert emma.merged == "4" * 120 and [e.busy_type for e in emma.calendar_events] == ["NoData"]


def test_caldav_outbox_answers_an_error_for_the_person(broken: Served) -> None:
    client = caldav.DAVClient(url=f"{broken.url}/.well-known/caldav", username=OPS[0], password=OPS[1])
    answer = client.principal().freebusy_request(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC),
                                                 [f"mailto:{EMMA}"])
    error = answer["errors"][f"mailto:{EMMA}"]
    assert error.startswith("5.1;") and names_the_file(error)


def test_web_grid_flags_the_missing_data(broken: Served) -> None:
    response = httpx.get(f"{broken.url}/", params={"who": EMMA, "date": "2026-11-23"}, auth=DEMO)
    assert response.status_code == 200
    assert "data missing" in response.text and f"{EMMA}.ics" in response.text


def test_find_time_never_suggests_unread_time(broken: Served) -> None:
    """In 2030, as the other find-time tests: the server measures notice from the real clock."""
    def find(required: list[str]) -> list[dict]:
        response = httpx.post(f"{broken.url}/api/v1/find-time", auth=OPS, timeout=20, json={
            "organizer": "alice@agency.example", "required": required, "duration": 60,
            "start": "2030-03-04T00:00:00+01:00", "end": "2030-03-09T00:00:00+01:00"})
        assert response.status_code == 200, response.text
        return response.json()["suggestions"]

    assert find(["bruno@agency.example"])  # the search itself finds time
    assert find([EMMA]) == []
