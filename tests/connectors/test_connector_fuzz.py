"""Hypothesis: validly signed, arbitrary or mangled JSON never breaks a connector.

For every vendor, a body that passes verification either parses to items that all validate as
`ItemCreate`, or raises `MalformedPayload`; no other exception escapes (reliability.md D6, W9).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import MalformedPayload, dedupe_key, parse, verify
from schemas.items import ItemCreate
from tests.connectors.connector_cases import (
    ALL_VENDORS,
    FIXTURES,
    GENERIC_UPSERT,
    HELPSCOUT_CONVERSATION,
    NOW,
    fixture_names,
    secrets_for,
    sign,
    vendor_of,
)

SPECIAL_STRINGS = [
    "",
    " ",
    "\u0000",
    "a\u0000b",
    "\ud800",
    "9" * 40,
    "<p>x</p>",
    "<div>" * 50,
    "2019-02-15T19:01:52.971-0800",
    "2025-01-08T10:12:07.672717030Z",
    "2020-03-03 13:05:57 UTC",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "zen:ticket:5158",
    "https://example.com/api/v2/tickets/1.json",
    "x" * 70_000,
]
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**40, -(10**40), 2**63, 10**4000, 1_700_000_000, 1_700_000_000_000]),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(SPECIAL_STRINGS),
)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for level in range(depth):
        value = [value] if level % 2 else {"content": value, "text": "t"}
    return value


odd_values = st.one_of(json_values, st.integers(0, 600).map(_nested))

SEEDS: dict[str, list[Any]] = {vendor: [] for vendor in ALL_VENDORS}
for _name in fixture_names():
    SEEDS[vendor_of(_name)].append(json.loads((FIXTURES / _name).read_bytes()))
SEEDS["helpscout"].append(HELPSCOUT_CONVERSATION)
SEEDS["generic"].append(GENERIC_UPSERT)

EVENT_HEADERS: dict[str, list[dict[str, str]]] = {
    "discourse": [
        {"X-Discourse-Event": e, "X-Discourse-Instance": "https://forum.example.com"}
        for e in ("post_created", "post_edited", "post_liked", "accepted_solution", "post_destroyed", "topic_created")
    ]
    + [{}],
    "github": [{"X-GitHub-Event": e} for e in ("discussion", "discussion_comment", "issues")] + [{}],
    "helpscout": [{"X-HelpScout-Event": e} for e in ("convo.created", "convo.deleted", "customer.created")] + [{}],
    "zammad": [{"X-Zammad-Trigger": "t"}, {}],
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copied = list(value)
    copied[head] = _replace(copied[head], rest, new)
    return copied


@st.composite
def mangled_seed(draw: st.DrawFn, vendor: str) -> Any:
    value = draw(st.sampled_from(SEEDS[vendor]))
    for _ in range(draw(st.integers(1, 6))):
        path = draw(st.sampled_from(_paths(value)))
        value = _replace(value, path, draw(odd_values))
    return value


def _check(vendor: str, payload: Any, headers: dict[str, str]) -> None:
    body = json.dumps(payload).encode()
    secret, _ = secrets_for(vendor)
    signed = {**headers, **sign(vendor, body, secret)}
    assert verify(vendor, signed, body, [secret], NOW).ok
    assert dedupe_key(vendor, signed, body)
    try:
        parsed = parse(vendor, signed, body)
    except MalformedPayload:
        return
    for item in parsed.items:
        ItemCreate.model_validate(item)
        assert set(item) == set(ItemCreate.model_fields)
    for source, external_id in parsed.deletes:
        assert source == vendor and 0 < len(external_id) <= 256


FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@FUZZ
@given(data=st.data())
def test_mangled_vendor_payloads_parse_or_are_malformed(data: st.DataObject) -> None:
    vendor = data.draw(st.sampled_from(ALL_VENDORS))
    payload = data.draw(mangled_seed(vendor))
    headers = data.draw(st.sampled_from(EVENT_HEADERS.get(vendor, [{}])))
    _check(vendor, payload, headers)


@FUZZ
@given(vendor=st.sampled_from(ALL_VENDORS), payload=odd_values)
def test_arbitrary_json_parses_or_is_malformed(vendor: str, payload: Any) -> None:
    _check(vendor, payload, {})
