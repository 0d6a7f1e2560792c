"""The server in front of a real CalDAV server (Radicale, started by ``calmesh.demo.servers``).

Marketing's calendars live in Radicale, read through calmesh's CalDAV connector; the answer
calmesh serves is checked against Radicale's own free-busy-query REPORT for the same calendar.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import icalendar
import pytest

from calmesh import ical
from calmesh.config import parse_config
from calmesh.demo.data import build_week
from calmesh.fakes import serve
from calmesh.model import Window
from calmesh.server.app import create_app
from calmesh.services.hub import Hub

servers = pytest.importorskip("calmesh.demo.servers")

USER, PASSWORD, PASSWORD_ENV = "demo", "radicale-pw", "CALMESH_TEST_RADICALE_PW"
MARKETING = ("alice@agency.example", "bruno@agency.example")
WEEK = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC))


@dataclass
class Setup:
    url: str
    calendars: dict[str, str]


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    radicale = servers.start_radicale(tmp_path / "radicale", {USER: PASSWORD})
    try:
        base = radicale.url
        week = build_week(date(2026, 11, 23))
        calendars = {}
        with httpx.Client(auth=(USER, PASSWORD), timeout=30) as client:
            for email in MARKETING:
                url = servers.make_calendar(f"{base}{USER}/{email.split('@')[0]}/", USER, PASSWORD)
                for item in week.items[("zoho", email)]:
                    client.put(f"{url}{item.uid}.ics", content=ical.item_to_ical(item),
                               headers={"Content-Type": "text/calendar"}).raise_for_status()
                calendars[email] = url
        people = "".join(f'[[people]]\nemail = "{e}"\nplatform = "zoho"\ncalendars = ["{c}"]\n'
                         for e, c in calendars.items())
        text = (f'[hub]\ntimezone = "Europe/Paris"\n[server]\n[[server.users]]\nname = "{USER}"\n'
                f'password_env = "{PASSWORD_ENV}"\n[platforms.zoho]\nkind = "caldav"\nurl = "{base}{USER}/"\n'
                f'username = "{USER}"\npassword_env = "{PASSWORD_ENV}"\n{people}')
        hub = Hub(parse_config(text, tmp_path / "calmesh.toml"))
        running = serve(create_app(hub))
        try:
            yield Setup(running.url, calendars)
        finally:
            running.stop()
            hub.close()
    finally:
        radicale.stop()


def test_vfreebusy_over_radicale_agrees_with_radicales_own_report(setup: Setup) -> None:
    """Both answers hold the Paris-zoned meetings at the same instants. (They may differ on
    other events: Radicale reads the VTIMEZONE icalendar writes for Europe/London an hour off,
    and reports all-day and out-of-office time as plain BUSY in UTC.)"""
    report = f"""<?xml version="1.0"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">
<C:time-range start="{WEEK.start:%Y%m%dT%H%M%SZ}" end="{WEEK.end:%Y%m%dT%H%M%SZ}"/></C:free-busy-query>"""
    campaign = (datetime(2026, 11, 23, 13, tzinfo=UTC), datetime(2026, 11, 23, 15, tzinfo=UTC))
    for email in MARKETING:
        own = httpx.request("REPORT", setup.calendars[email], content=report, auth=(USER, PASSWORD),
                            headers={"Depth": "1", "Content-Type": "application/xml"})
        assert own.status_code == 200
        served = httpx.get(f"{setup.url}/freebusy/{email}.vfb", auth=(USER, PASSWORD),
                           params={"start": WEEK.start.isoformat(), "end": WEEK.end.isoformat()})
        assert served.status_code == 200 and icalendar.Calendar.from_ical(served.content).walk("VFREEBUSY")
        for answer in (own.content, served.content):
            assert campaign in {(p.start, p.end) for p in ical.parse_vfreebusy(answer)}, email


def test_json_api_over_radicale(setup: Setup) -> None:
    response = httpx.post(f"{setup.url}/api/v1/freebusy", auth=(USER, PASSWORD), timeout=30,
                          json={"attendees": list(MARKETING), "start": WEEK.start.isoformat(),
                                "end": WEEK.end.isoformat(), "interval": 60})
    alice, bruno = response.json()["people"]
    assert alice["error"] is None and bruno["error"] is None
    assert ("2026-11-23T13:00:00+00:00", "2026-11-23T15:00:00+00:00", "busy") in {
        (b["start"], b["end"], b["type"]) for b in alice["busy"]}
    assert any(b["start"] <= "2026-11-27T00:00:00+00:00" < b["end"] for b in bruno["busy"])  # Friday off
