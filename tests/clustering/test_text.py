import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from clustering.text import content_hash, prepare_text, redact

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "webhooks"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


# (text, expected). Values are the usual public test numbers: card-network test PANs, the
# IBAN registry's example IBANs, Ofcom/NANP drama numbers, documentation IP ranges.
REDACTED = [
    ("Reply to jane.doe+billing@example.com please", "Reply to <EMAIL> please"),
    ("CC John.Smith@Mail.Example.CO.UK, ops@example.org.", "CC <EMAIL>, <EMAIL>."),
    (
        "Link https://app.example.com/invite?email=ops%40example.org&token=Zx81 expired",
        "Link https://app.example.com/invite?email=<EMAIL>&token=Zx81 expired",
    ),
    ("Visa 4111 1111 1111 1111 declined", "Visa <CARD> declined"),
    ("MC 5500-0000-0000-0004 declined", "MC <CARD> declined"),
    ("Amex 3782 822463 10005 declined", "Amex <CARD> declined"),
    ("card 4012888888881881 and old 4222222222222", "card <CARD> and old <CARD>"),
    ("qty 2 4111 1111 1111 1111 thanks", "qty 2 <CARD> thanks"),
    ("DE: DE89 3704 0044 0532 0130 00 thanks", "DE: <IBAN> thanks"),
    ("GB: GB82 WEST 1234 5698 7654 32", "GB: <IBAN>"),
    ("FR: FR14 2004 1010 0505 0001 3M02 606", "FR: <IBAN>"),
    ("ES: ES9121000418450200051332.", "ES: <IBAN>."),
    ("NL typed lower case: nl91abna0417164300", "NL typed lower case: <IBAN>"),
    ("BE: BE68 5390 0754 7034, CH: CH93 0076 2011 6238 5295 7", "BE: <IBAN>, CH: <IBAN>"),
    ("Call +1 415 555 2671 today", "Call <PHONE> today"),
    ("Call (415) 555-0132 or 415.555.2671", "Call <PHONE> or <PHONE>"),
    ("Toll free 1-800-555-0199.", "Toll free <PHONE>."),
    ("UK +44 20 7946 0958 or 020 7946 0958", "UK <PHONE> or <PHONE>"),
    ("DE +49 30 901820 or 030 901820", "DE <PHONE> or <PHONE>"),
    ("FR +33 1 42 68 53 00, IN +91 98765 43210", "FR <PHONE>, IN <PHONE>"),
    ("AU +61 2 9876 5432", "AU <PHONE>"),
    ("Server 192.168.1.20 and 10.0.0.255.", "Server <IP> and <IP>."),
    ("v6 2001:db8::8a2e:370:7334 and fe80::1%eth0", "v6 <IP> and <IP>"),
    ("loopback ::1, mapped ::ffff:192.0.2.1", "loopback <IP>, mapped <IP>"),
]

NOT_REDACTED = [
    "Order #12345 was charged $25.00 on 2024-01-15 at 10:30.",
    "Upgraded to version 2.3.1 in 2023, build 20240115.",
    "Refund of €1,250.00 for invoice 2024/00123 dated 15/01/2024.",
    "Ticket 98765432, order 1234567, ZIP 94103, 3 items.",
    "Card 4111 1111 1111 1112 was declined",  # fails Luhn
    "Reference 1234 5678 9012 3456",  # fails Luhn
    "IBAN DE00 3704 0044 0532 0130 00 looks wrong",  # fails mod 97
    "std::vector at 10:30:00, 999.1.1.1, MAC 00:1A:2B:3C:4D:5E",
    "Thanks @eddiejennings, see /usr/share/edk2/ovmf/OVMF_CODE.fd",
    "Years 2021 2022 2023 and SKU AB12-3456",
]


