"""A running hub server on 127.0.0.1, backed by real platforms.

Three folders of ``.ics`` files (the ICS connector) hold the demo agency's week, and one
platform is an HTTP feed that answers too slowly, so timeouts and partial answers are real.
The server runs in uvicorn on a free port in a background thread; tests talk to it with the
clients users would use (httpx, exchangelib, caldav).
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from starlette.applications import Starlette

from calmesh.config import parse_config
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.demo.data import PEOPLE, build_week
from calmesh.fakes import RunningServer, serve
from calmesh.server.app import create_app
from calmesh.server.auth import hash_password
from calmesh.services.hub import Hub

MONDAY = date(2026, 11, 23)
PASSWORD_ENV = "CALMESH_TEST_SERVER_PASSWORD"
DEMO = ("demo", "demo-secret")
"""Sees everyone's details; password from the environment (so it also works as a bearer token)."""
OPS = ("ops", "ops-secret")
"""Free/busy only; password hashed; has a hashed API token."""
OPS_TOKEN = "ops-api-token"
LEAD = ("lead", "lead-secret")
"""Sees details of the marketing team only."""


def at(day: int, hour: int, minute: int = 0, tz: str = "Europe/Paris") -> datetime:
    return datetime.combine(MONDAY + timedelta(days=day), datetime.min.time().replace(hour=hour, minute=minute),
                            tzinfo=ZoneInfo(tz)).astimezone(UTC)


class _SlowFeed(http.server.BaseHTTPRequestHandler):
    delay = 3.0

    def do_GET(self) -> None:  # noqa: N802
        time.sleep(self.delay)
        body = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_feed() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowFeed)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cal.ics"
    server.shutdown()


def seed_ics(root: Path, monday: date = MONDAY) -> None:
    """The demo week in three ICS folders, one per demo platform, written with the ICS connector."""
    week = build_week(monday)
    for platform in ("zoho", "exchange", "projects"):
        (root / platform).mkdir(parents=True, exist_ok=True)
        connector = ICSConnector(platform, ICSSettings(kind="ics", path=str(root / platform)))
        for (p, owner), items in week.items.items():
            if p == platform:
                for item in items:
                    connector.put(f"{owner}.ics", item)


def people_toml(monday: date = MONDAY) -> str:
    week = build_week(monday)
    out = []
    for person in PEOPLE:
        also = ""
        if person.platform != "projects" and ("projects", person.email) in week.items:
            also = f'also = [{{ platform = "projects", calendars = ["{person.email}.ics"] }}]\n'
        out.append(f"""[[people]]
email = "{person.email}"
name = "{person.name}"
team = "{person.team}"
platform = "{person.platform}"
calendars = ["{person.email}.ics"]
timezone = "{person.timezone}"
working_hours = {{ days = "Mon-Fri", start = "{person.hours[0]:%H:%M}", end = "{person.hours[1]:%H:%M}" }}
{also}""")
    return "\n".join(out)


def config_text(slow_feed: str, *, server_extra: str = "", timeout: float = 1.0) -> str:
    fast = 1000  # PBKDF2 rounds: tests check the format, not the cost
    return f"""
[hub]
timezone = "Europe/Paris"
freebusy_timeout = {timeout}
[server]
cache_ttl = 30
{server_extra}
[[server.users]]
name = "{DEMO[0]}"
password_env = "{PASSWORD_ENV}"
sees_details_of = ["*"]
[[server.users]]
name = "{OPS[0]}"
password_hash = "{hash_password(OPS[1], iterations=fast)}"
token_hash = "{hash_password(OPS_TOKEN, iterations=fast)}"
[[server.users]]
name = "{LEAD[0]}"
password_hash = "{hash_password(LEAD[1], iterations=fast)}"
sees_details_of = ["team:marketing"]
[platforms.zoho]
kind = "ics"
path = "zoho"
[platforms.exchange]
kind = "ics"
path = "exchange"
[platforms.projects]
kind = "ics"
path = "projects"
[platforms.slow]
kind = "ics"
url = "{slow_feed}"
{people_toml()}
[[people]]
email = "gus@agency.example"
name = "Gus Slow"
platform = "slow"
"""


@dataclass
class Served:
    url: str
    hub: Hub
    app: Starlette
    running: RunningServer


@pytest.fixture
def make_server(tmp_path: Path, slow_feed: str, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Factory: ``make_server(server_extra=...)`` starts a hub server over the seeded folders."""
    monkeypatch.setenv(PASSWORD_ENV, DEMO[1])
    seed_ics(tmp_path)
    started: list[Served] = []

    def make(server_extra: str = "", timeout: float = 1.0) -> Served:
        path = tmp_path / f"calmesh-{len(started)}.toml"
        text = config_text(slow_feed, server_extra=server_extra, timeout=timeout)
        path.write_text(text)
        hub = Hub(parse_config(text, path))
        app = create_app(hub)
        running = serve(app)
        served = Served(running.url, hub, app, running)
        started.append(served)
        return served

    yield make
    for served in started:
        served.running.stop()
        served.hub.close()


@pytest.fixture
def server(make_server) -> Served:  # type: ignore[no-untyped-def]
    return make_server()
