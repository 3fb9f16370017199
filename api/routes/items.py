from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json

from api.csv_export import CSV_RESPONSE, items_csv_response, wants_csv
from api.cursors import decode_after, encode_after
from api.deps import (
    AdminKey,
    AppSettings,
    CurateKey,
    DbConn,
    IngestKey,
    IngestKeyBriefly,
    RawBody,
    ReadKey,
    RedisClient,
    RowId,
    pooled,
)
from api.errors import BadRequest, NotFound, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from api.routes.intent import correct_item_intent
from db.queries.item_reads import ItemFilter, select_item, select_items
from db.queries.items import delete_item, upsert_items
from schemas.intent import ItemIntentUpdate
from schemas.items import (
    MAX_BULK_ITEMS,
    BulkRejection,
    BulkResult,
    Intent,
    Item,
    ItemAccepted,
    ItemCreate,
    ItemPage,
    Kind,
    QueryTime,
    Status,
)
from schemas.patterns import DIGIT

router = APIRouter(prefix="/v1/items", tags=["items"])


@router.post("", status_code=202)
async def create_item(item: ItemCreate, conn: DbConn, _: IngestKey) -> ItemAccepted:
    """Upsert one item by (source, external_id); answered after the commit."""
    async with conn.transaction():
        [outcome] = await upsert_items(conn, items=[item])
    return ItemAccepted(item_id=outcome.item_id, created=outcome.created)


_BULK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/ItemCreate"}}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


def _parse_rows(body: bytes, content_type: str) -> list[Any]:
    media = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("Body is not valid UTF-8") from exc
    if media in ("application/x-ndjson", "application/jsonl", "application/ndjson"):
        rows: list[Any] = []
        for n, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except (ValueError, RecursionError):
                rows.append(_BadLine(n))
        return rows
    if media not in ("application/json", ""):
        raise UnsupportedMediaType("Send a JSON array (application/json) or NDJSON (application/x-ndjson)")
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"Body is not valid JSON: {exc}") from exc
    if not isinstance(parsed, list):
        raise Unprocessable([{"type": "list_type", "loc": ["body"], "msg": "Input should be a JSON array"}])
    return parsed


class _BadLine:
    def __init__(self, line: int) -> None:
        self.line = line


@router.post("/bulk", status_code=202, openapi_extra=_BULK_BODY)
async def create_items_bulk(request: Request, _: IngestKeyBriefly, body: RawBody) -> BulkResult:
    """Upsert many items at once; valid rows are stored even when others are rejected.

    A pooled connection is taken only to store the rows: not while a slow client sends its body,
    nor while it is validated (about 8 ms of CPU for 500 rows, far longer on a busy host), so bulk
    imports cannot leave webhook acks and reads waiting for a connection.
    """
    content_type = request.headers.get("content-type", "")
    fast = await _validate_all(body, content_type)
    if fast is not None:
        return await _store(request, fast, [])
    rows = _parse_rows(body, content_type)
    if len(rows) > MAX_BULK_ITEMS:
        raise PayloadTooLarge(f"A bulk request holds at most {MAX_BULK_ITEMS} items; got {len(rows)}")
    valid: list[ItemCreate] = []
    rejected: list[BulkRejection] = []
    for index, row in enumerate(rows):
        if isinstance(row, _BadLine):
            rejected.append(BulkRejection(index=index, error="invalid_json", detail="Line is not valid JSON"))
            continue
        try:
            valid.append(ItemCreate.model_validate(row))
        except ValidationError as exc:
            errors = [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in exc.errors()]
            rejected.append(BulkRejection(index=index, error="validation_error", detail=errors))
    return await _store(request, valid, rejected)


_ITEM_LIST = TypeAdapter(list[ItemCreate])
# Rows validated between two turns of the event loop: about 2 ms of CPU, so a webhook that arrives
# during a 10,000-row request waits for one piece, not for the whole body (about 170 ms).
VALIDATE_PIECE = 100


