"""Find a time, book it, and the conflicts and sync pages, in headless Chromium.

The page calls the real JSON API (``/api/v1/find-time``, ``/api/v1/book``) from its own
JavaScript; the booking is written by the ICS connectors into the seeded calendar files, and
the reloaded grid must show it where the suggestion was.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from calmesh.core.syncplan import Hold
from calmesh.model import CalendarItem, Event
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository

from .conftest import MONDAY, PLAIN, Site, artifact, needs_chromium, work_share

pytestmark = [pytest.mark.browser, needs_chromium]

ALICE, CARLA, DAVID = "alice@agency.example", "carla@agency.example", "david@agency.example"
PARIS, NEW_YORK = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")


def lane_share(page, email: str, selector: str) -> float:  # type: ignore[no-untyped-def]
    row = page.locator(f'.row.person[data-email="{email}"]')
    lane, box = row.locator(".lane").bounding_box(), row.locator(selector).first.bounding_box()
    assert lane and box
    return (box["x"] - lane["x"]) / lane["width"]


def boxes_overlap(a: dict, b: dict) -> bool:  # type: ignore[type-arg]
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def blocks(row) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [tuple(b) for b in row.locator(".block").evaluate_all("bs => bs.map(b => [b.dataset.start, b.dataset.end])")]


def find(page, organizer: str, *others: str, minutes: int = 60) -> None:  # type: ignore[no-untyped-def]
    for email in (organizer, *others):
        page.check(f'input.pick[value="{email}"]')
    page.select_option("#organizer", organizer)
    page.select_option("#duration", str(minutes))
    page.click("#find-button")
    page.wait_for_selector("#slot-list li")


def test_find_a_time_and_book_it(cached_site: Site, page) -> None:  # type: ignore[no-untyped-def]
    """Suggestions as readable marks with the list beside them (item 12); the booking shows on the
    grid at once although answers are cached for ten minutes (item 13)."""
    site = cached_site
    page.goto(f"{site.url}/?view=week&date={MONDAY.isoformat()}&tz=Europe/Paris")
    find(page, ALICE, CARLA)
    assert "suggestion(s), best first" in page.inner_text("#find-status")

    # one mark per suggestion, no two rank badges touching, the ranked list beside the row
    marks = page.locator("#slots-lane .slot.mark")
    count = page.locator("#slot-list li").count()
    assert marks.count() == count > 1
    badges = [b for b in (page.locator("#slots-lane .slot.mark .rank").nth(i).bounding_box() for i in range(count)) if b]
    assert len(badges) == count
    assert not [(i, k) for i in range(count) for k in range(i) if boxes_overlap(badges[i], badges[k])]
    assert sorted(page.locator("#slots-lane .slot.mark .rank").all_inner_texts(), key=int) == \
        [str(n) for n in range(1, count + 1)]
    listed = page.locator("#slots-row .who #slot-list").bounding_box()
    lane = page.locator("#slots-lane").bounding_box()
    assert listed and lane and listed["x"] + listed["width"] <= lane["x"] + 1
    first = page.locator('#slot-list button[data-rank="1"]').inner_text()
    assert first.startswith("1") and "–" in first and "%" in first

    best = page.locator('#slots-lane .slot[data-rank="1"]')
    start = datetime.fromisoformat(best.get_attribute("data-start"))
    end = datetime.fromisoformat(best.get_attribute("data-end"))
    assert end - start == timedelta(hours=1) and start.date() >= MONDAY
    # inside both working days: Alice 09:00-18:00 Paris, Carla 08:30-17:00 New York
    assert time(9) <= start.astimezone(PARIS).time() and end.astimezone(PARIS).time() <= time(18)
    assert time(8, 30) <= start.astimezone(NEW_YORK).time() and end.astimezone(NEW_YORK).time() <= time(17)
    best.click()
    assert "chosen" in page.locator('#slot-list button[data-rank="1"]').get_attribute("class")
    # the chosen slot is drawn where it belongs on both attendees' lanes (working hours shown: 09-18)
    expected = work_share(start, "Europe/Paris", (9, 18))
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

    # no reload: the page read the grid again, and the server had forgotten its cached answers
    for email in (ALICE, CARLA):
        block = page.locator(f'.row.person[data-email="{email}"] .block[data-start="{start.astimezone(PARIS).isoformat()}"]')
        block.wait_for()
        assert "Launch plan" in block.get_attribute("title")
        assert block.get_attribute("data-end") == end.astimezone(PARIS).isoformat()
        assert "fresh" in block.get_attribute("class")
    assert page.locator("#slots-row").is_hidden()
    page.screenshot(path=artifact("booked.png"), full_page=True)


def test_a_booking_is_moved_and_cancelled_from_the_page(cached_site: Site, page) -> None:  # type: ignore[no-untyped-def]
    """Item 14: the organiser's bookings are listed with Move and Cancel, through the JSON API."""
    site = cached_site
    page.goto(f"{site.url}/?view=week&date={MONDAY.isoformat()}&tz=Europe/Paris")
    assert page.locator("#bookings li.none").inner_text() == "None in these days."
    find(page, ALICE, CARLA)
    page.locator('#slot-list button[data-rank="1"]').click()
    page.fill("#book-title", "Atlas kick-off")
    page.click("#book-button")
    page.locator("#book-result .result-ok").wait_for()
    booking = page.locator("#bookings li.booking")
    assert booking.count() == 1
    uid = booking.get_attribute("data-uid")
    old_start = booking.get_attribute("data-start")
    assert "Atlas kick-off" in booking.inner_text() and "organised by Alice Martin" in booking.inner_text()
    assert CARLA in booking.inner_text()
    # the meeting's block on the grid knows it too
    assert page.locator(f'.row.person[data-email="{ALICE}"] .block.booked[data-uid="{uid}"]').count() == 1

    booking.locator(".move-booking").click()
    page.wait_for_selector("#slot-list li")
    assert page.locator("#book-verb").inner_text() == "Move “Atlas kick-off” to"
    target = page.locator('#slot-list button[data-rank="1"]')
    target.click()
    new_start = page.locator('#slots-lane .slot[data-rank="1"]').get_attribute("data-start")
    assert datetime.fromisoformat(new_start) != datetime.fromisoformat(old_start)
    page.screenshot(path=artifact("move.png"), full_page=True)
    page.click("#book-button")
    result = page.locator("#book-result .result-ok")
    result.wait_for()
    assert "Moved “Atlas kick-off”" in result.inner_text()
    moved = page.locator(f'#bookings li.booking[data-uid="{uid}"]')
    assert datetime.fromisoformat(moved.get_attribute("data-start")) == datetime.fromisoformat(new_start)
    alice = page.locator(f'.row.person[data-email="{ALICE}"]')
    assert alice.locator(f'.block[data-start="{old_start}"]').count() == 0
    # (a meeting next to another is drawn as one busy block with it: look for the time covered)
    new_end = moved.get_attribute("data-end")
    assert any(datetime.fromisoformat(s) <= datetime.fromisoformat(new_start) and
               datetime.fromisoformat(new_end) <= datetime.fromisoformat(e) for s, e in blocks(alice))

    moved.locator(".cancel-booking").click()
    moved.locator(".cancel-form input").fill("postponed")
    moved.locator(".cancel-form button[type=submit]").click()
    page.locator("#book-result .result-ok", has_text="Cancelled").wait_for()
    assert page.locator("#bookings li.none").inner_text() == "None in these days."
    assert not any(datetime.fromisoformat(s) <= datetime.fromisoformat(new_start) < datetime.fromisoformat(e)
                   for s, e in blocks(alice))
    page.screenshot(path=artifact("cancelled.png"), full_page=True)


