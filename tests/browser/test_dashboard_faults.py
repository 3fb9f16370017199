"""The dashboard faults an outside probe found (issue 17, findings 5 and 7), in Chromium against
the real service: bad inputs answer a 4xx page on a connection that stays open, chart bars open
the tickets behind them, and the reopen-rate axis reads real percentages."""

from __future__ import annotations

import http.client
import re
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Live, Tab
from tests.browser.test_dashboard_browser import drawn_pixels, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BAD_INPUTS = [
    {"week": "0001-01-01"},
    {"week": "9999-12-31"},
    {"tz": "localtime"},
    {"tz": "a" * 300},
    {"cursor": "W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1sxXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV0"},
]


async def test_bad_inputs_answer_4xx_and_keep_the_connection_open(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        signed_in = await client.post("/login", data={"api_key": live.read_key, "next": "/"})
        assert signed_in.status_code == 303
        cookie = f"dashboard_session={client.cookies['dashboard_session']}"
    host = urlsplit(live.base_url)
    connection = http.client.HTTPConnection(host.hostname or "127.0.0.1", host.port, timeout=30)
    try:
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        socket = connection.sock
        for params in BAD_INPUTS:
            for path in ("/", f"/themes/{live.themes['refund']}"):
                if "cursor" in params and path == "/":
                    continue
                connection.request("GET", f"{path}?{urlencode(params)}", headers={"Cookie": cookie})
                response = connection.getresponse()
                response.read()
                assert 400 <= response.status < 500, (path, params, response.status)
                assert response.getheader("connection", "").lower() != "close"
                assert connection.sock is socket, f"{path} {params}: the server closed the connection"
    finally:
        connection.close()


async def bar_position(page: Page, chart_id: str, series: int, index: int) -> tuple[float, float]:
    """Page coordinates inside one drawn bar, from the chart's own element geometry."""
    canvas = page.locator(f'canvas[data-chart="{chart_id}-data"]')
    await expect(canvas).to_have_attribute("data-rendered", "true")
    await canvas.scroll_into_view_if_needed()
    geometry = await canvas.evaluate(
        """(c, [s, n]) => { const bar = Chart.getChart(c).getDatasetMeta(s).data[n];
                            const box = c.getBoundingClientRect();
                            return [box.left + (bar.x + bar.base) / 2, box.top + bar.y,
                                    box.left + bar.x, box.top + (bar.y + bar.base) / 2]; }""",
        [series, index],
    )
    horizontal = await canvas.evaluate("c => Chart.getChart(c).options.indexAxis === 'y'")
    return (geometry[0], geometry[1]) if horizontal else (geometry[2], geometry[3])


async def test_a_bar_opens_the_items_of_its_theme_and_week(tab: Tab, live: Live) -> None:
    page = tab.page
    week = live.week
    await sign_in(page, live, f"/?week={week.isoformat()}&tz=UTC")
    labels = await page.locator('canvas[data-chart="top-themes-data"]').evaluate("c => Chart.getChart(c).data.labels")
    refund = labels.index("Refund not received")
    x, y = await bar_position(page, "top-themes", 0, refund)
    await page.mouse.click(x, y)
    await page.wait_for_url(re.compile(rf"/themes/{live.themes['refund']}\?.*items_week={week.isoformat()}"))
    await expect(page.locator("#items-week-note")).to_be_visible()
    rows = page.locator("#items tbody tr")
    await expect(rows).to_have_count(20)  # the 20 refund items of that week, as the bar said
    created = await rows.evaluate_all("rows => rows.map(r => r.cells[0].textContent.slice(0, 10))")
    assert all(week.isoformat() <= day < (week + timedelta(weeks=1)).isoformat() for day in created)
    await screenshot(page, "08-bar-to-items")

    # the theme's own weekly bars lead the same way
    assert await drawn_pixels(page, "theme-volume") > 500
    x, y = await bar_position(page, "theme-volume", 0, 10)  # the week before the selected one
    await page.mouse.click(x, y)
    previous = (week - timedelta(weeks=1)).isoformat()
    await page.wait_for_url(re.compile(rf"items_week={previous}"))
    days = await page.locator("#items tbody tr").evaluate_all(
        "rows => rows.map(r => r.cells[0].textContent.slice(0, 10))"
    )
    assert all(previous <= day < week.isoformat() for day in days)
    assert tab.errors == []


async def test_the_reopen_rate_axis_reads_real_percentages(tab: Tab, live: Live) -> None:
    page = tab.page
    await sign_in(page, live, f"/operations?week={live.week.isoformat()}&tz=UTC")
    canvas = page.locator('canvas[data-chart="reopen-rate-data"]')
    await expect(canvas).to_have_attribute("data-rendered", "true")
    ticks = await canvas.evaluate("c => Chart.getChart(c).scales.y.ticks.map(t => [t.value, t.label])")
    labels = [label for _, label in ticks]
    assert len(set(labels)) == len(labels) > 2, labels  # no "0 %" written on every tick
    for value, label in ticks:
        assert float(label.rstrip(" %")) == pytest.approx(value * 100, abs=1e-6), (value, label)
    rates = await canvas.evaluate("c => Chart.getChart(c).data.datasets[0].data.filter(v => v !== null)")
    assert max(rates) > 0 and max(v for v, _ in ticks) >= max(rates)
    await screenshot(page, "09-reopen-axis")
    assert tab.errors == []
