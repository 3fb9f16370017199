"""HTML to plain text for ticket bodies (Intercom, Freshdesk, Zammad, Help Scout send HTML)."""

from __future__ import annotations

import html as entities
import re

from selectolax.lexbor import LexborHTMLParser

# Webhook bodies are capped at 1 MB upstream (reliability.md W9); this keeps the parser bounded
# even when a caller passes something bigger.
_MAX_HTML_CHARS = 2_000_000
# Block boundaries become spaces so "<p>a</p><p>b</p>" reads "a b", while inline markup
# ("charged <b>twice</b>.") adds none.
# lexbor's tree building slows down super-linearly with nesting depth (100,000 nested <div>s take
# most of a minute), so documents with more tags than any real message are stripped with a regex.
_MAX_TAGS = 10_000
_TAG = re.compile(r"<[^>]*>")
_BLOCKS = "p,div,li,ul,ol,br,hr,tr,td,th,table,blockquote,pre,h1,h2,h3,h4,h5,h6,section,article"


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment with whitespace collapsed ("" when there is none)."""
    html = html[:_MAX_HTML_CHARS]
    if html.count("<") > _MAX_TAGS:
        return " ".join(entities.unescape(_TAG.sub(" ", html)).split())
    tree = LexborHTMLParser(html)
    tree.strip_tags(["script", "style", "head", "template"])
    for node in tree.css(_BLOCKS):
        node.insert_before(" ")
        node.insert_after(" ")
    root = tree.body or tree.root
    if root is None:
        return ""
    return " ".join(root.text(separator="").split())
