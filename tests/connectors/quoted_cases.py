"""A customer's e-mail reply with its signature and the quoted history below it, as each help desk
sends it: one delivery per HTML-carrying vendor, built on that vendor's shared fixture with only the
body field replaced. Each uses the markup of a different mail client (Gmail, Outlook on the web,
Apple Mail, Thunderbird, Outlook for Windows), written after what those clients produce.

`CUSTOMER` lines must reach the embedded text; `QUOTED` and `SIGNATURE` lines must not. Shared by
tests/api/test_quoted_history.py and bench/quoted_replies.py.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from tests.connectors.connector_cases import FIXTURES, HELPSCOUT_CONVERSATION

CUSTOMER = (
    "The October invoice still shows the annual plan although we moved to monthly billing.",
    "Could you correct it and send us a new PDF before Friday?",
)
SIGNATURE = ("Priya Raman", "Finance Operations Lead")
QUOTED = (
    "Thanks for getting in touch about your invoice.",
    "Could you confirm the e-mail address on the account so we can look it up?",
)


def _customer_html() -> str:
    return "".join(f"<div>{line}</div>" for line in CUSTOMER)


def gmail() -> str:
    return (
        f'<div dir="ltr">{_customer_html()}<div><br></div>'
        '<span class="gmail_signature_prefix">-- </span><br>'
        f'<div dir="ltr" class="gmail_signature">{SIGNATURE[0]}<br>{SIGNATURE[1]}</div></div><br>'
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Nov 2, 2026 at 10:04 AM'
        " Acme Support &lt;support@acme.example&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204)">'
        f"<div>{QUOTED[0]}</div><div>{QUOTED[1]}</div></blockquote></div>"
    )


def outlook_web() -> str:
    return (
        f'<div class="elementToProof">{_customer_html()}</div>'
        f'<div id="Signature"><p>Best regards,<br>{SIGNATURE[0]}<br>{SIGNATURE[1]}</p></div>'
        '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif"><b>From:</b> Acme Support'
        " &lt;support@acme.example&gt;<br><b>Sent:</b> Monday, November 2, 2026 10:04<br>"
        "<b>To:</b> Priya Raman<br><b>Subject:</b> Re: Invoice</font><div>&nbsp;</div></div>"
        f"<div><p>{QUOTED[0]}</p><p>{QUOTED[1]}</p></div>"
    )


def apple_mail() -> str:
    return (
        f"<html><body>{_customer_html()}<div><br></div><div>Best,</div>"
        f"<div>{SIGNATURE[0]}</div><div>{SIGNATURE[1]}</div><div><br>"
        '<blockquote type="cite"><div>On 2 Nov 2026, at 10:04, Acme Support &lt;support@acme.example&gt;'
        f" wrote:</div><br><div><div>{QUOTED[0]}</div><div>{QUOTED[1]}</div></div></blockquote></div>"
        "</body></html>"
    )


def thunderbird() -> str:
    return (
        f"<p>{CUSTOMER[0]}<br>{CUSTOMER[1]}</p>"
        f'<pre class="moz-signature" cols="72">-- \n{SIGNATURE[0]}\n{SIGNATURE[1]}</pre>'
        '<div class="moz-cite-prefix">On 02/11/2026 10:04, Acme Support wrote:<br></div>'
        '<blockquote type="cite" cite="mid:abc@acme.example">'
        f"<p>{QUOTED[0]}</p><p>{QUOTED[1]}</p></blockquote>"
    )


def outlook_desktop() -> str:
    return (
        '<div class="WordSection1">'
        f'<p class="MsoNormal">{CUSTOMER[0]}</p><p class="MsoNormal">{CUSTOMER[1]}</p>'
        f'<p class="MsoNormal">Kind regards,<br>{SIGNATURE[0]}<br>{SIGNATURE[1]}</p>'
        '<div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        '<p class="MsoNormal"><b>From:</b> Acme Support &lt;support@acme.example&gt;<br>'
        "<b>Sent:</b> Monday, November 2, 2026 10:04<br><b>To:</b> Priya Raman<br>"
        "<b>Subject:</b> Re: Invoice</p></div></div>"
        f'<p class="MsoNormal">{QUOTED[0]}</p><p class="MsoNormal">{QUOTED[1]}</p></div>'
    )


def outlook_german_sanitised() -> str:
    """Outlook on the web in German after a help desk's sanitiser dropped ids and classes."""
    return (
        f"{_customer_html()}<p>Mit freundlichen Grüßen<br>{SIGNATURE[0]}<br>{SIGNATURE[1]}</p><hr>"
        "<p><b>Von:</b> Acme Support &lt;support@acme.example&gt;<br><b>Gesendet:</b> Montag, 2. November"
        " 2026 10:04<br><b>An:</b> Priya Raman<br><b>Betreff:</b> AW: Rechnung</p>"
        f"<p>{QUOTED[0]}</p><p>{QUOTED[1]}</p>"
    )


