"""Time formats, HTML to text, and the package's import boundary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connectors.html import html_to_text
from connectors.timeparse import iso


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("2025-01-08T10:12:07.672717030Z", "s", "2025-01-08T10:12:07.672717+00:00"),  # nanoseconds
        ("2019-02-15T19:01:52.971-0800", "s", "2019-02-16T03:01:52.971000+00:00"),  # offset, no colon
        ("2019-08-13T06:14:23.580+0800", "s", "2019-08-12T22:14:23.580000+00:00"),
        ("2021-03-30T16:09:00.000-04:00", "s", "2021-03-30T20:09:00+00:00"),
        ("2020-03-03 13:05:57 UTC", "s", "2020-03-03T13:05:57+00:00"),  # Chatwoot
        ("2016-05-18T04:36:04Z", "s", "2016-05-18T04:36:04+00:00"),
        ("2014-07-28T16:20:03+05:30", "s", "2014-07-28T10:50:03+00:00"),
        ("Tue, 18 May 2016 04:36:04 +0000", "s", "2016-05-18T04:36:04+00:00"),  # RFC 2822
        ("2024-05-01T09:00:00", "s", "2024-05-01T09:00:00+00:00"),  # no offset: UTC
        (1461165141, "s", "2016-04-20T15:12:21+00:00"),  # Intercom
        ("1461165141", "s", "2016-04-20T15:12:21+00:00"),
        (1550286113023, "ms", "2019-02-16T03:01:53.023000+00:00"),  # Jira
        (None, "s", None),
        (True, "s", None),
        ("", "s", None),
        ("yesterday", "s", None),
        ("2024-13-45T99:00:00Z", "s", None),
        (10**40, "s", None),
        (float("nan"), "s", None),
        (float("inf"), "s", None),
        ("9" * 100, "s", None),
        ({"at": 1}, "s", None),
    ],
)
def test_vendor_time_formats_become_utc(value: object, unit: str, expected: str | None) -> None:
    assert iso(value, unit=unit) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>visitor initiated message 1</p>", "visitor initiated message 1"),
        ("<div>I was charged <b>twice</b>.</div><p>Refund?</p>", "I was charged twice.\nRefund?"),
        ("line<br>two<ul><li>a</li><li>b</li></ul>", "line\ntwo\na\nb"),
        ("<p>a  \n b</p>", "a b"),  # source line breaks inside a block are only spaces
        ("<p>Still broken.</p><blockquote>On Mon, Support wrote: did you restart?</blockquote>", "Still broken."),
        ("<p>Hi</p><div id=appendonsend></div><hr><div id=divRplyFwdMsg>From: Acme</div><p>old</p>", "Hi"),
        ("<script>alert(1)</script><style>p{}</style>visible", "visible"),
        ("fish &amp; chips", "fish & chips"),
        ("", ""),
        ("<div>" * 100_000 + "deep &amp; x", "deep & x"),  # too many tags for the parser: regex path
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_connectors_import_no_web_db_or_queue_code() -> None:
    root = Path(__file__).resolve().parents[2]
    probe = (
        "import sys, connectors, connectors.registry; "
        "bad = [m for m in ('fastapi', 'starlette', 'asyncpg', 'rq', 'redis', 'db', 'api', 'workers') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
