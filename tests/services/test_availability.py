"""Free/busy fan-out across platforms: merging, partial answers, timeouts, privacy.

Platforms here are real: folders of .ics files and an HTTP feed served on 127.0.0.1 that can be
made slow, so a timeout is a real timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from calmesh.config import parse_config
from calmesh.model import BusyType, Window
from calmesh.services import availability
from calmesh.services.hub import Hub
from conftest import ICS_PLATFORMS_TOML, seed_ics

MONDAY = date(2026, 11, 23)
WEEK = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC))


@pytest.fixture
def hub(tmp_path: Path, slow_feed: str) -> Iterator[Hub]:
    seed_ics(tmp_path, MONDAY)
    text = f"""
[hub]
timezone = "Europe/Paris"
freebusy_timeout = 1.0
{ICS_PLATFORMS_TOML}[platforms.slow]
kind = "ics"
url = "{slow_feed}"
[[people]]
email = "alice@agency.example"
platform = "zoho"
also = [{{ platform = "projects" }}]
working_hours = {{ days = "Mon-Fri", start = "09:00", end = "18:00" }}
[[people]]
email = "david@agency.example"
platform = "exchange"
also = [{{ platform = "projects" }}]
timezone = "Europe/London"
[[people]]
email = "gus@agency.example"
platform = "slow"
[[people]]
email = "hana@agency.example"
platform = "projects"
calendars = ["nobody.ics"]
"""
    path = tmp_path / "calmesh.toml"
    path.write_text(text)
    config = parse_config(text, path)
    with Hub(config) as h:
        yield h


def at(day: int, hour: int, minute: int = 0, tz: str = "Europe/Paris") -> datetime:
    from zoneinfo import ZoneInfo
    return datetime.combine(MONDAY + timedelta(days=day), datetime.min.time().replace(hour=hour, minute=minute),
                            tzinfo=ZoneInfo(tz)).astimezone(UTC)


def test_merges_platforms_and_reports_missing_data(hub: Hub) -> None:
    alice, david, gus, hana = availability.freebusy(
        hub, ["alice@agency.example", "David@Agency.example", "gus@agency.example", "hana@agency.example"], WEEK)
    # Alice: Zoho (campaign review Mon 14-16) + in-house projects (Atlas workshop Wed 10-12)
    spans = {(p.start, p.end, p.type) for p in alice.busy}
    assert (at(0, 14), at(0, 16), BusyType.BUSY) in spans
    assert (at(2, 10), at(2, 12), BusyType.BUSY) in spans
    assert {p.source for p in alice.busy} >= {"zoho", "projects"}
    assert alice.complete and not alice.warnings
    # David: the tentative Globex call stays tentative; his Thursday double booking is busy throughout
    assert any(p.type is BusyType.BUSY_TENTATIVE and p.start == at(2, 15, tz="Europe/London") for p in david.busy)
    assert any(p.start <= at(3, 13, tz="Europe/London") and p.end >= at(3, 15) for p in david.busy)
    # Gus's platform is too slow: unknown, never free, and the answer says why
    assert [str(e) for e in gus.errors] == ["slow: did not answer within 1s"]
    assert [(p.start, p.end, p.type) for p in gus.busy] == [(WEEK.start, WEEK.end, BusyType.UNKNOWN)]
    # Hana's calendar file does not exist: a clear error naming it
    assert "nobody.ics does not exist" in str(hana.errors[0])


def test_slow_platform_does_not_hold_up_the_others(hub: Hub) -> None:
    started = time.monotonic()
    availability.freebusy(hub, ["alice@agency.example", "gus@agency.example"], WEEK)
    assert time.monotonic() - started < 2.5  # bounded by the 1 s timeout, not the 3 s feed


def test_unknown_person_is_reported_not_dropped(hub: Hub) -> None:
    (answer,) = availability.freebusy(hub, ["zed@elsewhere.example"], WEEK)
    assert answer.errors and "not in the people directory" in str(answer.errors[0])
    assert answer.busy[0].type is BusyType.UNKNOWN


def test_details_only_when_granted_and_never_for_private(hub: Hub) -> None:
    (plain,) = availability.freebusy(hub, ["alice@agency.example"], WEEK)
    assert all(p.summary is None for p in plain.busy)
    (detailed,) = availability.freebusy(hub, ["alice@agency.example"], WEEK, details_for=lambda e: True)
    titles = {p.summary for p in detailed.busy}
    assert "Spring campaign review" in titles
    assert "Dentist" not in titles  # CLASS:PRIVATE
    assert any(p.start == at(2, 8) and p.summary is None for p in detailed.busy)


def test_working_hours_mark_the_rest_unavailable(hub: Hub) -> None:
    (alice,) = availability.freebusy(hub, ["alice@agency.example"], WEEK, working_hours=True)
    evening = [p for p in alice.busy if p.start <= at(0, 18) < p.end]
    assert evening and evening[0].type is BusyType.BUSY_UNAVAILABLE
    # 08:00-09:00 holds the private dentist appointment and is outside working hours: the
    # highest type wins, and out-of-office ranks above busy
    early = [p for p in alice.busy if p.start <= at(2, 8) < p.end]
    assert early and early[0].type is BusyType.BUSY_UNAVAILABLE
