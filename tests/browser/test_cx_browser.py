"""The customer-experience page in a real browser: "What to fix first" and "Missing articles"
drawn, each chart with its numbers beside it, and the switch to parent themes."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Live, Tab
from tests.browser.test_dashboard_browser import drawn_pixels, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_what_to_fix_first_and_missing_articles_are_drawn(tab: Tab, live: Live) -> None:
    page = tab.page
    path = f"/customer?week={live.week.isoformat()}&tz=UTC"
    await sign_in(page, live, path)
    await expect(page.locator("h1")).to_have_text("Customer experience")
    rows = page.locator("#fix-first-table tbody tr")
    assert await rows.count() >= 1
    # Ranked by excess hours, largest first, every one of them positive.
    hours = [float(t) for t in await rows.locator("td:nth-child(3)").all_inner_texts()]
    assert hours == sorted(hours, reverse=True) and all(h > 0 for h in hours)
    assert await drawn_pixels(page, "cx-fix-first") > 1_000
    # No article exists yet: every theme is a gap, the biggest first.
    gaps = page.locator("#missing-articles-table tbody tr")
    assert await gaps.count() >= 1
    volumes = [int(t.replace(",", "")) for t in await gaps.locator("td:nth-child(2)").all_inner_texts()]
    assert volumes == sorted(volumes, reverse=True)
    assert await drawn_pixels(page, "cx-gaps") > 1_000
    await page.click("#cx-fix-first summary")
    await expect(page.locator("#cx-fix-first details table")).to_be_visible()
    await screenshot(page, "cx-01-customer")
    await page.click("text=show parents")
    await expect(page.locator("p.hint").first).to_contain_text("themes as parents")
    assert tab.errors == []
