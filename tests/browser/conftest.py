"""A hub server over the demo week, and headless Chromium driven by Playwright.

The platforms are three folders of ``.ics`` files (the ICS connector, real files) seeded with the
demo agency's week (:func:`calmesh.demo.data.build_week`); the server is the real ASGI app in
uvicorn on a free port. The week is next week, so find-a-time and booking (which refuse slots in
the past) work whatever day the suite runs; expected times are computed with zoneinfo, so a DST
week is still checked correctly.

Chromium is Debian's ``/usr/bin/chromium`` (``make browser``): Playwright cannot download its own
browser here. Without it, every test in this folder is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from calmesh.config import parse_config
from calmesh.demo.data import monday_of
from calmesh.fakes import RunningServer, serve
from calmesh.server.app import create_app
from calmesh.server.auth import hash_password
from calmesh.services.hub import Hub
from conftest import ICS_PLATFORMS_TOML
from server.conftest import people_toml, seed_ics

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
MONDAY = monday_of(date.today()) + timedelta(weeks=1)
USER = ("viewer", "viewer-secret")
"""Sees everyone's details (titles); may book for anyone."""
PLAIN = ("plain", "plain-secret")
"""Free/busy only: never sees a title."""
PASSWORD_ENV = "CALMESH_TEST_WEB_PASSWORD"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="no /usr/bin/chromium: run `make browser` (Debian's chromium)")


def config_text(cache_ttl: float, locale: str | None = None) -> str:
    return f"""
[hub]
timezone = "Europe/Paris"
{f'locale = "{locale}"' if locale else ""}
[server]
cache_ttl = {cache_ttl}
monitoring_users = ["{USER[0]}"]
[[server.users]]
name = "{USER[0]}"
password_env = "{PASSWORD_ENV}"
sees_details_of = ["*"]
[[server.users]]
name = "{PLAIN[0]}"
password_hash = "{hash_password(PLAIN[1], time_cost=1, memory_kib=8, parallelism=1)}"
{ICS_PLATFORMS_TOML}[sync.groups.marketing-to-projects]
mode = "busy"
calendars = [{{ platform = "zoho", calendar = "alice@agency.example.ics" }},
             {{ platform = "projects", calendar = "alice@agency.example.ics", direction = "in" }}]
{people_toml(MONDAY)}
"""


@dataclass
class Site:
    url: str
    hub: Hub
    running: RunningServer


def _site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_ttl: float,
          locale: str | None = None) -> Iterator[Site]:
    monkeypatch.setenv(PASSWORD_ENV, USER[1])
    seed_ics(tmp_path, MONDAY)
    path = tmp_path / "calmesh.toml"
    path.write_text(config_text(cache_ttl=cache_ttl, locale=locale))
    hub = Hub(parse_config(path.read_text(), path))
    running = serve(create_app(hub))
    yield Site(running.url, hub, running)
    running.stop()
    hub.close()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The hub server over the seeded week; no cache, so a booking shows at the next load."""
    yield from _site(tmp_path, monkeypatch, cache_ttl=0)


@pytest.fixture
def cached_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The same with answers cached for ten minutes: what calmesh changes itself (a booking, a
    move, a cancellation) must still show at once."""
    yield from _site(tmp_path, monkeypatch, cache_ttl=600)


@pytest.fixture
def french_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The same with ``[hub] locale = "fr_FR"``: the organisation's choice for every reader."""
    yield from _site(tmp_path, monkeypatch, cache_ttl=0, locale="fr_FR")


@pytest.fixture(scope="module")
def browser() -> Iterator:  # type: ignore[type-arg]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    """A signed-in page (HTTP Basic, as a browser answering the challenge)."""
    context = browser.new_context(http_credentials={"username": USER[0], "password": USER[1]},
                                  viewport={"width": 1400, "height": 900}, locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def work_share(instant: datetime, tz: str, hours: tuple[int, int], days: int = 7) -> float:
    """Where ``instant`` falls on a week grid showing only ``hours`` of each day in ``tz``
    (computed on the wall clock, independently of calmesh's own axis)."""
    local_time = instant.astimezone(ZoneInfo(tz))
    day = (local_time.date() - MONDAY).days
    low, high = hours
    into = min(max(local_time.hour + local_time.minute / 60 - low, 0), high - low)
    return (day * (high - low) + into) / (days * (high - low))


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name