@pytest.mark.parametrize(("text", "expected"), REDACTED, ids=[e for _, e in REDACTED])
def test_redact_replaces_pii_with_typed_placeholders(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", NOT_REDACTED)
def test_redact_leaves_ordinary_numbers_alone(text: str) -> None:
    assert redact(text) == text


SEEDED_PII = [
    "seed.person+tickets@example.net",
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432",
    "+44 20 7946 0958",
    "(415) 555-0132",
    "203.0.113.77",
    "2001:db8::17",
]


def _leaks(text: str) -> list[str]:
    compact = text.replace(" ", "").replace("-", "")
    return [v for v in SEEDED_PII if v in text or v.replace(" ", "").replace("-", "") in compact]


def test_prepare_text_never_outputs_seeded_pii() -> None:
    title = f"Charge on {SEEDED_PII[1]} from {SEEDED_PII[7]}"
    html = (
        f"<div><p>Hi, please refund card {SEEDED_PII[2]} to {SEEDED_PII[3]}.</p>"
        f"<p>Reach me at <a href='mailto:{SEEDED_PII[0]}'>{SEEDED_PII[0]}</a> or "
        f"{SEEDED_PII[5]}; IBAN {SEEDED_PII[4]}, host {SEEDED_PII[8]}.</p>"
        f"<p>Best regards,<br>Seed Person<br>{SEEDED_PII[6]}</p></div>"
    )
    plain = "\n".join(f"Line {i}: my details are {value}." for i, value in enumerate(SEEDED_PII))
    for out in (prepare_text(title, html), prepare_text(None, plain)):
        assert _leaks(out) == [], out
        assert "<EMAIL>" in out and "<CARD>" in out


@pytest.mark.parametrize("pad", range(0, 30, 3))
def test_prepare_text_does_not_leak_pii_cut_by_the_length_cap(pad: int) -> None:
    # The phone straddles the cap at some offset; redaction must happen before the cut.
    body = "x" * (90 + pad) + " call +44 20 7946 0958 now"
    out = prepare_text(None, body, max_chars=100)
    assert len(out) <= 100
    assert "7946" not in out and "0958" not in out and "+44" not in out


# --- cleaning real webhook bodies ---------------------------------------------------------


def test_zendesk_html_comment_becomes_plain_text() -> None:
    audit = load_fixture("zendesk/api_ticket_audit.json")
    assert prepare_text(None, audit["events"][0]["html_body"]) == "THIS IS MY FUNCY COMMENT"


def test_zendesk_notification_template_is_boilerplate() -> None:
    audit = load_fixture("zendesk/api_ticket_audit.json")
    assert "{{ticket.id}}" in audit["events"][9]["body"]
    assert prepare_text(None, audit["events"][9]["body"]) == ""


@pytest.mark.parametrize("name", ["discourse/post_created.with_raw_reply.json"])
def test_discourse_cooked_html_and_raw_markdown_give_the_same_text(name: str) -> None:
    post = load_fixture(name)["post"]
    cooked, raw = prepare_text(None, post["cooked"]), prepare_text(None, post["raw"])
    assert cooked == raw
    assert cooked.startswith("Welcome to Discourse — thanks for contributing! Be kind")
    assert "criticize ideas, not people. For more, see our community guidelines." in cooked
    for markup in ("<", "**", "](", "* "):
        assert markup not in cooked


def test_discourse_solution_keeps_paths_and_mentions() -> None:
    solved = load_fixture("discourse/accepted_solution.json")["solved"]
    cooked, raw = prepare_text(None, solved["cooked"]), prepare_text(None, solved["raw"])
    assert cooked == raw
    assert "Firmware: UEFI x86_64: /usr/share/edk2/ovmf/OVMF_CODE.fd he finally" in cooked
    assert "@eddiejennings" in cooked


def test_intercom_and_freshdesk_bodies_lose_their_markup() -> None:
    replied = load_fixture("intercom/conversation.user.replied.json")["data"]["item"]
    assert prepare_text(None, replied["conversation_message"]["body"]) == "visitor initiated message 1"
    part = replied["conversation_parts"]["conversation_parts"][0]["body"]
    assert prepare_text(None, part) == "visitor reply 2"
    ticket = load_fixture("freshdesk/api_v2_ticket.json")
    assert prepare_text(None, ticket["description"]) == ticket["description_text"]


def test_zammad_article_drops_images_and_line_breaks() -> None:
    payload = load_fixture("zammad/ticket_trigger.default_payload.json")
    out = prepare_text(payload["ticket"]["title"], payload["article"]["body"])
    assert out == f"{payload['ticket']['title']} This is a simple Webhook Test."


# --- hand-written replies and signatures --------------------------------------------------

CLEANED = [
    (
        "gmail reply",
        "Thanks, the export works now.\n\nOn Tue, 5 Mar 2024 at 09:14, Acme Support "
        "<support@acme.io> wrote:\n> Could you try again?\n> Card 4111 1111 1111 1111\n",
        "Thanks, the export works now.",
    ),
    (
        "gmail header wrapped over two lines",
        "It still fails.\n\nOn Tue, Mar 5, 2024 at 9:14 AM Acme Support <\nsupport@acme.io> wrote:\n\nold",
        "It still fails.",
    ),
    (
        "german reply header",
        "Geht wieder, danke.\n\nAm 05.03.2024 um 09:14 schrieb Acme Support <support@acme.io>:\n\nalt",
        "Geht wieder, danke.",
    ),
    (
        "outlook header block",
        "The sync stopped again.\n\n________________________________\nFrom: Acme Support "
        "<support@acme.io>\nSent: Tuesday, March 5, 2024 9:14 AM\nTo: Jane\nSubject: RE: sync\n\n"
        "Could you try again?",
        "The sync stopped again.",
    ),
    (
        "original message separator",
        "Please cancel my plan.\n-----Original Message-----\nFrom: billing@acme.io\nYour invoice",
        "Please cancel my plan.",
    ),
    (
        "zendesk reply delimiter",
        "Still broken.\n\n##- Please type your reply above this line -##\n\nYour request (4521) has "
        "been updated. To add additional comments, reply to this email.\n\nOld comment",
        "Still broken.",
    ),
    (
        "bottom posting keeps the answers",
        "On Mon, Jane wrote:\n> Does export work?\nNo, it times out.\n> Which browser?\nFirefox 123.",
        "No, it times out. Firefox 123.",
    ),
    (
        "rfc signature delimiter",
        "The CSV export times out for large reports.\n-- \nJohn Smith | CTO | +44 20 7946 0958",
        "The CSV export times out for large reports.",
    ),
    (
        "mobile footer",
        "Login page is blank on Safari.\n\nSent from my iPhone",
        "Login page is blank on Safari.",
    ),
    (
        "valediction with name, title and phone",
        "My invoice is wrong, I was charged twice.\n\nBest regards,\nJane Doe\nHead of Ops, Acme "
        "Inc.\n+1 (415) 555-0132",
        "My invoice is wrong, I was charged twice.",
    ),
    ("thanks with name", "Where do I change my address?\n\nThanks,\nJane", "Where do I change my address?"),
    (
        "thanks that is not a sign-off",
        "Hi,\nThanks!\nThe app crashes on login.",
        "Hi, Thanks! The app crashes on login.",
    ),
    (
        "gmail html quote",
        '<div dir="ltr">It crashes on save.</div><br><div class="gmail_quote"><div class="gmail_attr">'
        'On Tue, Mar 5 Acme wrote:<br></div><blockquote class="gmail_quote">Try again?</blockquote></div>',
        "It crashes on save.",
    ),
    (
        "html entities, lists and scripts",
        "<p>Fish &amp; chips</p><ul><li>one</li><li>two</li></ul><script>alert(1)</script>",
        "Fish & chips one two",
    ),
    (
        "markdown markup",
        "# Export fails\n**Bold** and _it_ keep snake_case_name and 2 * 3.\n- see [the docs](https://x.io/a_(b))"
        "\n![screenshot](shot.png)\n`npm run build` fails",
        "Export fails Bold and it keep snake_case_name and 2 * 3. see the docs screenshot npm run build fails",
    ),
    (
        "outlook banner and inline image",
        "CAUTION: This email originated from outside of the organization.\nPrinter offline [cid:image001.png@01DA]",
        "Printer offline",
    ),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in CLEANED], ids=[c[0] for c in CLEANED])
