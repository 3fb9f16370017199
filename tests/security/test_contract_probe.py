"""#17 finding 8: where the OpenAPI document and the behaviour disagreed (found by Schemathesis)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from schemas.patterns import SPACE
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


def _schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = openapi["components"]["schemas"]
    return schemas


async def test_a_label_that_strips_to_nothing_is_refused_by_the_schema_as_by_the_api(client: httpx.AsyncClient) -> None:
    # Schemathesis' case: "\u000b" met minLength 1, then the strip left nothing and the API said 422.
    pattern = _schemas((await client.get("/openapi.json")).json())["ThemePatch"]["properties"]["label"]["pattern"]
    for blank in ("\u000b", "\x85", " \u3000 ", "\u2028"):
        assert re.search(pattern, blank) is None, repr(blank)
        resp = await client.patch("/v1/themes/1", json={"label": blank}, headers=auth())
        assert resp.status_code == 422 and resp.json()["error"] == "validation_error", repr(blank)
    assert re.search(pattern, " Card not arrived ")


async def test_a_nul_in_a_new_themes_examples_is_refused_as_the_schema_says(client: httpx.AsyncClient) -> None:
    # Schemathesis' case: the examples go to a jsonb column, which cannot hold U+0000 (was a 500).
    schema = _schemas((await client.get("/openapi.json")).json())["PersonThemeCreate"]["properties"]["examples"]
    for examples in (["\u0000"], ["card \u0000 lost"]):
        assert re.search(schema["items"]["pattern"], examples[0]) is None
        resp = await client.post("/v1/themes", json={"label": "0", "examples": examples}, headers=auth())
        assert resp.status_code == 422 and resp.json()["error"] == "validation_error", resp.text
    assert (await client.get("/v1/themes", headers=auth())).json()["data"] == []


async def test_an_address_the_schema_refuses_is_refused_and_one_it_takes_is_taken(client: httpx.AsyncClient) -> None:
    # Schemathesis' case: U+0085 is white space to the API's regex and not to JSON Schema's `\s`.
    doc = _schemas((await client.get("/openapi.json")).json())
    pattern = doc["DestinationCreate"]["properties"]["to"]["anyOf"][0]["items"]["pattern"]
    for address, taken in (("\x13@\x94F.0\x85\U000263b7\x84\u023e", False), ("a b@c.de", False),
                           ("support+alerts@exämple.de", True)):  # fmt: skip
        assert (re.search(pattern, address) is not None) is taken, repr(address)
        body = {"kind": "email", "name": "team", "to": [address]}
        resp = await client.post("/v1/alerts/destinations", json=body, headers=auth())
        assert resp.status_code == (201 if taken else 422), (address, resp.text)


@pytest.mark.parametrize(
    ("path", "body", "component", "refusal"),
    [
        ("/v1/alerts/rules", {"name": "r", "on": ["spike"], "destination_ids": [1],
                              "quiet_hours": {"start": "20:00", "end": "20:00"}},
         "QuietHours", "start` and `end` must differ"),
        ("/v1/connections", {"vendor": "generic", "name": "g", "secret": "not-a-standard-webhooks-secret"},
         "ConnectionCreate", "whsec_ followed by base64 of at least 16 bytes"),
    ],
)  # fmt: skip
async def test_a_refusal_no_schema_keyword_can_state_is_in_the_description(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], component: str, refusal: str
) -> None:
    resp = await client.post(path, json=body, headers=auth())
    assert resp.status_code == 422 and resp.json()["error"] == "validation_error", resp.text
    assert refusal in json.dumps(_schemas((await client.get("/openapi.json")).json())[component])


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for value in node.values():
            yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


async def test_published_patterns_spell_their_classes_out(client: httpx.AsyncClient) -> None:
    # `\s`, `\d`, `\w` and `\b` mean one set to a client's ECMA-262 regex and another to pydantic's
    # (Rust) or ours (Python): U+0085 is white space to two of the three; Rust's `\d` is any digit.
    patterns = list(_patterns((await client.get("/openapi.json")).json()))
    assert len(patterns) >= 6
    assert [p for p in patterns if re.search(r"(?<!\\)\\[sSdDwWbB]", p)] == []


def test_the_space_class_is_what_strip_trims() -> None:
    space = re.compile(f"[{SPACE}]")
    assert [c for c in range(0x110000) if bool(space.match(chr(c))) != chr(c).isspace()] == []
