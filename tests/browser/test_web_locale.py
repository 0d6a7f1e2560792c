"""Issue 17 item 9 on the web page: the week starts and dates are written the way the reader's
locale does (the browser's language, unless ``[hub] locale`` chose one for everybody), in real
Chromium against the hub server over the demo week (see conftest)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .conftest import MONDAY, USER, Site, artifact, needs_chromium

pytestmark = [pytest.mark.browser, needs_chromium]

SUNDAY = MONDAY - timedelta(days=1)


def open_week(browser, url: str, locale: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(http_credentials={"username": USER[0], "password": USER[1]},
                                  viewport={"width": 1400, "height": 900}, locale=locale)
    page = context.new_page()
    page.goto(f"{url}/?view=week&date={MONDAY.isoformat()}&tz=Europe/Paris")
    return context, page


def test_an_american_week_starts_on_sunday_a_french_one_on_monday(site: Site, browser) -> None:  # type: ignore[no-untyped-def]
    context, page = open_week(browser, site.url, "en-US")
    ticks = page.locator(".tick").all_inner_texts()
    assert ticks[0] == f"Sun, {SUNDAY:%b} {SUNDAY.day}" and len(ticks) == 7
    assert page.locator("#grid").get_attribute("data-start").startswith(SUNDAY.isoformat())
    assert page.locator("html").get_attribute("lang") == "en-US"
    page.screenshot(path=artifact("grid-locale-en-US.png"), full_page=True)
    context.close()

    context, page = open_week(browser, site.url, "fr-FR")
    ticks = page.locator(".tick").all_inner_texts()
    months = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."]
    assert ticks[0] == f"lun. {MONDAY.day} {months[MONDAY.month - 1]}"
    assert page.locator("#grid").get_attribute("data-start").startswith(MONDAY.isoformat())
    assert page.locator("html").get_attribute("lang") == "fr-FR"
    # a block's description too: David's double booking, Thursday from 14:00 to 15:30 in Paris
    thursday = MONDAY + timedelta(days=3)
    titles = [b.get_attribute("title") for b in page.locator('.row.person[data-email="david@agency.example"] .block').all()]
    assert any(t.startswith(f"Busy, jeu. {thursday.day} {months[thursday.month - 1]} 14:00–15:30") for t in titles), titles
    page.screenshot(path=artifact("grid-locale-fr-FR.png"), full_page=True)
    context.close()


def test_the_hub_s_locale_wins_over_the_browser_s(french_site: Site, browser) -> None:  # type: ignore[no-untyped-def]
    context, page = open_week(browser, french_site.url, "en-US")
    assert page.locator(".tick").first.inner_text().startswith("lun. ")
    assert page.locator("#grid").get_attribute("data-start").startswith(MONDAY.isoformat())
    page.goto(f"{french_site.url}/conflicts?date={MONDAY.isoformat()}&who=david@agency.example")
    assert "jeu. " in page.locator("tr.conflict").first.inner_text()
    context.close()