def test_prepare_text_strips_replies_signatures_and_markup(body: str, expected: str) -> None:
    assert prepare_text(None, body) == expected


def test_code_blocks_keep_their_head_and_tail_only() -> None:
    frames = "\n".join(f'  File "mod{i}.py", line {i}' for i in range(40))
    body = f"Crash on start:\n```python\nTraceback (most recent call last):\n{frames}\nKeyError: 'id'\n```\nHelp"
    out = prepare_text(None, body)
    assert out.startswith('Crash on start: Traceback (most recent call last): File "mod0.py"')
    assert out.endswith("KeyError: 'id' Help")
    assert "mod20.py" not in out


def test_title_reply_prefixes_are_dropped() -> None:
    assert prepare_text("Re: RE: Fwd: Invoice wrong", "charged twice") == "Invoice wrong charged twice"


@pytest.mark.parametrize(
    ("title", "body"),
    [
        (None, ""),
        (None, "   \n\t "),
        (None, "<p> </p><br><div></div>"),
        (None, "> only a quote\n> and more"),
        (None, "\x00\x00"),
        ("", "\ud800"),
        (None, None),
        (42, {"not": "text"}),
    ],
)
def test_prepare_text_returns_empty_string_when_nothing_is_left(title: Any, body: Any) -> None:
    assert prepare_text(title, body) == ""


