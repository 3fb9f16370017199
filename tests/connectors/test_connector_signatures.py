"""Signature and shared-secret verification for every vendor (reliability.md W1–W3)."""

from __future__ import annotations

import base64
import hmac
import json
import re
from pathlib import Path

import pytest

from connectors import verify
from connectors.signatures import SCHEMES
from tests.connectors.connector_cases import (
    ALL_VENDORS,
    BODY_SIGNED,
    FIXTURES,
    GENERIC_UPSERT,
    HELPSCOUT_CONVERSATION,
    NOW,
    SIGNATURE_HEADER,
    TIMESTAMPED,
    fixture_names,
    secrets_for,
    sign,
    vendor_of,
)


def _cases() -> list[tuple[str, str, bytes]]:
    cases = [(name, vendor_of(name), (FIXTURES / name).read_bytes()) for name in fixture_names()]
    cases.append(("helpscout (constructed)", "helpscout", json.dumps(HELPSCOUT_CONVERSATION, indent=2).encode()))
    cases.append(("generic (constructed)", "generic", json.dumps(GENERIC_UPSERT, indent=2).encode()))
    return cases


CASES = _cases()
IDS = [case[0] for case in CASES]
PREFIXED = frozenset({"github", "discourse", "intercom", "zammad", "jira", "chatwoot"})
BODY_CASES = [c for c in CASES if c[1] in BODY_SIGNED]
TIMED_CASES = [c for c in CASES if c[1] in TIMESTAMPED]
PREFIXED_CASES = [c for c in CASES if c[1] in PREFIXED]


def test_every_vendor_has_a_case_and_a_scheme() -> None:
    assert {vendor for _, vendor, _ in CASES} == set(ALL_VENDORS) == set(SCHEMES)


@pytest.mark.parametrize(("name", "vendor", "body"), CASES, ids=IDS)
def test_validly_signed_delivery_passes(name: str, vendor: str, body: bytes) -> None:
    secret, _ = secrets_for(vendor)
    assert verify(vendor, sign(vendor, body, secret), body, [secret], NOW).ok


@pytest.mark.parametrize(("name", "vendor", "body"), CASES, ids=IDS)
def test_headers_are_case_insensitive(name: str, vendor: str, body: bytes) -> None:
    secret, _ = secrets_for(vendor)
    upper = {k.upper(): v for k, v in sign(vendor, body, secret).items()}
    assert verify(vendor, upper, body, [secret], NOW).ok