async def _validate_all(body: bytes, content_type: str) -> list[ItemCreate] | None:
    """The common case: parsed in pydantic's Rust core and validated a piece at a time, with the
    event loop free between pieces (same CPU as one validate_json call, measured). None when the
    batch is not a clean JSON array (the row-by-row path then reports each bad row)."""
    if content_type.split(";")[0].strip().lower() not in ("application/json", ""):
        return None
    try:
        rows = from_json(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(rows, list) or len(rows) > MAX_BULK_ITEMS:
        return None
    items: list[ItemCreate] = []
    for start in range(0, len(rows), VALIDATE_PIECE):
        if start:
            await asyncio.sleep(0)
        try:
            items.extend(_ITEM_LIST.validate_python(rows[start : start + VALIDATE_PIECE]))
        except ValidationError:
            return None
    return items


async def _store(request: Request, valid: list[ItemCreate], rejected: list[BulkRejection]) -> BulkResult:
    async with pooled(request) as conn, conn.transaction():
        outcomes = await upsert_items(conn, items=valid)
    created = sum(o.created for o in outcomes)
    updated = sum(o.changed and not o.created for o in outcomes)
    return BulkResult(accepted=len(valid), created=created, updated=updated, rejected=rejected)


@router.get("/{item_id:int}")
async def get_item(item_id: RowId, conn: DbConn, key: ReadKey) -> Item:
    """The item; e-mail addresses and phone numbers are masked unless the key has `pii`."""
    item = await select_item(conn, item_id=item_id, pii=key.allows("pii"))
    if item is None:
        raise NotFound(f"Item {item_id} does not exist.")
    return item


@router.get("", response_model=ItemPage, responses=CSV_RESPONSE)
async def list_items(
    request: Request,
    conn: DbConn,
    key: ReadKey,
    source: str | None = None,
    kind: Kind | None = None,
    theme_id: Annotated[str | None, Query(pattern=rf"^(none|{DIGIT}{{1,18}})$")] = None,
    intent: Intent | None = None,
    status: Status | None = None,
    created_from: QueryTime | None = None,
    created_to: QueryTime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ItemPage | Response:
    """Items in ingestion order; `theme_id=none` lists the unassigned ones.

    With `Accept: text/csv`: every matching item as one streamed CSV (no pagination), one row per
    item with its theme, intent, status, times and reopen count (docs/metrics.md).

    E-mail addresses and phone numbers in the text are masked unless the key has `pii`.
    """
    filters = ItemFilter(
        source=source,
        kind=kind,
        theme_id=int(theme_id) if theme_id not in (None, "none") else None,
        unassigned=theme_id == "none",
        intent=intent,
        status=status,
        created_from=created_from,
        created_to=created_to,
    )
    if wants_csv(request):
        return items_csv_response(conn, filters, pii=key.allows("pii"))
    data = await select_items(conn, filters=filters, after_id=decode_after(cursor), limit=limit, pii=key.allows("pii"))
    next_cursor = encode_after(data[-1].item_id) if len(data) == limit else None
    return ItemPage(data=data, next_cursor=next_cursor)


@router.patch("/{item_id:int}")
async def update_item(
    item_id: RowId,
    body: ItemIntentUpdate,
    conn: DbConn,
    redis: RedisClient,
    settings: AppSettings,
    principal: CurateKey,
) -> Item:
    """A person's intent (`intent_source` = `person`), kept over any model's; audited as a
    curation change that `POST /v1/curation/{change_id}/undo` reverses."""
    await correct_item_intent(
        conn, redis, settings, item_id=item_id, intent=body.intent, api_key_id=principal.api_key_id
    )
    item = await select_item(conn, item_id=item_id, pii=principal.allows("pii"))
    if item is None:  # erased between the commit and this read
        raise NotFound(f"Item {item_id} does not exist.")
    return item


@router.delete("/{item_id:int}", status_code=204, response_class=Response)
async def delete_item_route(item_id: RowId, conn: DbConn, _: AdminKey) -> Response:
    """Erase the item, its text, status events and embeddings."""
    async with conn.transaction():
        if not await delete_item(conn, item_id=item_id):
            raise NotFound(f"Item {item_id} does not exist.")
    return Response(status_code=204)