def test_a_refused_move_says_why(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    """The API's refusal (409: the new slot became busy meanwhile) is shown; nothing moves."""
    page.goto(f"{site.url}/?view=week&date={MONDAY.isoformat()}")
    find(page, ALICE, CARLA)
    page.locator('#slot-list button[data-rank="1"]').click()
    page.click("#book-button")
    page.locator("#book-result .result-ok").wait_for()
    booking = page.locator("#bookings li.booking")
    old_start = booking.get_attribute("data-start")
    booking.locator(".move-booking").click()
    page.wait_for_selector("#slot-list li")
    target = page.locator('#slots-lane .slot[data-rank="1"]')
    start, end = (datetime.fromisoformat(target.get_attribute(a)) for a in ("data-start", "data-end"))
    dentist = Event("dentist-1", start, end, summary="Dentist")
    site.hub.connector("exchange").put(f"{CARLA}.ics", CalendarItem(dentist.uid, [dentist]))
    target.click()
    page.click("#book-button")
    refusal = page.locator("#book-result .result-bad")
    refusal.wait_for()
    assert "Not done: the slot is no longer free" in refusal.inner_text() and CARLA in refusal.inner_text()
    assert page.locator("#bookings li.booking").get_attribute("data-start") == old_start


def test_only_those_acting_for_the_organiser_see_its_bookings(site: Site, page, browser) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site.url}/?view=week&date={MONDAY.isoformat()}")
    find(page, ALICE, CARLA)
    page.locator('#slot-list button[data-rank="1"]').click()
    page.click("#book-button")
    page.locator("#book-result .result-ok").wait_for()
    assert page.locator("#bookings li.booking").count() == 1
    context = browser.new_context(http_credentials={"username": PLAIN[0], "password": PLAIN[1]})
    plain = context.new_page()
    plain.goto(f"{site.url}/?view=week&date={MONDAY.isoformat()}")
    assert plain.locator("#bookings li.booking").count() == 0
    assert plain.locator(".block.booked").count() == 0
    context.close()


