"""Vendor satisfaction ratings mapped onto CSAT 1..5 (docs/webhooks.md "Satisfaction ratings").

Two-step scales: good -> 5, bad -> 1. Three-step scales: 1, 3, 5. Five-point scales as they are.
Anything else (an offered but unanswered survey, an unknown word) is no rating: None.
"""

from __future__ import annotations

from typing import Any

from connectors.fields import integer, lower

# Freshdesk survey answers (`ratings.default_question` of a satisfaction rating): a seven-point
# scale from -103 (extremely unhappy) to 103 (extremely happy), of which a three-point survey uses
# -103, 100 and 103.
_FRESHDESK = {-103: 1, -102: 1, -101: 2, 100: 3, 101: 4, 102: 5, 103: 5}
# Help Scout rating words (Rating object: Great, Okay, Bad).
_HELPSCOUT = {"great": 5, "okay": 3, "bad": 1, "not good": 1}


def good_bad(score: Any) -> int | None:
    """Zendesk `satisfaction_rating.score`: good / bad (and good_with_comment, ...); offered and
    unoffered are no rating."""
    word = lower(score) or ""
    if word.startswith("good"):
        return 5
    if word.startswith("bad"):
        return 1
    return None


def one_to_five(value: Any) -> int | None:
    """Intercom `conversation_rating.rating`, Chatwoot `csat_survey_response.rating`."""
    return integer(value, lo=1, hi=5)


def helpscout(rating: Any) -> int | None:
    return _HELPSCOUT.get(lower(rating) or "")


def freshdesk(value: Any) -> int | None:
    found = integer(value, lo=-103, hi=103)
    return _FRESHDESK.get(found) if found is not None else None