def gmail_sanitised() -> str:
    """Gmail after a sanitiser that keeps only plain blocks (no classes, no blockquote)."""
    return (
        f"{_customer_html()}<div>-- </div><div>{SIGNATURE[0]}</div><div>{SIGNATURE[1]}</div>"
        "<div>On Mon, Nov 2, 2026 at 10:04 AM Acme Support &lt;support@acme.example&gt; wrote:</div>"
        f"<div>{QUOTED[0]}</div><div>{QUOTED[1]}</div>"
    )


def bottom_posted() -> str:
    """The customer answers below the quoted question: only the quote may go."""
    return (
        '<div class="moz-cite-prefix">On 02/11/2026 10:04, Acme Support wrote:<br></div>'
        f'<blockquote type="cite"><p>{QUOTED[0]}</p><p>{QUOTED[1]}</p></blockquote>'
        f"<p>{CUSTOMER[0]}</p><p>{CUSTOMER[1]}</p>"
        f'<pre class="moz-signature" cols="72">-- \n{SIGNATURE[0]}\n{SIGNATURE[1]}</pre>'
    )


# Harder bodies for the benchmark only: no vendor envelope, the HTML as it reaches the rule.
HARD_CASES = {
    "Outlook, German, sanitised": outlook_german_sanitised(),
    "Gmail, sanitised": gmail_sanitised(),
    "Thunderbird, bottom-posted": bottom_posted(),
}


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return loaded


def zendesk(html: str) -> dict[str, Any]:
    body = _fixture("zendesk/api_ticket_audit.json")
    audit = body.get("audit", body)
    for event in audit["events"]:
        if event.get("type") == "Comment":
            event.pop("body", None)
            event["html_body"] = html
    return body


def freshdesk(html: str) -> dict[str, Any]:
    body = _fixture("freshdesk/api_v2_ticket.json")
    body["description"] = html
    # What Freshdesk puts beside it: the same text flattened, quotes and all.
    body["description_text"] = " ".join([*CUSTOMER, *SIGNATURE, *QUOTED])
    return body


def intercom(html: str) -> dict[str, Any]:
    body = _fixture("intercom/conversation.user.created.json")
    body["data"]["item"]["conversation_message"]["body"] = html
    return body


def zammad(html: str) -> dict[str, Any]:
    body = _fixture("zammad/ticket_trigger.default_payload.json")
    body["article"]["body"] = html
    body["article"]["content_type"] = "text/html"
    return body


def helpscout(html: str) -> dict[str, Any]:
    body = copy.deepcopy(HELPSCOUT_CONVERSATION)
    for thread in body["_embedded"]["threads"]:
        if thread["type"] == "customer":
            thread["body"] = html
    return body


@dataclass(frozen=True)
class QuotedCase:
    vendor: str
    client: str
    html: str
    payload: dict[str, Any]

    @property
    def body(self) -> bytes:
        return json.dumps(self.payload).encode()


CASES = [
    QuotedCase("zendesk", "Gmail", gmail(), zendesk(gmail())),
    QuotedCase("freshdesk", "Outlook on the web", outlook_web(), freshdesk(outlook_web())),
    QuotedCase("intercom", "Apple Mail", apple_mail(), intercom(apple_mail())),
    QuotedCase("zammad", "Thunderbird", thunderbird(), zammad(thunderbird())),
    QuotedCase("helpscout", "Outlook for Windows", outlook_desktop(), helpscout(outlook_desktop())),
]
# Help Scout sends the event name in a header; the others need none for these bodies.
HEADERS = {"helpscout": {"X-HelpScout-Event": "convo.created"}}


def leaks(text: str) -> list[str]:
    """The quoted or signature lines found in `text`, and the customer lines missing from it."""
    flat = " ".join(text.split())
    found = [f"quoted: {line}" for line in QUOTED if line in flat]
    found += [f"signature: {line}" for line in SIGNATURE if line in flat]
    found += [f"missing: {line}" for line in CUSTOMER if line not in flat]
    return found
