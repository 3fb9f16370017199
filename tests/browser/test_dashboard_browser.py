"""The dashboard in a real browser against the real service: sign in, read the charts as drawn,
follow the drill-downs, move the week boundaries with the time zone, and sign out.

Each test saves a screenshot of what it saw into artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import SCREENSHOTS, Live, Tab
from tests.browser.seed import probe_time

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def sign_in(page: Page, live: Live, path: str) -> None:
    response = await page.goto(live.base_url + path)
    assert response is not None and response.status == 401
    await page.fill("#api_key", live.read_key)
    await page.click(".signin-form button[type=submit]")
    await page.wait_for_url(re.compile(re.escape(path.split("?")[0])))


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def drawn_pixels(page: Page, chart_id: str) -> int:
    """Non-transparent pixels Chart.js put on the canvas: the chart was drawn, not only sent."""
    canvas = page.locator(f'canvas[data-chart="{chart_id}-data"]')
    await expect(canvas).to_have_attribute("data-rendered", "true")
    pixels: int = await canvas.evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    return pixels


async def test_sign_in_and_see_the_weeks_top_themes_drawn(tab: Tab, live: Live) -> None:
    page = tab.page
    path = f"/?week={live.week.isoformat()}&tz=UTC"
    await page.goto(live.base_url + path)
    await screenshot(page, "01-signin-401")
    await sign_in(page, live, path)
    await expect(page.locator("h1")).to_have_text(f"Week of {live.week.isoformat()}")
    first = page.locator("#top-themes-table tbody tr").first
    await expect(first.locator("th a")).to_have_text("Refund not received")
    await expect(first.locator(".badge-spike")).to_have_text("▲ Spike")
    assert await drawn_pixels(page, "top-themes") > 2_000
    # one sparkline per theme, a 12-point line with a visible size
    sparks = page.locator("#top-themes-table svg.spark polyline")
    assert await sparks.count() == await page.locator("#top-themes-table tbody tr").count() >= 4
    points = (await sparks.first.get_attribute("points") or "").split()
    assert len(points) == 12
    box = await sparks.first.bounding_box()
    assert box is not None and box["width"] > 50 and box["height"] > 5
    # the numbers are one click away
    await page.click("#top-themes summary")
    await expect(page.locator("#top-themes details table")).to_be_visible()
    await screenshot(page, "02-this-week")
    assert tab.errors == []


async def test_open_a_theme_and_drill_down_to_its_items(tab: Tab, live: Live) -> None:
    page = tab.page
    await sign_in(page, live, f"/?week={live.week.isoformat()}")
    await page.click("#top-themes-table a:has-text('Refund not received')")
    await page.wait_for_url(re.compile(rf"/themes/{live.themes['refund']}\b"))
    await expect(page.locator("#theme-label")).to_have_text("Refund not received")
    assert await drawn_pixels(page, "theme-volume") > 1_000
    items = page.locator("#items tbody tr")
    await expect(items).to_have_count(25)
    first_ids = set(await items.evaluate_all("rows => rows.map(r => r.dataset.itemId)"))
    source_link = items.first.locator("a.source-link")
    assert (await source_link.get_attribute("href") or "").startswith("https://support.example.com/agent/tickets/")
    await screenshot(page, "03-theme")
    await page.click("text=Older items →")
    await expect(items).to_have_count(25)
    assert not first_ids & set(await items.evaluate_all("rows => rows.map(r => r.dataset.itemId)"))
    # the JSON item opens with the session cookie, no bearer key
    item_id = await items.first.get_attribute("data-item-id")
    await items.first.locator("a.json-link").click()
    await page.wait_for_url(re.compile(rf"/items/{item_id}\.json$"))
    item = json.loads(await page.locator("body").inner_text())
    assert item["item_id"] == int(item_id or 0) and item["theme_id"] == live.themes["refund"]
    assert item["embedded_at"] is not None  # the real worker processed it
    assert tab.errors == []


async def test_feature_requests_drill_down_to_the_requests(tab: Tab, live: Live) -> None:
    page = tab.page
    await sign_in(page, live, f"/features?week={live.week.isoformat()}")
    rows = page.locator("#feature-table tbody tr")
    await expect(rows.first.locator("th")).to_contain_text("Dark mode")
    assert await drawn_pixels(page, "feature-weekly") > 1_000
    assert await drawn_pixels(page, "feature-top") > 1_000
    assert await rows.first.locator("svg.spark polyline").count() == 1
    await screenshot(page, "04-features")
    await rows.first.locator("a.drill").click()
    await expect(page.locator("#theme-label")).to_have_text("Dark mode")
    await expect(page.locator("#items tbody tr")).to_have_count(24)
    assert tab.errors == []


async def test_switching_the_time_zone_moves_the_week_boundaries(tab: Tab, live: Live) -> None:
    page = tab.page
    probe_week = probe_time(live.week).date()
    await sign_in(page, live, f"/themes/{live.themes['probe']}?tz=UTC&week={live.week.isoformat()}")

    async def probe_row_week() -> str:
        await page.click("#theme-volume summary")
        cells = page.locator("#theme-volume details tbody tr")
        weeks = await cells.evaluate_all(
            "rows => rows.filter(r => r.cells[1].textContent.trim() === '1').map(r => r.cells[0].textContent.trim())"
        )
        assert len(weeks) == 1
        return str(weeks[0])

    assert await probe_row_week() == probe_week.isoformat()
    await expect(page.locator(".window-note .boundary")).to_have_text(f"Mon {live.week.isoformat()} 00:00 UTC")
    await page.select_option("#tz-select", "America/Los_Angeles")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url(re.compile(r"tz=America%2FLos_Angeles"))
    # Monday 02:00 UTC is Sunday evening in Los Angeles: the item moves to the week before.
    assert await probe_row_week() == (probe_week - timedelta(weeks=1)).isoformat()
    await expect(page.locator(".window-note .boundary")).to_have_text(
        re.compile(rf"Mon {live.week.isoformat()} 0[78]:00 UTC")
    )
    assert await drawn_pixels(page, "theme-volume") > 500
    await screenshot(page, "05-theme-los-angeles")
    assert tab.errors == []


async def test_operations_and_runs_pages_draw(tab: Tab, live: Live) -> None:
    page = tab.page
    await sign_in(page, live, f"/operations?week={live.week.isoformat()}")
    assert await drawn_pixels(page, "reopen-rate") > 1_000
    assert await drawn_pixels(page, "resolution-times") > 1_000
    await expect(page.locator("#by-channel tbody th", has_text="email")).to_have_count(1)
    await screenshot(page, "06-operations")
    await page.click("text=Runs and health")
    await expect(page.locator("h1")).to_have_text("Runs and health")
    await expect(page.locator("#queues tbody tr")).to_have_count(3)
    await expect(page.locator("#workers tbody tr")).not_to_have_count(0)
    await screenshot(page, "07-runs")
    assert tab.errors == []


async def test_without_a_session_every_page_is_a_401_and_sign_out_ends_it(tab: Tab, live: Live) -> None:
    page = tab.page
    for path in ("/", "/features", "/operations", "/runs", f"/themes/{live.themes['refund']}"):
        response = await page.goto(live.base_url + path)
        assert response is not None and response.status == 401
        await expect(page.locator("#api_key")).to_be_visible()
    await sign_in(page, live, "/runs")
    cookies = await page.context.cookies()
    [session] = [c for c in cookies if c["name"] == "dashboard_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["value"] != live.read_key
    await page.click(".signout button")
    await page.wait_for_url(re.compile(r"/login\?signed_out=1$"))
    await expect(page.locator(".notice")).to_have_text("You are signed out.")
    response = await page.goto(live.base_url + "/runs")
    assert response is not None and response.status == 401
    assert tab.errors == []
