"""Quoted reply history: our HTML rule against quotequail and mail-parser-reply (issue 22).

Each approach turns a body into the text that gets embedded (clustering.text.prepare_text runs last
in all of them, so signatures, redaction and the line-based reply rules are the same for all):

- before: the HTML rule on main before issue 22 (flatten to one line, quotes kept);
- ours: connectors/html.py (markup-marked quotes and signatures dropped, line breaks kept);
- quotequail 0.5.4: quote_html() / quote(), the parts it shows;
- mail-parser-reply 1.36: the latest reply of EmailReplyParser(languages=["en"]) on our text with
  quotes kept (it reads text only).

Two measures: on tests/connectors/quoted_cases.py (one reply per HTML vendor, five mail clients),
how many quoted and signature lines are removed and how many customer lines kept; and on every
item of the shared vendor fixtures (/work/shared/fixtures/webhooks, no quoted history in them), the
share of the body's words kept (anything under 100 % is the customer's words cut).

    python bench/quoted_replies.py
"""

from __future__ import annotations

import html as entities
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import quotequail
from mailparser_reply import EmailReplyParser

import connectors.item
from clustering.text import prepare_text
from connectors import parse
from connectors.html import html_to_text
from tests.connectors.connector_cases import FIXTURE_HEADERS, fixture_names, vendor_of
from tests.connectors.quoted_cases import CASES, CUSTOMER, HARD_CASES, QUOTED, SIGNATURE
from tests.connectors.quoted_cases import FIXTURES as FIXTURE_DIR

_TAG = re.compile(r"<[^>]*>")
_BLOCK = re.compile(r"</?(?:p|div|li|ul|ol|br|hr|tr|td|th|table|blockquote|pre|h[1-6]|section|article)\b[^>]*>", re.I)

Approach = Callable[[str, bool], str]  # (body, is_html) -> text before prepare_text


def before(body: str, is_html: bool) -> str:
    if not is_html:
        return body
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(body)
    tree.strip_tags(["script", "style", "head", "template"])
    for node in tree.css("p,div,li,ul,ol,br,hr,tr,td,th,table,blockquote,pre,h1,h2,h3,h4,h5,h6,section,article"):
        node.insert_before(" ")
        node.insert_after(" ")
    root = tree.body or tree.root
    return " ".join(root.text(separator="").split()) if root is not None else ""


def ours(body: str, is_html: bool) -> str:
    return html_to_text(body) if is_html else body


def with_quotequail(body: str, is_html: bool) -> str:
    if is_html:
        shown = "".join(part for show, part in quotequail.quote_html(body) if show)
        return html_to_text(shown, keep_quotes=True)
    return "\n".join(part for show, part in quotequail.quote(body) if show)


_PARSER = EmailReplyParser(languages=["en"])


def with_mail_parser_reply(body: str, is_html: bool) -> str:
    text = html_to_text(body, keep_quotes=True) if is_html else body
    return str(_PARSER.parse_reply(text=text))


APPROACHES: dict[str, Approach] = {
    "before (main)": before,
    "ours": ours,
    "quotequail": with_quotequail,
    "mail-parser-reply": with_mail_parser_reply,
}

PLAIN_REPLY = "\n".join(
    [*CUSTOMER, "", "-- ", *SIGNATURE, "", "On Mon, Nov 2, 2026 at 10:04 AM Acme Support <support@acme.example> wrote:"]
    + [f"> {line}" for line in QUOTED]
)


def _flat(text: str) -> str:
    return " ".join(text.split())


def case_scores(approach: Approach, bodies: list[tuple[str, bool]]) -> tuple[int, int, int]:
    """(quoted lines removed, signature lines removed, customer lines kept)"""
    quoted = signature = customer = 0
    for body, is_html in bodies:
        text = _flat(prepare_text(None, approach(body, is_html)))
        quoted += sum(line not in text for line in QUOTED)
        signature += sum(line not in text for line in SIGNATURE)
        customer += sum(line in text for line in CUSTOMER)
    return quoted, signature, customer


def fixture_bodies() -> list[tuple[str, str, bool]]:
    """(title, body, is_html) of every item the shared fixtures map to, the body as sent."""
    captured: list[str] = []

    def keep(html: str) -> str:
        captured.append(html)
        return html

    original = connectors.item.html_to_text
    connectors.item.html_to_text = keep  # type: ignore[assignment]
    found = []
    try:
        for name in fixture_names():
            body = (FIXTURE_DIR / name).read_bytes()
            try:
                parsed = parse(vendor_of(name), FIXTURE_HEADERS.get(name, {}), body)
            except Exception:
                continue
            for item in parsed.items:
                is_html = bool(captured) and captured[-1] == item["body"]
                found.append((item.get("title") or "", item["body"], is_html))
                captured.clear()
    finally:
        connectors.item.html_to_text = original
    return found


def _words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", entities.unescape(_TAG.sub(" ", text)).lower()))


def fixture_kept(approach: Approach, bodies: list[tuple[str, str, bool]]) -> float:
    kept = total = 0
    for title, body, is_html in bodies:
        everything = _words(prepare_text(title, html_to_text(body, keep_quotes=True) if is_html else body))
        got = _words(prepare_text(title, approach(body, is_html)))
        kept += sum((everything & got).values())
        total += sum(everything.values())
    return kept / total if total else 1.0


def main() -> None:
    bodies = fixture_bodies()
    html_count = sum(is_html for _, _, is_html in bodies)
    sets = {
        "vendor replies": [(case.html, True) for case in CASES] + [(PLAIN_REPLY, False)],
        "hard replies": [(html, True) for html in HARD_CASES.values()],
    }
    print(f"vendor replies: {len(CASES)} HTML (one per vendor) + 1 plain text; hard replies: {len(HARD_CASES)}"
          f" ({'; '.join(HARD_CASES)}); fixtures: {len(bodies)} items ({html_count} HTML)")  # fmt: skip
    print("quoted removed / signature removed / customer kept, each out of 2 lines per reply")
    print(f"| approach | {' | '.join(f'{name} ({len(cases)})' for name, cases in sets.items())} | fixture words kept |")
    print("|---|" + "---|" * len(sets) + "---|")
    for name, approach in APPROACHES.items():
        cells = [" / ".join(map(str, case_scores(approach, cases))) for cases in sets.values()]
        print(f"| {name} | {' | '.join(cells)} | {fixture_kept(approach, bodies):.1%} |")


if __name__ == "__main__":
    main()
