"""The availability grid in headless Chromium: blocks land at the right times in two time zones,
working hours are shaded, the legend does not rely on colour, and the page asks for a login.

What is checked is what the browser drew: the blocks' data attributes and their rendered boxes
on each lane, measured by Playwright.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Error as PlaywrightError

from .conftest import MONDAY, Site, artifact, needs_chromium, work_share

pytestmark = [pytest.mark.browser, needs_chromium]

ALICE, CARLA, FARID = "alice@agency.example", "carla@agency.example", "farid@agency.example"


def local(day: int, hour: int, minute: int = 0, tz: str = "Europe/Paris") -> datetime:
    return datetime.combine(MONDAY + timedelta(days=day), time(hour, minute), tzinfo=ZoneInfo(tz))


def share(instant: datetime, tz: str) -> float:
    """Where ``instant`` falls on a week grid shown in ``tz`` (0 = Monday midnight there).
    Computed in UTC: same-zone subtraction in Python is by wall clock, wrong across DST."""
    start = datetime.combine(MONDAY, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)
    end = datetime.combine(MONDAY + timedelta(days=7), time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)
    return (instant.astimezone(UTC) - start) / (end - start)


def block_box(page, email: str, start_iso: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(left, right) of a person's block as a share of their lane's rendered width."""
    row = page.locator(f'.row.person[data-email="{email}"]')
    lane = row.locator(".lane").bounding_box()
    box = row.locator(f'.block[data-start="{start_iso}"]').bounding_box()
    assert lane and box
    return (box["x"] - lane["x"]) / lane["width"], (box["x"] + box["width"] - lane["x"]) / lane["width"]


@pytest.mark.parametrize("tz", ["Europe/Paris", "America/New_York"])
def test_busy_blocks_land_at_the_right_times(site: Site, page, tz: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site.url}/?view=week&date={MONDAY.isoformat()}&tz={tz}&hours=all")
    zone = ZoneInfo(tz)
    campaign = local(0, 14)  # Alice's Zoho "Spring campaign review", Monday 14:00-16:00 Paris
    start_iso = campaign.astimezone(zone).isoformat()
    block = page.locator(f'.row.person[data-email="{ALICE}"] .block[data-start="{start_iso}"]')
    assert block.get_attribute("data-type") == "busy"
    assert block.get_attribute("data-end") == (campaign + timedelta(hours=2)).astimezone(zone).isoformat()
    assert "Spring campaign review" in block.get_attribute("title")
    left, right = block_box(page, ALICE, start_iso)
    assert left == pytest.approx(share(campaign, tz), abs=0.002)
    assert right == pytest.approx(share(campaign + timedelta(hours=2), tz), abs=0.002)

    # Carla's trade show (Exchange, New York, Thu-Fri all day) is out of office from her midnight
    show = local(3, 0, tz="America/New_York")
    oof = page.locator(f'.row.person[data-email="{CARLA}"] .block[data-type="oof"]')
    assert oof.get_attribute("data-start") == show.astimezone(zone).isoformat()
    assert oof.get_attribute("aria-label").startswith("Carla Jones: Out of office")

    # Farid works 10:00-19:00 in Tokyo: Tuesday's shaded band starts at 10:00 Tokyo time
    lane = page.locator(f'.row.person[data-email="{FARID}"] .lane').bounding_box()
    assert lane
    starts = [(box["x"] - lane["x"]) / lane["width"]
              for box in (b.bounding_box() for b in page.locator(f'.row.person[data-email="{FARID}"] .working').all())
              if box]
    assert any(s == pytest.approx(share(local(1, 10, tz="Asia/Tokyo"), tz), abs=0.002) for s in starts), starts
    assert page.locator("h1").inner_text().startswith("Availability")
    page.screenshot(path=artifact(f"grid-week-{tz.replace('/', '-')}.png"), full_page=True)