@pytest.mark.parametrize(("name", "vendor", "body"), BODY_CASES, ids=[c[0] for c in BODY_CASES])
def test_body_mutations_fail(name: str, vendor: str, body: bytes) -> None:
    secret, _ = secrets_for(vendor)
    headers = sign(vendor, body, secret)
    flipped = bytearray(body)
    flipped[len(flipped) // 2] ^= 0x01
    reserialised = json.dumps(json.loads(body)).encode()
    assert reserialised != body
    assert not verify(vendor, headers, bytes(flipped), [secret], NOW).ok
    assert not verify(vendor, headers, reserialised, [secret], NOW).ok


@pytest.mark.parametrize(("name", "vendor", "body"), CASES, ids=IDS)
def test_missing_signature_header_fails(name: str, vendor: str, body: bytes) -> None:
    secret, _ = secrets_for(vendor)
    headers = sign(vendor, body, secret)
    del headers[SIGNATURE_HEADER[vendor]]
    result = verify(vendor, headers, body, [secret], NOW)
    assert not result.ok
    assert "missing" in result.reason


@pytest.mark.parametrize(("name", "vendor", "body"), CASES, ids=IDS)
def test_wrong_secret_fails_and_rotated_secret_passes(name: str, vendor: str, body: bytes) -> None:
    secret, rotated = secrets_for(vendor)
    assert not verify(vendor, sign(vendor, body, rotated), body, [secret], NOW).ok
    assert verify(vendor, sign(vendor, body, rotated), body, [secret, rotated], NOW).ok
    assert verify(vendor, sign(vendor, body, secret), body, [secret, rotated], NOW).ok


@pytest.mark.parametrize(("name", "vendor", "body"), CASES, ids=IDS)
def test_no_usable_secret_fails(name: str, vendor: str, body: bytes) -> None:
    secret, _ = secrets_for(vendor)
    headers = sign(vendor, body, secret)
    assert not verify(vendor, headers, body, [], NOW).ok
    assert not verify(vendor, headers, body, [""], NOW).ok


@pytest.mark.parametrize(("name", "vendor", "body"), TIMED_CASES, ids=[c[0] for c in TIMED_CASES])
@pytest.mark.parametrize(("skew", "is_ok"), [(-301, False), (301, False), (-299, True), (299, True)])
def test_signed_time_must_be_within_300_seconds(name: str, vendor: str, body: bytes, skew: int, is_ok: bool) -> None:
    secret, _ = secrets_for(vendor)
    headers = sign(vendor, body, secret, at=NOW + skew)
    assert verify(vendor, headers, body, [secret], NOW).ok is is_ok


@pytest.mark.parametrize(("name", "vendor", "body"), PREFIXED_CASES, ids=[c[0] for c in PREFIXED_CASES])
def test_hex_prefix_swapped_fails(name: str, vendor: str, body: bytes) -> None:
    secret, _ = secrets_for(vendor)
    headers = sign(vendor, body, secret)
    header = SIGNATURE_HEADER[vendor]
    value = headers[header]
    swapped = "sha256=" + value[5:] if value.startswith("sha1=") else "sha1=" + value[7:]
    assert not verify(vendor, {**headers, header: swapped}, body, [secret], NOW).ok


def test_github_published_test_vector() -> None:
    headers = {"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    assert verify("github", headers, b"Hello, World!", ["It's a Secret to Everybody"], NOW).ok
    assert not verify("github", headers, b"Hello, World?", ["It's a Secret to Everybody"], NOW).ok


def test_standard_webhooks_header_with_two_signatures_passes_for_either_secret() -> None:
    body = json.dumps(GENERIC_UPSERT).encode()
    old, new = secrets_for("generic")
    first = sign("generic", body, old)
    second = sign("generic", body, new)["webhook-signature"]
    both = {**first, "webhook-signature": f"{first['webhook-signature']} {second}"}
    assert verify("generic", both, body, [new], NOW).ok
    assert verify("generic", both, body, [old], NOW).ok
    assert not verify("generic", {**first, "webhook-id": "msg_2"}, body, [old], NOW).ok


@pytest.mark.parametrize("vendor", ["freshdesk", "jira", "zammad", "chatwoot"])
def test_shared_secret_header_or_bearer_authenticates_unsigned_vendors(vendor: str) -> None:
    body = b'{"id": 1}'
    basic = base64.b64encode(f"{SECRET_FOR_SHARED}:X".encode()).decode()
    for headers in (
        {"X-Webhook-Secret": SECRET_FOR_SHARED},
        {"Authorization": f"Bearer {SECRET_FOR_SHARED}"},
        {"Authorization": f"Basic {basic}"},
    ):
        assert verify(vendor, headers, body, ["old-one", SECRET_FOR_SHARED], NOW).ok, headers
    assert not verify(vendor, {"X-Webhook-Secret": "nope"}, body, [SECRET_FOR_SHARED], NOW).ok
    assert not verify(vendor, {"Authorization": "Bearer nope"}, body, [SECRET_FOR_SHARED], NOW).ok
    assert not verify(vendor, {}, body, [SECRET_FOR_SHARED], NOW).ok


SECRET_FOR_SHARED = "issued-by-us-0123456789"


@pytest.mark.parametrize("vendor", ["github", "discourse", "intercom", "helpscout", "zendesk", "generic"])
def test_signing_vendors_do_not_accept_a_shared_secret(vendor: str) -> None:
    headers = {"X-Webhook-Secret": SECRET_FOR_SHARED, "Authorization": f"Bearer {SECRET_FOR_SHARED}"}
    assert not verify(vendor, headers, b"{}", [SECRET_FOR_SHARED], NOW).ok


def test_a_present_signature_is_checked_even_if_a_shared_secret_is_sent() -> None:
    headers = {"X-Hub-Signature": "sha256=" + "0" * 64, "X-Webhook-Secret": SECRET_FOR_SHARED}
    assert not verify("jira", headers, b"{}", [SECRET_FOR_SHARED], NOW).ok


def test_unknown_vendor_fails() -> None:
    assert not verify("myspace", {}, b"{}", ["x"], NOW).ok


def test_reason_never_echoes_the_secret() -> None:
    body = b"{}"
    for vendor in ALL_VENDORS:
        secret, _ = secrets_for(vendor)
        headers = sign(vendor, body, secret)
        result = verify(vendor, {k: v + "x" for k, v in headers.items()}, body, [secret], NOW)
        assert not result.ok
        assert secret not in result.reason


@pytest.mark.parametrize(("name", "vendor", "body"), CASES, ids=IDS)
def test_compare_digest_is_the_comparator(name: str, vendor: str, body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    secret, _ = secrets_for(vendor)
    assert verify(vendor, sign(vendor, body, secret), body, [secret], NOW).ok
    assert calls


def test_signature_module_never_compares_with_double_equals() -> None:
    source = (Path(__file__).resolve().parents[2] / "connectors" / "signatures.py").read_text()
    code_lines = [line for line in source.splitlines() if not line.lstrip().startswith("#")]
    offending = [line for line in code_lines if re.search(r"[^=!<>]==[^=]|!=", line)]
    assert offending == []
