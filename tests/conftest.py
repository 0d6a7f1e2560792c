"""Shared fixtures: real CalDAV servers (Radicale, Xandikos) on 127.0.0.1.

Each pytest session (so each xdist worker) starts its own servers on free ports in its own
temporary folder; every test gets a fresh calendar collection on them, so tests never see each
other's events. ``caldav_server`` runs a test once against each server: the same connector
test-suite passes against both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from calmesh.connectors.base import RetryPolicy
from calmesh.connectors.caldav import CalDAVConnector, CalDAVSettings
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
