"""#17 finding 8: where the OpenAPI document and the behaviour disagreed (found by Schemathesis)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import auth


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/items/bulk", "POST"),
        ("DELETE", "/v1/items/bulk", "POST"),
        ("PUT", "/v1/items", "GET, POST"),
        ("POST", "/v1/items/1", "DELETE, GET, PATCH"),
        ("GET", "/v1/webhooks/00000000-0000-0000-0000-000000000000", "POST"),
        ("DELETE", "/healthz", "GET"),
    ],
)
async def test_a_wrong_method_is_405_with_an_allow_header(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    resp = await client.request(method, path, headers=auth())
    assert resp.status_code == 405, resp.text
    assert resp.json()["error"] == "method_not_allowed"
    assert sorted(m.strip() for m in resp.headers["allow"].split(",")) == sorted(allowed.split(", "))


async def test_an_item_id_that_is_not_a_number_is_404_and_in_range_ids_still_work(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/items/abc", headers=auth())).status_code == 404
    assert (await client.get("/v1/items/99", headers=auth())).status_code == 404
    too_big = await client.get(f"/v1/items/{2**63}", headers=auth())
    assert too_big.status_code == 422 and too_big.json()["error"] == "validation_error"
