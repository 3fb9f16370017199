"""Character classes for the patterns the OpenAPI document publishes.

A client or a fuzzer reads a JSON Schema `pattern` as an ECMA-262 regex; pydantic enforces
`pattern=` with Rust's regex crate, and our validators trim with Python's `str.strip()`. The
shorthand classes mean different sets in each: `\\s` holds U+0085 in Rust and Python but not in
ECMA-262, `\\d` holds every script's digits in Rust. So a published pattern spells its classes
out, and then all three read it alike.
"""

from __future__ import annotations

# Exactly what `str.isspace()` (and so `str.strip()`) counts as white space.
SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Found in a text that holds something besides white space and NUL.
NOT_BLANK = rf"[^\x00{SPACE}]"
# A whole text that is not blank and holds no NUL (Postgres text and jsonb cannot store U+0000).
STORABLE_TEXT = rf"^[^\x00]*{NOT_BLANK}[^\x00]*$"
DIGIT = "[0-9]"
