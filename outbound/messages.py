"""What an incident looks like at each destination: Slack Block Kit, a Teams Adaptive Card (for a
workflow webhook), a Standard Webhooks JSON event, and a plain-text e-mail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

KIND_NAMES = {"spike": "Spike", "emerging": "Emerging theme", "feature_surge": "Feature-request surge"}


@dataclass(frozen=True)
class SegmentLine:
    field: str
    value: str
    share: float
    lift: float


@dataclass(frozen=True)
class IncidentMessage:
    incident_id: int
    kind: str
    level: str
    theme_id: int
    theme_label: str
    observed: int
    expected: float
    window_start: datetime
    window_end: datetime
    segments: list[SegmentLine]
    example_item_ids: list[int]
    theme_url: str
    is_test: bool = False

    @property
    def title(self) -> str:
        prefix = "[Test] " if self.is_test else ""
        level = " (parent theme)" if self.level == "parent" else ""
        return f"{prefix}{KIND_NAMES.get(self.kind, self.kind)}: {self.theme_label}{level}"

    @property
    def figures(self) -> str:
        if self.kind == "emerging":
            return f"{self.observed} items since {self.window_start:%Y-%m-%d}"
        return f"{self.observed} items against {self.expected:.1f} expected"

    @property
    def window(self) -> str:
        return f"{self.window_start:%Y-%m-%d} to {self.window_end:%Y-%m-%d}"

    def segment_lines(self, limit: int = 3) -> list[str]:
        return [
            f"{s.field} = {s.value}: {s.share:.0%} of the items, {s.lift:.1f}x its usual share"
            for s in self.segments[:limit]
        ]


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(msg: IncidentMessage) -> dict[str, Any]:
    segments = msg.segment_lines() or ["no segment stands out"]
    return {
        "text": _slack_escape(f"{msg.title}: {msg.figures}"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": msg.title[:150]}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*Observed*\n{msg.observed}"},
                    {"type": "mrkdwn", "text": f"*Expected*\n{msg.expected:.1f}"},
                    {"type": "mrkdwn", "text": f"*Window*\n{msg.window}"},
                    {"type": "mrkdwn", "text": f"*Incident*\n#{msg.incident_id}"},
                ],
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*Top segments*\n" + "\n".join("• " + _slack_escape(line) for line in segments),
                },
            },
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open the theme"}, "url": msg.theme_url}
                ],
            },
        ],
    }


def teams_card(msg: IncidentMessage) -> dict[str, Any]:
    """The message a Teams workflow ("When a Teams webhook request is received") posts as a card."""
    facts = [
        {"title": "Observed", "value": str(msg.observed)},
        {"title": "Expected", "value": f"{msg.expected:.1f}"},
        {"title": "Window", "value": msg.window},
        {"title": "Incident", "value": f"#{msg.incident_id}"},
    ]
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": msg.title, "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "FactSet", "facts": facts},
        {"type": "TextBlock", "text": "Top segments", "weight": "Bolder", "wrap": True},
    ]
    body += [{"type": "TextBlock", "text": line, "wrap": True} for line in msg.segment_lines()] or [
        {"type": "TextBlock", "text": "no segment stands out", "wrap": True}
    ]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open the theme", "url": msg.theme_url}],
    }
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def webhook_event(msg: IncidentMessage) -> dict[str, Any]:
    return {
        "type": "incident.test" if msg.is_test else "incident.opened",
        "timestamp": msg.window_end.isoformat(),
        "data": {
            "incident_id": msg.incident_id,
            "kind": msg.kind,
            "level": msg.level,
            "theme_id": msg.theme_id,
            "theme_label": msg.theme_label,
            "observed": msg.observed,
            "expected": msg.expected,
            "window_start": msg.window_start.isoformat(),
            "window_end": msg.window_end.isoformat(),
            "segments": [{"field": s.field, "value": s.value, "share": s.share, "lift": s.lift} for s in msg.segments],
            "example_item_ids": msg.example_item_ids,
            "theme_url": msg.theme_url,
        },
    }


def email_message(msg: IncidentMessage, *, sender: str, to: list[str]) -> EmailMessage:
    email = EmailMessage()
    email["Subject"] = msg.title
    email["From"] = sender
    email["To"] = ", ".join(to)
    lines = [msg.title, "", msg.figures, f"Window: {msg.window}", "", "Top segments:"]
    lines += [f"  - {line}" for line in msg.segment_lines()] or ["  no segment stands out"]
    lines += ["", f"Theme: {msg.theme_url}", f"Incident #{msg.incident_id}"]
    email.set_content("\n".join(lines))
    return email