def test_find_a_time_explains_a_refusal(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site.url}/?view=day&date={(MONDAY - timedelta(weeks=2)).isoformat()}")
    page.click("#find-button")
    assert "These days are over" in page.inner_text("#find-status")


def test_conflicts_and_duplicates_per_person(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    # the demo's duplicate: David copied his Exchange follow-up by hand into the in-house system
    page.goto(f"{site.url}/conflicts?date={MONDAY.isoformat()}&tz=Europe/London")
    david = page.locator(f'section[data-email="{DAVID}"]')
    conflict = david.locator("tr.conflict").first
    row = conflict.inner_text()
    # Exchange's Q1 forecast (13:00 London) against the in-house Atlas review (14:00 Paris = 13:00 London)
    assert "Q1 forecast" in row and "Project Atlas review" in row and "13:00–14:00" in row
    assert "yes" in conflict.locator("td").nth(3).inner_text()
    assert david.locator(".badge").all_inner_texts()[:1] == ["exchange"]
    duplicate = david.locator("tr.duplicate").inner_text()
    assert "ACME follow-up" in duplicate and "TR: ACME follow-up" in duplicate
    assert "exchange" in duplicate and "projects" in duplicate
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


def test_a_move_a_calendar_missed_is_shown_owed(site: Site, page, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Carla's platform stops taking writes while Alice moves the meeting from the page: the
    result says the copy is owed and written once the platform answers; once it does, the owed
    copy is written (what the server's watch loop does every minute) and Carla's calendar holds
    the new time."""
    from calmesh.connectors.base import TransientError
    from calmesh.connectors.ics import ICSConnector
    from calmesh.services import scheduling
    from calmesh.services.detection import stored_item

    page.goto(f"{site.url}/?view=week&date={MONDAY.isoformat()}")
    find(page, ALICE, CARLA)
    page.locator('#slot-list button[data-rank="1"]').click()
    page.click("#book-button")
    page.locator("#book-result .result-ok").wait_for()
    booking = page.locator("#bookings li.booking")
    uid = booking.get_attribute("data-uid")
    booking.locator(".move-booking").click()
    page.wait_for_selector("#slot-list li")
    page.locator('#slot-list button[data-rank="1"]').click()
    new_start = datetime.fromisoformat(page.locator('#slots-lane .slot[data-rank="1"]').get_attribute("data-start"))
    put = ICSConnector.put

    def down(self: ICSConnector, calendar: str, item: CalendarItem, if_match: str | None = None) -> object:
        if self.name == "exchange":
            raise TransientError("exchange", "no answer in time")
        return put(self, calendar, item, if_match=if_match)

    with monkeypatch.context() as patched:
        patched.setattr(ICSConnector, "put", down)
        page.click("#book-button")
        page.locator("#book-result p", has_text="Moved").wait_for()
        carla = page.locator("#book-result li", has_text=CARLA)
        assert "calmesh writes it there once the platform answers" in carla.inner_text()
        page.screenshot(path=artifact("move-owed.png"), full_page=True)
    assert stored_item(site.hub, "exchange", f"{CARLA}.ics", uid).components[0].start != new_start
    assert [t.delivery.method for t in scheduling.redeliver(site.hub, now=datetime.now(PARIS))] == ["calendar"]
    assert stored_item(site.hub, "exchange", f"{CARLA}.ics", uid).components[0].start == new_start
