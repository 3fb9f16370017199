"""The dashboard over plain HTTP: sign-in and its cookie, the 401 page, and every page with data.

The client talks to http://127.0.0.1 (loopback, plain HTTP), where the session cookie is not
Secure, so httpx keeps and sends it like a browser would; other hosts get a Secure cookie.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from http.cookies import SimpleCookie

import asyncpg
import httpx
import pytest

from db.queries.dashboard import select_reopen_groups, select_theme_ticket_figures, select_times_groups
from db.queries.health import select_connection_health
from db.queries.work import select_work_lag
from tests.browser.seed import anchor_week, apply_themes, build_items, probe_time

PAGES = ("/", "/themes/1", "/features", "/operations", "/runs")


@pytest.fixture
async def client(app_client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    app_client.base_url = httpx.URL("http://127.0.0.1")
    yield app_client


async def new_key(client: httpx.AsyncClient, admin: dict[str, str], *scopes: str) -> tuple[int, str]:
    resp = await client.post("/v1/keys", json={"name": "dashboard", "scopes": list(scopes)}, headers=admin)
    assert resp.status_code == 201, resp.text
    return resp.json()["api_key_id"], resp.json()["key"]


async def sign_in(client: httpx.AsyncClient, key: str, next_path: str = "/") -> httpx.Response:
    return await client.post("/login", data={"api_key": key, "next": next_path})


def set_cookie(resp: httpx.Response) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    jar.load(resp.headers["set-cookie"])
    return jar


@pytest.fixture
async def seeded(client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection) -> dict[str, object]:
    week = anchor_week(datetime.now(UTC))
    items = build_items(week)
    resp = await client.post("/v1/items/bulk", json=items, headers=admin)
    assert resp.status_code == 202 and resp.json()["accepted"] == len(items), resp.text
    themes = await apply_themes(db)
    _, key = await new_key(client, admin, "read")
    assert (await sign_in(client, key)).status_code == 303
    return {"week": week, "themes": themes, "items": len(items)}


async def test_pages_answer_401_with_the_sign_in_form_without_a_session(client: httpx.AsyncClient) -> None:
    for path in PAGES:
        resp = await client.get(path, params={"tz": "UTC"})
        assert resp.status_code == 401, path
        assert resp.headers["content-type"].startswith("text/html")
        assert '<form class="signin-form" method="post" action="/login">' in resp.text
        assert f'name="next" value="{path}?tz=UTC"' in resp.text
        assert "default-src 'none'" in resp.headers["content-security-policy"]
    resp = await client.get("/items/1.json")
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"


async def test_a_bearer_key_does_not_open_the_dashboard(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert (await client.get("/", headers=admin)).status_code == 401


async def test_sign_in_sets_an_http_only_lax_cookie_holding_no_key(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    _, key = await new_key(client, admin, "read")
    resp = await sign_in(client, key, "/features?tz=UTC")
    assert resp.status_code == 303 and resp.headers["location"] == "/features?tz=UTC"
    morsel = set_cookie(resp)["dashboard_session"]
    assert morsel["httponly"] and morsel["samesite"].lower() == "lax" and morsel["path"] == "/"
    assert not morsel["secure"]  # plain HTTP on loopback: the dev and test setup
    assert int(morsel["max-age"]) == 12 * 3600
    token = morsel.value
    assert key not in token and len(token) >= 40
    stored = await db.fetchval("SELECT token_hash FROM dashboard_session")
    assert stored == hashlib.sha256(token.encode()).digest()
    assert (await client.get("/features")).status_code == 200


@pytest.mark.parametrize("base_url", ["http://test", "https://127.0.0.1", "http://192.0.2.10"])
async def test_the_cookie_is_secure_unless_plain_http_on_loopback(
    client: httpx.AsyncClient, admin: dict[str, str], base_url: str
) -> None:
    _, key = await new_key(client, admin, "read")
    client.base_url = httpx.URL(base_url)
    resp = await sign_in(client, key)
    assert resp.status_code == 303
    assert set_cookie(resp)["dashboard_session"]["secure"]


async def test_the_bootstrap_admin_key_signs_in(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    key = admin["Authorization"].removeprefix("Bearer ")
    assert (await sign_in(client, key)).status_code == 303
    assert (await client.get("/runs")).status_code == 200


async def test_bad_and_ingest_only_keys_are_refused(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    resp = await sign_in(client, "tk_not_a_key")
    assert resp.status_code == 401 and "not valid, or it has been revoked" in resp.text
    assert "set-cookie" not in resp.headers
    _, ingest_only = await new_key(client, admin, "ingest")
    resp = await sign_in(client, ingest_only)
    assert resp.status_code == 403 and "lacks the read scope" in resp.text
    assert (await client.get("/")).status_code == 401


async def test_revoking_the_key_ends_its_sessions(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    key_id, key = await new_key(client, admin, "read")
    await sign_in(client, key)
    assert (await client.get("/")).status_code == 200
    assert (await client.delete(f"/v1/keys/{key_id}", headers=admin)).status_code == 200
    resp = await client.get("/")
    assert resp.status_code == 401 and "its key was revoked" in resp.text


async def test_logout_clears_the_cookie_and_the_session(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    _, key = await new_key(client, admin, "read")
    token = set_cookie(await sign_in(client, key))["dashboard_session"].value
    resp = await client.post("/logout")
    assert resp.status_code == 303 and resp.headers["location"] == "/login?signed_out=1"
    assert set_cookie(resp)["dashboard_session"]["max-age"] == "0"
    client.cookies.clear()
    # The old token is dead server-side too, not only forgotten by this browser.
    resp = await client.get("/", headers={"cookie": f"dashboard_session={token}"})
    assert resp.status_code == 401


async def test_sign_in_only_redirects_to_local_paths(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    _, key = await new_key(client, admin, "read")
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        assert (await sign_in(client, key, target)).headers["location"] == "/"


async def test_a_cross_site_sign_in_post_is_refused(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    _, key = await new_key(client, admin, "read")
    resp = await client.post("/login", data={"api_key": key}, headers={"origin": "https://evil.example"})
    assert resp.status_code == 403 and "set-cookie" not in resp.headers


async def test_static_assets_ship_with_the_service(client: httpx.AsyncClient) -> None:
    chart = await client.get("/static/vendor/chartjs/chart.umd.js")
    assert chart.status_code == 200 and "Chart.js v4" in chart.text[:200]
    assert "MIT License" in (await client.get("/static/vendor/chartjs/LICENSE.md")).text
    assert (await client.get("/static/js/dashboard.js")).status_code == 200
    assert (await client.get("/static/css/dashboard.css")).status_code == 200


async def test_the_week_page_shows_top_themes_badges_and_unassigned(
    client: httpx.AsyncClient, admin: dict[str, str], seeded: dict[str, object]
) -> None:
    week = seeded["week"]
    assert isinstance(week, date)
    resp = await client.get("/", params={"week": week.isoformat(), "tz": "UTC"})
    assert resp.status_code == 200
    html = resp.text
    rows = re.findall(r'<tr data-theme-id="(\d+)">(.*?)</tr>', html, re.S)
    themes = seeded["themes"]
    assert isinstance(themes, dict)
    assert [int(r[0]) for r in rows[:3]] == [themes["refund"], themes["csv"], themes["login"]]
    refund = rows[0][1]
    assert "▲ Spike" in refund and '<td class="num">20</td>' in refund and '<td class="num">3</td>' in refund
    assert "↑ +567 %" in refund  # (20 - 3) / 3
    assert "✚ Emerging" in rows[1][1]
    assert refund.count("<polyline") == 1
    # the unassigned figure is the theme-trends report's own unassigned row
    report = await client.get(
        "/v1/reports/theme-trends",
        params={"from": week.isoformat(), "to": (week + timedelta(days=7)).isoformat(), "tz": "UTC"},
        headers=admin,
    )
    unassigned = next(r["volume"] for r in report.json()["rows"] if r["theme_id"] is None)
    assert f'<span class="kpi-value" id="kpi-unassigned">{unassigned}</span>' in html
    assert '<canvas data-chart="top-themes-data"' in html and 'id="top-themes-data">{' in html
    assert "<summary>Numbers behind this chart" in html

    by_source = await client.get("/", params={"week": week.isoformat(), "source": "discourse"})
    assert "Refund not received" not in by_source.text and "Dark mode" not in by_source.text


async def test_the_week_page_folds_leaves_into_their_parents_and_leaves_hidden_themes_out(
    client: httpx.AsyncClient, seeded: dict[str, object], db: asyncpg.Connection
) -> None:
    week, themes = seeded["week"], seeded["themes"]
    assert isinstance(week, date) and isinstance(themes, dict)
    parent = await db.fetchval("INSERT INTO theme (label, level) VALUES ('Money', 'parent') RETURNING theme_id")
    await db.execute("UPDATE theme SET parent_id = $1 WHERE theme_id = ANY($2::bigint[])", parent,
                     [themes["refund"], themes["csv"]])  # fmt: skip
    await db.execute("UPDATE theme SET hidden = true WHERE theme_id = $1", themes["login"])
    html = (await client.get("/", params={"week": week.isoformat(), "tz": "UTC"})).text
    rows = [int(r) for r in re.findall(r'<tr data-theme-id="(\d+)">', html)]
    assert rows[:2] == [themes["refund"], themes["csv"]] and themes["login"] not in rows
    areas = dict(re.findall(r'<details class="area" data-parent-id="(\d*)">(.*?)</details>', html, re.S))
    inside = [int(t) for t in re.findall(r'<li data-theme-id="(\d+)">', areas[str(parent)])]
    assert inside == [themes["refund"], themes["csv"]]
    start = datetime.combine(week, datetime.min.time(), UTC)
    volume = await db.fetchval(
        "SELECT count(*) FROM item WHERE theme_id = ANY($1::bigint[]) AND created_at >= $2 AND created_at < $3",
        [themes["refund"], themes["csv"]], start, start + timedelta(days=7),
    )  # fmt: skip
    assert f"{volume} items</span></summary>" in areas[str(parent)] and "Money" in areas[str(parent)]
    assert all(themes["login"] not in [int(t) for t in re.findall(r'data-theme-id="(\d+)"', a)] for a in areas.values())


async def test_user_text_is_escaped_and_only_http_links_are_made(
    client: httpx.AsyncClient, seeded: dict[str, object]
) -> None:
    themes = seeded["themes"]
    assert isinstance(themes, dict)
    week = seeded["week"]
    assert isinstance(week, date)
    overview = (await client.get("/", params={"week": week.isoformat()})).text
    assert "&lt;script&gt;alert(&#39;label&#39;)&lt;/script&gt; &amp; co" in overview
    page = (await client.get(f"/themes/{themes['xss']}")).text
    assert "<script>alert" not in page and "<img src=x" not in page and "&lt;img src=x" in page
    assert "javascript:" not in page
    assert 'class="json-link" href="/items/' in page


async def test_the_theme_page_shows_volume_figures_and_paginated_items(
    client: httpx.AsyncClient, seeded: dict[str, object]
) -> None:
    themes = seeded["themes"]
    week = seeded["week"]
    assert isinstance(themes, dict) and isinstance(week, date)
    resp = await client.get(f"/themes/{themes['refund']}", params={"week": week.isoformat()})
    assert resp.status_code == 200
    html = resp.text
    assert '<h1 id="theme-label">Refund not received</h1>' in html
    assert '<canvas data-chart="theme-volume-data"' in html
    assert re.search(r'id="theme-reopen-rate">\d+\.\d %<', html)
    assert html.count('class="source-link" href="https://support.example.com/agent/tickets/refund-') >= 25
    # 53 items over 25 per page: a link to the next page, which holds different items
    first = set(re.findall(r'<tr data-item-id="(\d+)">', html.split('id="items"')[1]))
    cursor = re.search(r'href="/themes/\d+\?[^"]*cursor=([^"#&]+)', html)
    assert cursor and len(first) == 25
    second = (await client.get(f"/themes/{themes['refund']}", params={"cursor": cursor.group(1)})).text
    page_two = set(re.findall(r'<tr data-item-id="(\d+)">', second.split('id="items"')[1]))
    assert len(page_two) == 25 and not page_two & first
    item_id = next(iter(first))
    item = await client.get(f"/items/{item_id}.json")
    assert item.status_code == 200 and item.json()["item_id"] == int(item_id)
    assert item.json()["theme_id"] == themes["refund"]

    missing = await client.get("/themes/999999")
    assert missing.status_code == 404 and "Theme 999999 does not exist." in missing.text


async def test_week_boundaries_follow_the_time_zone(client: httpx.AsyncClient, seeded: dict[str, object]) -> None:
    themes = seeded["themes"]
    week = seeded["week"]
    assert isinstance(themes, dict) and isinstance(week, date)
    probe_week_utc = probe_time(week).date()  # a Monday
    params = {"week": week.isoformat()}

    def week_of_the_probe(html: str) -> str:
        table = html.split('id="theme-volume"')[1]
        row = r'<th scope="row">(?:<a href="[^"]*">)?(\d{4}-\d{2}-\d{2})(?:</a>)?</th><td class="num">1</td>'
        [week_label] = re.findall(row, table)
        return str(week_label)

    utc = (await client.get(f"/themes/{themes['probe']}", params={**params, "tz": "UTC"})).text
    assert week_of_the_probe(utc) == probe_week_utc.isoformat()
    la = (await client.get(f"/themes/{themes['probe']}", params={**params, "tz": "America/Los_Angeles"})).text
    assert week_of_the_probe(la) == (probe_week_utc - timedelta(weeks=1)).isoformat()
    assert "Mon " + week.isoformat() + " 00:00 UTC" in utc
    assert re.search(r"Mon " + week.isoformat() + r" 0[78]:00 UTC", la)  # PDT or PST


async def test_feature_requests_rank_themes_with_requesters_and_votes(
    client: httpx.AsyncClient, admin: dict[str, str], seeded: dict[str, object], db: asyncpg.Connection
) -> None:
    themes = seeded["themes"]
    week = seeded["week"]
    assert isinstance(themes, dict) and isinstance(week, date)
    html = (await client.get("/features", params={"week": week.isoformat()})).text
    rows = re.findall(r'<tr data-theme-id="(\d+)">(.*?)</tr>', html, re.S)
    assert [int(r[0]) for r in rows] == [themes["dark"], themes["excel"]]
    expected = await db.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT requester_id) AS people, sum(votes) AS votes FROM item"
        " WHERE feature_theme_id = $1",
        themes["dark"],
    )
    assert expected is not None
    cells = re.findall(r'<td class="num">([\d,]+)</td>', rows[0][1])
    assert cells[1:4] == [str(expected["n"]), str(expected["people"]), str(expected["votes"])]
    assert f'href="/themes/{themes["dark"]}?' in rows[0][1] and "See the 24 requests" in rows[0][1]
    drill = (await client.get(f"/themes/{themes['dark']}")).text
    requests = drill.split('id="items"')[1]
    assert requests.count('class="source-link" href="https://community.example.com/t/dark-mode/') == 24
    assert '<canvas data-chart="feature-weekly-data"' in html and '<canvas data-chart="feature-top-data"' in html
    # the same figures as the feature-requests report over the 12 weeks shown
    window = {"from": (week - timedelta(weeks=11)).isoformat(), "to": (week + timedelta(weeks=1)).isoformat()}
    report = await client.get("/v1/reports/feature-requests", params={**window, "group_by": "theme"}, headers=admin)
    assert report.status_code == 200, report.text
    theirs = {r["theme_id"]: r for r in report.json()["rows"] if r["theme_id"] is not None}
    for theme_id, row in rows:
        cells = re.findall(r'<td class="num">([\d,]+)</td>', row)
        figures = theirs[int(theme_id)]
        assert cells[1:4] == [str(figures["count"]), str(figures["distinct_requesters"]), str(figures["votes"])]


async def test_operations_and_theme_figures_agree_with_the_report_endpoints(
    client: httpx.AsyncClient, admin: dict[str, str], seeded: dict[str, object], db: asyncpg.Connection
) -> None:
    week, themes = seeded["week"], seeded["themes"]
    assert isinstance(week, date) and isinstance(themes, dict)
    html = (await client.get("/operations", params={"week": week.isoformat()})).text
    for section in ("reopen-rate", "resolution-times", "weekly-ops", "by-source", "by-channel", "by-priority"):
        assert f'id="{section}"' in html
    assert '<th scope="row">email</th>' in html and '<th scope="row">high</th>' in html

    async def report(path: str, **params: str) -> list[dict[str, object]]:
        resp = await client.get(f"/v1/reports/{path}", params=params, headers=admin)
        assert resp.status_code == 200, resp.text
        rows: list[dict[str, object]] = resp.json()["rows"]
        return rows

    # One week, grouped by week here: the same figures as the report over that week alone.
    start = datetime.combine(week, datetime.min.time(), tzinfo=UTC)
    end = start + timedelta(days=7)
    window = {"from": week.isoformat(), "to": (week + timedelta(days=7)).isoformat(), "tz": "UTC"}
    for metric in ("first_response", "first_resolution", "full_resolution"):
        groups = await select_times_groups(db, metric=metric, tz="UTC", start_at=start, end_at=end)
        [mine] = [g for g in groups if g.dimension == "week"]
        [theirs] = await report("resolution-times", **window, metric=metric)
        assert (mine.count, mine.median_s, mine.p90_s) == (theirs["count"], theirs["median_s"], theirs["p90_s"])
        by_channel = {g.key: (g.count, g.median_s, g.p90_s) for g in groups if g.dimension == "channel"}
        theirs_by_channel = await report("resolution-times", **window, metric=metric, group_by="channel")
        assert by_channel == {r["channel"]: (r["count"], r["median_s"], r["p90_s"]) for r in theirs_by_channel}
    reopens = await select_reopen_groups(db, tz="UTC", start_at=start, end_at=end)
    [mine_reopen] = [g for g in reopens if g.dimension == "week"]
    [theirs_reopen] = await report("reopen-rate", **window)
    assert (mine_reopen.solved, mine_reopen.reopened, mine_reopen.reopens) == (
        theirs_reopen["solved"], theirs_reopen["reopened"], theirs_reopen["reopens"],
    )  # fmt: skip
    by_priority = {g.key: (g.solved, g.reopened) for g in reopens if g.dimension == "priority"}
    theirs_priority = await report("reopen-rate", **window, group_by="priority")
    assert by_priority == {r["priority"]: (r["solved"], r["reopened"]) for r in theirs_priority}

    # A theme's figures over 12 weeks: the report grouped by theme, that theme's row.
    twelve = {"from": (week - timedelta(weeks=11)).isoformat(), "to": window["to"], "tz": "UTC"}
    figures = await select_theme_ticket_figures(
        db, theme_id=themes["refund"], start_at=start - timedelta(weeks=11), end_at=end
    )
    [rate] = [r for r in await report("reopen-rate", **twelve, group_by="theme") if r["theme_id"] == themes["refund"]]
    assert (figures.solved, figures.reopened, figures.reopens) == (rate["solved"], rate["reopened"], rate["reopens"])
    for mine_times in figures.times:
        rows = await report("resolution-times", **twelve, metric=mine_times.metric, group_by="theme")
        [row] = [r for r in rows if r["theme_id"] == themes["refund"]]
        assert (mine_times.count, mine_times.median_s, mine_times.p90_s) == (
            row["count"],
            row["median_s"],
            row["p90_s"],
        )
        assert mine_times.mean_s == pytest.approx(row["mean_s"])
    assert (await client.get("/operations", params={"metric": "first_response"})).status_code == 200


async def test_runs_page_shows_runs_queues_and_failures(
    client: httpx.AsyncClient, seeded: dict[str, object], db: asyncpg.Connection
) -> None:
    await db.execute(
        "INSERT INTO clustering_run (scope, status, items, themes, unassigned, timings, started_at, finished_at)"
        " VALUES ('all', 'done', 270, 5, 40, '{\"embed_s\": 1.5, \"cluster_s\": 2.25}',"
        " now() - interval '9 seconds', now())"
    )
    await db.execute(
        "INSERT INTO job_failure (job_id, func_name, error, attempts) VALUES ('j1', 'workers.jobs.process_items',"
        " 'RuntimeError: <boom>', 4)"
    )
    # tests/conftest.py does not empty the webhook tables: a fresh id each run.
    connection_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO connection (connection_id, vendor, name) VALUES ($1, 'zendesk', 'Zendesk EU')", connection_id
    )
    await db.execute(
        "INSERT INTO delivery (connection_id, dedupe_key, body, status, error)"
        " VALUES ($1, 'd1', '{}', 'failed', 'bad payload')",
        connection_id,
    )
    # Three items wait for the worker: the page shows the backlog /readyz reports.
    await db.execute("UPDATE item SET pending = true WHERE item_id IN (SELECT item_id FROM item LIMIT 3)")
    lag = await select_work_lag(db)
    assert lag.pending_items >= 3
    html = (await client.get("/runs")).text
    assert 'id="queues"' in html and '<th scope="row">items</th>' in html
    work_lag = html.split('id="work-lag"')[1].split("</div>")[0]
    assert f">{lag.pending_items}<" in work_lag and "items waiting to be embedded, the oldest for" in work_lag
    assert "embed_s 1.5 · cluster_s 2.25" in html and '<canvas data-chart="run-durations-data"' in html
    assert "RuntimeError: &lt;boom&gt;" in html
    connections = html.split('id="connections"')[1]
    assert "Zendesk EU" in connections and "failed" in connections and "bad payload" in connections


async def test_runs_page_degrades_before_the_webhooks_migration(
    client: httpx.AsyncClient, seeded: dict[str, object], db: asyncpg.Connection
) -> None:
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        async with db.transaction():
            await db.execute("DROP TABLE delivery, connection_secret, connection")
            assert await select_connection_health(db) is None
            raise Rollback
    assert isinstance(await select_connection_health(db), list)


async def test_bad_filters_answer_an_html_422(client: httpx.AsyncClient, seeded: dict[str, object]) -> None:
    for params in ({"tz": "Mars/Olympus_Mons"}, {"week": "last tuesday"}):
        resp = await client.get("/", params=params)
        assert resp.status_code == 422 and resp.headers["content-type"].startswith("text/html")
    resp = await client.get("/operations", params={"metric": "vibes"})
    assert resp.status_code == 422 and "Unknown metric" in resp.text
    resp = await client.get("/themes/1", params={"cursor": "!!!"})
    assert resp.status_code == 422


async def test_hidden_themes_drop_out_of_the_pages_and_their_items_count_as_hidden(
    client: httpx.AsyncClient, db: asyncpg.Connection, seeded: dict[str, object]
) -> None:
    themes, week = seeded["themes"], seeded["week"]
    assert isinstance(themes, dict) and isinstance(week, date)
    params = {"tz": "UTC", "week": week.isoformat()}
    before = (await client.get("/", params=params)).text
    assert "Refund not received" in before and 'id="kpi-hidden"' not in before
    hidden = await db.fetchval(
        "SELECT count(*) FROM item WHERE theme_id = $1 AND created_at >= $2 AND created_at < $3 AND deleted_at IS NULL",
        themes["refund"], datetime.combine(week, time(), tzinfo=UTC),
        datetime.combine(week + timedelta(weeks=1), time(), tzinfo=UTC),
    )  # fmt: skip
    assert hidden > 0
    await db.execute("UPDATE theme SET hidden = true WHERE theme_id = ANY($1)", [themes["refund"], themes["dark"]])
    after = (await client.get("/", params=params)).text
    assert "Refund not received" not in after
    assert re.search(rf'id="kpi-hidden">{hidden}<', after)
    unassigned = re.search(r'id="kpi-unassigned">(\d+)<', after)
    assert unassigned and unassigned.group(1) == re.search(r'id="kpi-unassigned">(\d+)<', before).group(1)  # type: ignore[union-attr]
    features = (await client.get("/features", params=params)).text
    assert "Dark mode" not in features and 'id="kpi-hidden"' in features