def test_week_views_show_working_hours_with_hour_ticks(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    """Issue 17 item 11: the week views show the working hours of the people in the zone shown
    (Paris: Alice, Bruno and Emma work 09:00-18:00), an hour tick each, and 'Whole day' on demand."""
    page.goto(f"{site.url}/?view=week&date={MONDAY.isoformat()}&tz=Europe/Paris")
    assert "09:00–18:00 each day" in page.inner_text("#meta")
    assert page.locator(".tick").count() == 7
    hours = page.locator(".ticks .hour")
    assert hours.count() == 7 * 9
    assert hours.all_inner_texts()[:9] == ["09", "10", "11", "12", "13", "14", "15", "16", "17"]
    campaign = local(0, 14)
    left, right = block_box(page, ALICE, campaign.isoformat())
    assert left == pytest.approx(work_share(campaign, "Europe/Paris", (9, 18)), abs=0.002)
    assert right == pytest.approx(work_share(campaign + timedelta(hours=2), "Europe/Paris", (9, 18)), abs=0.002)
    # an hour is wide enough to read: the grid scrolls sideways rather than squeezing it
    lane = page.locator(f'.row.person[data-email="{ALICE}"] .lane').bounding_box()
    assert lane and lane["width"] / (7 * 9) >= 30
    # Farid (Tokyo) works 02:00-11:00 Paris time: what falls outside 09:00-18:00 is said, not dropped
    farid = page.locator(f'.row.person[data-email="{FARID}"]')
    hidden = farid.locator(".unseen")
    assert hidden.count() == 0 or "busy outside the hours shown" in hidden.inner_text()
    page.screenshot(path=artifact("grid-week-working-hours.png"), full_page=True)

    page.locator("#whole-day").check()  # the form submits itself
    page.wait_for_url("**hours=all**")
    assert "each day" not in page.inner_text("#meta")
    assert page.locator(".ticks .hour").count() == 7 * 24
    assert page.locator(".ticks .hour.major").all_inner_texts()[:4] == ["00", "06", "12", "18"]
    left, _ = block_box(page, ALICE, campaign.isoformat())
    assert left == pytest.approx(share(campaign, "Europe/Paris"), abs=0.002)
    page.screenshot(path=artifact("grid-week-whole-day.png"), full_page=True)

    # seen from New York, Carla's day (08:30-17:00) is shown, widened to whole hours
    page.goto(f"{site.url}/?view=workweek&date={MONDAY.isoformat()}&tz=America/New_York")
    assert "08:00–17:00 each day" in page.inner_text("#meta")
    assert page.locator(".ticks .hour").count() == 5 * 9


def test_labels_are_whole_words_or_none(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    """Issue 17 item 11: no label is cut mid-word ("S", "Sp"): it is whole, cut after a word with
    "…", or left out (the block keeps its full text as tooltip and accessible name)."""
    for hours in ("work", "all"):
        page.goto(f"{site.url}/?view=week&date={MONDAY.isoformat()}&tz=Europe/Paris&hours={hours}")
        labels = page.locator(".block .label").evaluate_all(
            "ls => ls.map(l => ({text: l.textContent, full: l.dataset.full, hidden: l.hidden,"
            " fits: l.scrollWidth <= l.clientWidth + 1}))")
        assert labels and all(label["full"] for label in labels)
        for label in labels:
            if label["hidden"]:
                continue
            assert label["fits"], label
            text, full = label["text"], label["full"]
            assert text == full or (text.endswith("…") and (full + " ").startswith(text[:-1] + " ")), label
        shown = [label for label in labels if not label["hidden"]]
        if hours == "work":  # two hours of a working-hours week leave room for a word
            assert any(label["text"] in ("Spring campaign review", "Spring campaign…", "Spring…") for label in shown)
        page.screenshot(path=artifact(f"grid-labels-{hours}.png"), full_page=True)


def test_time_zone_selector_and_day_view(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site.url}/?view=day&date={MONDAY.isoformat()}&tz=Europe/Paris")
    assert page.locator(".tick").count() in (23, 24, 25)
    page.select_option("#tz", "America/New_York")  # the page submits itself on change
    page.wait_for_url("**tz=America%2FNew_York**")
    assert page.locator("#grid").get_attribute("data-tz") == "America/New_York"
    assert page.locator("#grid").get_attribute("data-start") == local(0, 0, tz="America/New_York").isoformat()
    sprint = local(0, 10, tz="Europe/Paris").astimezone(ZoneInfo("America/New_York"))  # Emma, 04:00 in New York
    emma = page.locator('.row.person[data-email="emma@agency.example"] .block').first
    assert emma.get_attribute("data-start") == sprint.isoformat()
    page.get_by_role("radio", name="Week", exact=True).check()
    page.wait_for_url("**view=week&**")
    assert page.locator(".tick").count() == 7
    page.get_by_role("radio", name="Work week").check()
    page.wait_for_url("**view=workweek**")
    assert page.locator(".tick").all_inner_texts()[-1] == f"{MONDAY + timedelta(days=4):%a %d %b}"
    page.screenshot(path=artifact("grid-day-new-york.png"), full_page=True)


def test_legend_and_types_do_not_rely_on_colour(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site.url}/?date={MONDAY.isoformat()}")
    legend = page.locator(".legend").inner_text()
    for label in ("Busy", "Tentative", "Out of office", "Unknown", "Working hours"):
        assert label in legend
    # each type has its own fill: solid, stripes, cross-hatch, dots
    fills = {kind: page.locator(f".legend .swatch.{kind}").evaluate("e => getComputedStyle(e).backgroundImage")
             for kind in ("busy", "tentative", "oof", "unknown")}
    assert fills["busy"] == "none"
    assert len({fills["tentative"], fills["oof"], fills["unknown"]}) == 3
    assert all("gradient" in fills[k] for k in ("tentative", "oof", "unknown"))
    tentative = page.locator('.row.person[data-email="david@agency.example"] .block[data-type="tentative"]')
    assert tentative.get_attribute("aria-label").startswith("David Smith: Tentative")
    # grouped by team, with a platform badge per person
    assert page.locator(".group-name").all_inner_texts() == ["marketing", "projects", "sales"]
    badge = page.locator(f'.row.person[data-email="{ALICE}"] .badge')
    assert badge.inner_text() == "zoho"


def test_the_page_asks_for_a_login(site: Site, browser) -> None:  # type: ignore[no-untyped-def]
    """The page answers the HTTP Basic challenge the API uses. Headless Chromium has no login
    dialog: with no credentials it gives up on the challenge, which is checked on the way."""
    anonymous = browser.new_context()
    page = anonymous.new_page()
    with page.expect_response(f"{site.url}/") as answer:
        with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
            page.goto(f"{site.url}/")
    assert answer.value.status == 401
    assert 'Basic realm="calmesh"' in answer.value.headers["www-authenticate"]
    anonymous.close()
    wrong = browser.new_context(http_credentials={"username": "viewer", "password": "wrong"})
    page = wrong.new_page()
    response = page.goto(f"{site.url}/")
    assert response is not None and response.status == 401
    assert "Sign in required" in page.inner_text("h1")
    wrong.close()


def test_bad_query_is_explained(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(f"{site.url}/?tz=Mars/Olympus")
    assert response is not None and response.status == 400
    assert "unknown time zone 'Mars/Olympus'" in page.locator(".notice.error").inner_text()