def test_prepare_text_drops_nul_bytes_surrogates_and_zero_width_characters() -> None:
    out = prepare_text("Log\x00in", "fails\ud83d for jo\u200bhn@exa\u200bmple.com\x07")
    assert out == "Login fails for <EMAIL>"
    out.encode("utf-8")  # no lone surrogates left


def test_prepare_text_caps_length_at_a_word_boundary() -> None:
    out = prepare_text("Title", "word " * 5000)
    assert len(out) <= 2000
    assert out.endswith("word")
    assert len(prepare_text(None, "abc " * 100, max_chars=10)) <= 10


@pytest.mark.parametrize("body", [c[1] for c in CLEANED] + [r[0] for r in REDACTED])
def test_prepare_text_is_idempotent(body: str) -> None:
    once = prepare_text(None, body)
    assert prepare_text(None, once) == once


PATHOLOGICAL = {
    "unclosed emphasis": "** a " * 200_000,
    "unclosed quotes": "[quote] x " * 100_000,
    "unclosed comments": "<!-- x " * 100_000,
    "hex with colons": "abcd:" * 20_000 + "g",
    "signature markers": "-- \n" * 100_000,
    "reply markers": "On x wrote:\n" * 50_000,
    "flat html": "<p>x<br>y</p>" * 30_000,
    "one long word": "a" * 1_000_000,
}


@pytest.mark.parametrize("body", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_prepare_text_stays_fast_on_megabyte_bodies(body: str) -> None:
    # Linear work takes well under a second here; a quadratic regex would take minutes.
    started = time.perf_counter()
    assert len(prepare_text("Title", body)) <= 2000
    assert time.perf_counter() - started < 5


def test_content_hash_is_sha256_of_the_prepared_text() -> None:
    text = prepare_text("Invoice", "Charged twice for order #12345")
    assert content_hash(text) == hashlib.sha256(text.encode()).digest()
    assert len(content_hash(text)) == 32
    assert content_hash(text) != content_hash(text + " ")
