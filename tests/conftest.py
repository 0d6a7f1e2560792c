"""Shared fixtures: real CalDAV servers (Radicale, Xandikos), a slow HTTP feed and an SMTP
server (aiosmtpd), all on 127.0.0.1; and ``seed_ics``, the demo week in ICS folders.

Each pytest session (so each xdist worker) starts its own servers on free ports in its own
temporary folder; every test gets a fresh calendar collection on them, so tests never see each
other's events. ``caldav_server`` runs a test once against each server: the same connector
test-suite passes against both.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from calmesh.connectors.base import RetryPolicy
from calmesh.connectors.caldav import CalDAVConnector, CalDAVSettings
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.demo.data import build_week
from calmesh.demo.servers import (
    XANDIKOS_PRINCIPAL,
    RunningServer,
    make_calendar,
    start_radicale,
    start_xandikos,
)

CALDAV_USER = "alice@example.com"
CALDAV_PASSWORD = "alice-secret"
CALDAV_PASSWORD_ENV = "CALMESH_TEST_CALDAV_PASSWORD"
FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Refuse to run tests whose ``xdist_group`` mark ``--dist loadgroup`` ignored. That mode
    groups tests by a suffix it adds to their ids in each worker, and pytest 9.2 ignores the
    suffix (pytest-dev/pytest-xdist#1386): the grouped tests (one Thunderbird profile, one demo
    the documented commands share...) were spread over both workers without a word."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    ungrouped = [item.nodeid for item in session.items
                 if item.get_closest_marker("xdist_group") is not None
                 and "@" not in item.nodeid.rpartition("]")[2]]
    if ungrouped:
        raise pytest.UsageError(f"--dist loadgroup did not group {len(ungrouped)} test(s) marked xdist_group "
                                f"(pytest-dev/pytest-xdist#1386; pytest below 9.2 groups them), e.g. {ungrouped[0]}")


@dataclass
class CalDAVServer:
    """A running CalDAV server and how to log in to it."""

    kind: str
    server: RunningServer
    home: str
    """Collection under which tests create their calendars."""
    username: str = CALDAV_USER
    password: str = CALDAV_PASSWORD
    password_env: str = CALDAV_PASSWORD_ENV
    checks_passwords: bool = True
    """Xandikos only authenticates over TLS, so on loopback it accepts any password."""

    @property
    def url(self) -> str:
        return self.server.url

    def new_calendar(self, name: str | None = None) -> str:
        """A fresh, empty calendar collection; returns its URL."""
        slug = f"cal-{uuid.uuid4().hex[:12]}"
        return make_calendar(self.home + slug + "/", self.username, self.password, name=name or slug)

    def connector(self, platform: str = "dav", **settings: Any) -> CalDAVConnector:
        """A connector logged in as the test user, with a short retry backoff."""
        values: dict[str, Any] = {"kind": "caldav", "url": self.url, "username": self.username,
                                  "password_env": self.password_env, "timeout": 10.0, **settings}
        connector = CalDAVConnector(platform, CalDAVSettings(**values))
        connector.retry = FAST_RETRY
        return connector


@pytest.fixture(scope="session", autouse=False)
def _caldav_password() -> Iterator[None]:
    previous = os.environ.get(CALDAV_PASSWORD_ENV)
    os.environ[CALDAV_PASSWORD_ENV] = CALDAV_PASSWORD
    yield
    if previous is None:
        os.environ.pop(CALDAV_PASSWORD_ENV, None)
    else:
        os.environ[CALDAV_PASSWORD_ENV] = previous


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory, _caldav_password: None) -> Iterator[CalDAVServer]:
    with start_radicale(tmp_path_factory.mktemp("radicale"), {CALDAV_USER: CALDAV_PASSWORD}) as server:
        yield CalDAVServer("radicale", server, f"{server.url}{CALDAV_USER}/")


@pytest.fixture(scope="session")
def xandikos(tmp_path_factory: pytest.TempPathFactory, _caldav_password: None) -> Iterator[CalDAVServer]:
    with start_xandikos(tmp_path_factory.mktemp("xandikos")) as server:
        home = server.url.rstrip("/") + XANDIKOS_PRINCIPAL + "calendars/"
        yield CalDAVServer("xandikos", server, home, checks_passwords=False)


@pytest.fixture(params=["radicale", "xandikos"])
def caldav_server(request: pytest.FixtureRequest) -> CalDAVServer:
    """Each test using this runs against Radicale and against Xandikos."""
    server: CalDAVServer = request.getfixturevalue(request.param)
    return server


# ------------------------------------------------------------------------ the demo week as files
ICS_PLATFORMS_TOML = """[platforms.zoho]
kind = "ics"
path = "zoho"
[platforms.exchange]
kind = "ics"
path = "exchange"
[platforms.projects]
kind = "ics"
path = "projects"
"""
"""The configuration of the three folders :func:`seed_ics` writes (paths relative to the config)."""


def seed_ics(root: Path, monday: date) -> None:
    """The demo week in three ICS folders, one per demo platform, written with the ICS connector."""
    week = build_week(monday)
    for platform in ("zoho", "exchange", "projects"):
        (root / platform).mkdir(parents=True, exist_ok=True)
        connector = ICSConnector(platform, ICSSettings(kind="ics", path=str(root / platform)))
        for (p, owner), items in week.items.items():
            if p == platform:
                for item in items:
                    connector.put(f"{owner}.ics", item)


# ------------------------------------------------------------------------ a platform too slow
class _SlowFeed(http.server.BaseHTTPRequestHandler):
    delay = 3.0

    def do_GET(self) -> None:  # noqa: N802 - http.server API
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
    """An ICS feed that takes 3 s to answer: longer than the hub timeouts the tests configure."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowFeed)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cal.ics"
    server.shutdown()


# ------------------------------------------------------------------------ a real SMTP server
@dataclass
class SmtpInbox:
    """What the test SMTP server received: (envelope recipients, raw message) pairs."""

    port: int
    messages: list[tuple[list[str], bytes]] = field(default_factory=list)
    refusal: str | None = None
    """An SMTP answer to give every message instead of taking it (``451 4.3.0 ...``: try later)."""

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        if self.refusal is not None:
            return self.refusal
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_inbox() -> Iterator[SmtpInbox]:
    with socket.socket() as probe:  # aiosmtpd checks its own port on start, so port 0 won't do
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = SmtpInbox(port)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
