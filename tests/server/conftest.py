"""A running hub server on 127.0.0.1, backed by real platforms.

Three folders of ``.ics`` files (the ICS connector) hold the demo agency's week, and one
platform is an HTTP feed that answers too slowly, so timeouts and partial answers are real.
The server runs in uvicorn on a free port in a background thread; tests talk to it with the
clients users would use (httpx, exchangelib, caldav).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import schemathesis.specs.openapi.schemas  # noqa: F401  see below
from starlette.applications import Starlette

from calmesh.config import parse_config
from calmesh.demo.data import PEOPLE, build_week
from calmesh.fakes import RunningServer, serve
from calmesh.server.app import create_app
from calmesh.server.auth import hash_password
from calmesh.services.hub import Hub
from conftest import ICS_PLATFORMS_TOML
from conftest import seed_ics as shared_seed_ics

# schemathesis loads its OpenAPI machinery on the first ``from_url``; pytest compiles those modules
# (assertion rewriting: schemathesis is a pytest plugin) with ``ast.parse``. Done inside a test,
# while the server thread compiles too, CPython 3.11 can fail with "AST constructor recursion
# depth mismatch" (the AST module's recursion counter is shared: python/cpython#106905), as one
# clean-clone CI run did. Importing it here, at collection, before any server thread runs,
# avoids the race.

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


def seed_ics(root: Path, monday: date = MONDAY) -> None:
    """The demo week in ICS folders (the shared helper, defaulting to this suite's week)."""
    shared_seed_ics(root, monday)


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


FAST_HASH = {"time_cost": 1, "memory_kib": 8, "parallelism": 1}
"""Argon2 at its lowest cost: tests check the format and the flow, not the cost."""


def config_text(slow_feed: str, *, server_extra: str = "", timeout: float = 1.0, tail: str = "") -> str:
    """The suite's config; ``server_extra`` goes in ``[server]``, ``tail`` (more platforms, people
    or ``[[server.users]]``) at the end."""
    return f"""
[hub]
timezone = "Europe/Paris"
freebusy_timeout = {timeout}
[server]
cache_ttl = 30
monitoring_users = ["{DEMO[0]}"]
{server_extra}
[[server.users]]
name = "{DEMO[0]}"
password_env = "{PASSWORD_ENV}"
sees_details_of = ["*"]
[[server.users]]
name = "{OPS[0]}"
password_hash = "{hash_password(OPS[1], **FAST_HASH)}"
token_hash = "{hash_password(OPS_TOKEN, **FAST_HASH)}"
[[server.users]]
name = "{LEAD[0]}"
password_hash = "{hash_password(LEAD[1], **FAST_HASH)}"
sees_details_of = ["team:marketing"]
{ICS_PLATFORMS_TOML}[platforms.slow]
kind = "ics"
url = "{slow_feed}"
{people_toml()}
[[people]]
email = "gus@agency.example"
name = "Gus Slow"
platform = "slow"
{tail}
"""


@dataclass
class Served:
    url: str
    hub: Hub
    app: Starlette
    running: RunningServer
    config_path: Path


@pytest.fixture
def make_server(tmp_path: Path, slow_feed: str, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Factory: ``make_server(server_extra=...)`` starts a hub server over the seeded folders."""
    monkeypatch.setenv(PASSWORD_ENV, DEMO[1])
    seed_ics(tmp_path)
    started: list[Served] = []

    def make(server_extra: str = "", timeout: float = 1.0, tail: str = "") -> Served:
        path = tmp_path / f"calmesh-{len(started)}.toml"
        text = config_text(slow_feed, server_extra=server_extra, timeout=timeout, tail=tail)
        path.write_text(text)
        hub = Hub(parse_config(text, path))
        app = create_app(hub)
        running = serve(app)
        served = Served(running.url, hub, app, running, path)
        started.append(served)
        return served

    yield make
    for served in started:
        served.running.stop()
        served.hub.close()


@pytest.fixture
def server(make_server) -> Served:  # type: ignore[no-untyped-def]
    return make_server()
