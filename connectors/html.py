"""HTML to plain text for ticket bodies (Intercom, Freshdesk, Zammad, Help Scout send HTML)."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser

# Webhook bodies are capped at 1 MB upstream (reliability.md W9); this keeps the parser bounded
# even when a caller passes something bigger.
_MAX_HTML_CHARS = 2_000_000


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment with whitespace collapsed ("" when there is none)."""
    tree = LexborHTMLParser(html[:_MAX_HTML_CHARS])
    tree.strip_tags(["script", "style", "head", "template"])
    root = tree.body or tree.root
    if root is None:
        return ""
    return " ".join(root.text(separator=" ").split())
