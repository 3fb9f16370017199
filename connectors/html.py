"""The one HTML rule: HTML bodies to plain text, line breaks kept, quoted history dropped.

Intercom, Freshdesk, Zammad, Help Scout and Zendesk send a customer's e-mail reply as HTML with
the previous messages quoted below it. The mail clients mark that history in the markup, and
the markup is the reliable signal: once flattened to text, "On ... wrote:" is mid-line and the
`>` prefixes are gone. So quoted blocks and marked signatures are removed here, before storage,
and block boundaries become line breaks, which the line-based rules of clustering/text.py
(reply headers, `-- ` signatures, valedictions) need. bench/quoted_replies.py weighs this rule
against quotequail and mail-parser-reply (bench/RESULTS.md, issue 22).
"""

from __future__ import annotations

import html as entities
import re
from collections.abc import Callable

from selectolax.lexbor import LexborHTMLParser, LexborNode

# Webhook bodies are capped at 1 MB upstream (reliability.md W9); this keeps the parser bounded
# even when a caller passes something bigger.
_MAX_HTML_CHARS = 2_000_000
# lexbor's tree building slows down super-linearly with nesting depth (100,000 nested <div>s take
# most of a minute), so documents with more tags than any real message are stripped with a regex.
_MAX_TAGS = 10_000
_TAG = re.compile(r"<[^>]*>")

_NOT_TEXT = "head, script, style, template, noscript, title"
# Quoted history as mail clients and help desks mark it: Gmail, Yahoo, Thunderbird, Apple Mail
# and most others (blockquote), Discourse-style asides, Freshdesk's quote wrapper.
_QUOTED = (
    "blockquote, .gmail_quote, .yahoo_quoted, .moz-cite-prefix, aside.quote, .freshdesk_quote,"
    " .protonmail_quote, div[data-marker='__QUOTED_TEXT__']"
)
# Marked signatures: Gmail, Thunderbird, Outlook (web and desktop).
_SIGNATURES = (
    ".gmail_signature, .gmail_signature_prefix, .moz-signature, #Signature, #signature,"
    " div[data-smartmail='gmail_signature']"
)
# Where Outlook starts the message being replied to: everything from here on is history.
_HISTORY_STARTS = "#appendonsend, #divRplyFwdMsg, .OutlookMessageHeader, #mail-editor-reference-message-container"
# Outlook desktop (Word HTML) has no id: the header is a block with a top border and "From:".
_WORD_HEADER = "div[style*='border-top']"
_BLOCKS = (
    "p, div, li, tr, table, ul, ol, h1, h2, h3, h4, h5, h6, section, article, header, footer,"
    " dd, dt, hr, pre, address, figure, figcaption"
)
# Our line breaks, told apart from the source's newlines (in HTML those are only spaces) until
# the end. A private-use character, which no message text carries.
_BREAK = "\ue000"
_WHITESPACE = re.compile(r"[^\S\ue000]+")


def _cut_from(node: LexborNode) -> None:
    """Remove `node` and everything after it in document order."""
    current: LexborNode | None = node
    while current is not None and current.tag not in ("body", "html", "-document"):
        while current.next is not None:
            current.next.decompose()
        parent = current.parent
        if current is node:
            current.decompose()
        current = parent


def _word_header(tree: LexborHTMLParser) -> LexborNode | None:
    return next((n for n in tree.css(_WORD_HEADER) if n.text(deep=True).lstrip().startswith("From:")), None)


def _outermost(nodes: list[LexborNode]) -> list[LexborNode]:
    """The matches that are not inside another match: removing those removes the rest, and a node
    freed with its ancestor is never touched again."""
    matched = {node.mem_id for node in nodes}
    outer = []
    for node in nodes:
        parent = node.parent
        while parent is not None and parent.mem_id not in matched:
            parent = parent.parent
        if parent is None:
            outer.append(node)
    return outer


def _drop_history(tree: LexborHTMLParser) -> None:
    # Searched again after each cut: a cut frees every node after it, earlier matches included.
    # Each pass removes the node it found, so the loops end.
    while (start := tree.css_first(_HISTORY_STARTS)) is not None:
        _cut_from(start)
    while (header := _word_header(tree)) is not None:
        _cut_from(header)
    for node in _outermost(tree.css(f"{_QUOTED}, {_SIGNATURES}")):
        node.decompose()


def html_to_text(html: str, *, keep_quotes: bool = False, code: Callable[[str], str] | None = None) -> str:
    """Visible text of an HTML fragment: one line per block or <br>, spaces collapsed within a
    line, quoted history and marked signatures left out ("" when nothing is left).

    `keep_quotes` keeps them (the benchmark's input for text-only quote parsers); `code`, when
    given, rewrites the text of each <pre> (clustering shortens stack traces with it).
    """
    html = html[:_MAX_HTML_CHARS]
    if html.count("<") > _MAX_TAGS:
        return _tidy(entities.unescape(_TAG.sub(" ", html)).replace(_BREAK, " "))
    tree = LexborHTMLParser(html)
    tree.strip_tags(_NOT_TEXT.split(", "))
    if not keep_quotes:
        _drop_history(tree)
    for node in tree.css("pre"):  # preformatted: its newlines are line breaks
        node.replace_with(_BREAK + (code or str)(node.text()).replace("\n", _BREAK) + _BREAK)
    for node in tree.css("br"):
        node.replace_with(_BREAK)
    for node in tree.css(_BLOCKS):
        node.insert_before(_BREAK)
        node.insert_after(_BREAK)
    for node in tree.css("td, th"):
        node.insert_after(" ")
    root = tree.body or tree.root
    if root is None:
        return ""
    return _tidy(root.text(separator="", strip=False))


def _tidy(text: str) -> str:
    """Whitespace runs become one space, our breaks newlines; no blank or padded lines."""
    lines = (line.strip() for line in _WHITESPACE.sub(" ", text).split(_BREAK))
    return "\n".join(line for line in lines if line)
