"""Find a time, book it, and the conflicts and sync pages, in headless Chromium.

The page calls the real JSON API (``/api/v1/find-time``, ``/api/v1/book``) from its own
JavaScript; the booking is written by the ICS connectors into the seeded calendar files, and
the reloaded grid must show it where the suggestion was.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from calmesh.core.syncplan import Hold
from calmesh.demo.data import build_week
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository

from .conftest import MONDAY, PLAIN, Site, artifact, needs_chromium

pytestmark = [pytest.mark.browser, needs_chromium]

ALICE, CARLA, DAVID = "alice@agency.example", "carla@agency.example", "david@agency.example"
PARIS, NEW_YORK = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")


def lane_share(page, email: str, selector: str) -> float:  # type: ignore[no-untyped-def]
    row = page.locator(f'.row.person[data-email="{email}"]')
    lane, box = row.locator(".lane").bounding_box(), row.locator(selector).first.bounding_box()
    assert lane and box
    return (box["x"] - lane["x"]) / lane["width"]


def test_find_a_time_and_book_it(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site.url}/?view=week&date={MONDAY.isoformat()}&tz=Europe/Paris")
    page.check(f'input.pick[value="{ALICE}"]')
    page.check(f'input.pick[value="{CARLA}"]')
    page.select_option("#organizer", ALICE)
    page.select_option("#duration", "60")
    page.click("#find-button")
    page.wait_for_selector("#slot-list li")
    assert "suggestion(s), best first" in page.inner_text("#find-status")

    best = page.locator('#slots-lane .slot[data-rank="1"]')
    start = datetime.fromisoformat(best.get_attribute("data-start"))
    end = datetime.fromisoformat(best.get_attribute("data-end"))
    assert end - start == timedelta(hours=1) and start.date() >= MONDAY
    # inside both working days: Alice 09:00-18:00 Paris, Carla 08:30-17:00 New York
    assert time(9) <= start.astimezone(PARIS).time() and end.astimezone(PARIS).time() <= time(18)
    assert time(8, 30) <= start.astimezone(NEW_YORK).time() and end.astimezone(NEW_YORK).time() <= time(17)
    best.click()
    assert page.locator('#slot-list button[data-rank="1"]').get_attribute("class") == "chosen"
    # the chosen slot is drawn where it belongs on both attendees' lanes
    week = datetime.combine(MONDAY, time(0), tzinfo=PARIS).astimezone(UTC)
    week_end = datetime.combine(MONDAY + timedelta(days=7), time(0), tzinfo=PARIS).astimezone(UTC)
    expected = (start.astimezone(UTC) - week) / (week_end - week)
    for email in (ALICE, CARLA):
        assert lane_share(page, email, ".slot.chosen") == pytest.approx(expected, abs=0.002)
    assert page.locator(".row.person .slot").count() == 2
    page.screenshot(path=artifact("find-a-time.png"), full_page=True)
    page.fill("#book-title", "Launch plan")
    page.click("#book-button")
    result = page.locator("#book-result .result-ok")
    result.wait_for()
    text = result.inner_text()
    assert "Booked “Launch plan”" in text
    assert f"{ALICE}: organizer on zoho" in text and f"{CARLA}: calendar on exchange" in text
    page.screenshot(path=artifact("booked.png"), full_page=True)

    page.click("#show-booked")
    page.wait_for_load_state()
    for email in (ALICE, CARLA):
        block = page.locator(f'.row.person[data-email="{email}"] .block[data-start="{start.astimezone(PARIS).isoformat()}"]')
        assert "Launch plan" in block.get_attribute("title")
        assert block.get_attribute("data-end") == end.astimezone(PARIS).isoformat()


def test_find_a_time_explains_a_refusal(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site.url}/?view=day&date={(MONDAY - timedelta(weeks=2)).isoformat()}")
    page.click("#find-button")
    assert "These days are over" in page.inner_text("#find-status")


def test_conflicts_and_duplicates_per_person(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    # someone copied David's Exchange pitch into the in-house system too: one meeting, two copies
    pitch = next(i for i in build_week(MONDAY).items[("exchange", DAVID)] if i.uid.startswith("demo-pitch"))
    site.hub.connector("projects").put(f"{DAVID}.ics", pitch)
    page.goto(f"{site.url}/conflicts?date={MONDAY.isoformat()}&tz=Europe/London")
    david = page.locator(f'section[data-email="{DAVID}"]')
    conflict = david.locator("tr.conflict").first
    row = conflict.inner_text()
    # Exchange's Q1 forecast (13:00 London) against the in-house Atlas review (14:00 Paris = 13:00 London)
    assert "Q1 forecast" in row and "Project Atlas review" in row and "13:00–14:00" in row
    assert "yes" in conflict.locator("td").nth(3).inner_text()
    assert david.locator(".badge").all_inner_texts()[:1] == ["exchange"]
    duplicate = david.locator("tr.duplicate").inner_text()
    assert duplicate.count("Pitch: ACME rebrand") == 2 and "exchange" in duplicate and "projects" in duplicate
    page.screenshot(path=artifact("conflicts.png"), full_page=True)


def test_sync_status_shows_groups_runs_and_quarantine(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    group = "marketing-to-projects"
    page.goto(f"{site.url}/sync")
    section = page.locator(f'section[data-group="{group}"]')
    assert "zoho:alice@agency.example.ics (both)" in section.inner_text()
    assert "projects:alice@agency.example.ics (in)" in section.inner_text()
    assert section.locator(".last-run.never").inner_text() == "Never run."

    # a run as the sync engine records it, through the store's own repository
    repo = SyncRepository(open_store(site.hub.config.state_url()))
    run = repo.start_run(group)
    repo.finish_run(run, "partial", {"created": 3, "updated": 1}, ["projects: write refused (403)"])
    repo.quarantine(group, "zoho/alice@agency.example.ics", item_ref="broken.ics", uid="broken-1",
                    reason="DTSTART is not a date")
    page.reload()
    last = section.locator("table.last-run")
    assert last.get_attribute("data-status") == "partial"
    assert "created 3, updated 1" in last.inner_text() and "write refused (403)" in last.inner_text()
    quarantined = section.locator("table.quarantine").inner_text()
    assert "broken-1" in quarantined and "DTSTART is not a date" in quarantined
    assert section.locator(".held.none").inner_text() == "No held deletions."
    member = "zoho/alice@agency.example.ics"
    repo.save_holds(group, {member: Hold(member, "empty", 40, 40, "listed no items while 40 are on record")})
    page.reload()
    held = section.locator("table.held").inner_text()
    assert member in held and "40 of 40" in held and "listed no items" in held and "--confirm-deletes" in held
    page.screenshot(path=artifact("sync.png"), full_page=True)


def test_without_a_grant_no_title_is_shown(site: Site, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(http_credentials={"username": PLAIN[0], "password": PLAIN[1]})
    page = context.new_page()
    page.goto(f"{site.url}/conflicts?date={MONDAY.isoformat()}&who={DAVID}")
    row = page.locator("tr.conflict").first.inner_text()
    assert "Q1 forecast" not in row and row.count("Busy") == 2
    page.goto(f"{site.url}/?date={MONDAY.isoformat()}")
    titles = " ".join(b.get_attribute("title") or "" for b in page.locator(".block").all())
    assert "Busy, " in titles and "Q1 forecast" not in titles and "Spring campaign" not in titles
    context.close()
