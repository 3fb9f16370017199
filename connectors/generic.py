"""`generic`: our own format for any sender, signed the Standard Webhooks way.

Headers `webhook-id`, `webhook-timestamp` (Unix seconds, ±300 s) and `webhook-signature`
(`v1,<base64 HMAC-SHA256>` entries, space-separated, over `{id}.{timestamp}.{body}`, keyed with
the base64 part of the `whsec_...` secret). Body:

    {"type": "item.upserted", "timestamp": "...", "data": {<the item, as POST /v1/items>}}
    {"type": "item.deleted",  "timestamp": "...", "data": {"external_id": "..."}}

`data` may also be a list of up to 1,000 items. The item's `source` is always "generic" (a
sender cannot write into another connector's items); its other fields must validate as
`ItemCreate`, else the delivery is malformed. Other types are ignored. Dedupe: `webhook-id`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from connectors.errors import MalformedPayload
from connectors.fields import arr, ident, text
from connectors.payload import key
from connectors.results import Parsed
from schemas.items import ItemCreate

SOURCE = "generic"
_MAX_BATCH = 1000


def dedupe_key(headers: Mapping[str, str], payload: Any) -> str | None:
    return key("event", ident(headers.get("webhook-id")))


def parse(headers: Mapping[str, str], payload: Any, dedupe: str) -> Parsed:
    if not isinstance(payload, dict) or "type" not in payload or "data" not in payload:
        raise MalformedPayload("generic body needs `type` and `data`")
    event = text(payload.get("type")) or ""
    data = payload["data"]
    entries = data if isinstance(data, list) else [data]
    if len(entries) > _MAX_BATCH:
        raise MalformedPayload(f"generic body holds more than {_MAX_BATCH} items")
    if event == "item.deleted":
        ids = [ident(entry.get("external_id")) if isinstance(entry, dict) else None for entry in entries]
        if any(i is None for i in ids):
            raise MalformedPayload("item.deleted entries need an external_id")
        return Parsed(dedupe, event, deletes=[(SOURCE, i) for i in ids if i is not None])
    if event != "item.upserted":
        return Parsed(dedupe, event, ignored=True)
    return Parsed(dedupe, event, items=[_item(entry) for entry in arr(entries)])


def _item(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise MalformedPayload("generic item is not a JSON object")
    try:
        item = ItemCreate.model_validate({**entry, "source": SOURCE})
    except ValidationError as error:
        raise MalformedPayload(f"generic item is invalid: {error.error_count()} error(s)") from None
    return item.model_dump(mode="json")
