"""CSV answers, the one module for them: the reports' CSV and the streamed item export.

Every text cell that a spreadsheet would read as a formula, or as one after trimming (a cell
starting with = + - @, a tab or a carriage return), gets a leading apostrophe (OWASP "CSV
injection"). Numbers are written as numbers: a negative change stays -0.6, never '-0.6.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import asyncpg
from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from db.queries.item_reads import ItemFilter, mask_contacts_of
from db.queries.reports import select_item_export_rows
from schemas.reports import ITEM_EXPORT_COLUMNS

EXPORT_CHUNK = 5_000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON, or CSV with Accept: text/csv"}
}


def wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "").lower()


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return _text(";".join(str(v) for v in value))
    if isinstance(value, str):
        return _text(value)
    return value


def csv_text(columns: list[str], rows: Iterable[Mapping[str, Any]], *, header: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def respond(request: Request, report: BaseModel, rows: list[Any], columns: list[str], name: str) -> Response:
    """The report as JSON, or as CSV (header row = field names) when the request accepts text/csv."""
    if wants_csv(request):
        body = csv_text(columns, (r.model_dump(mode="json", exclude_unset=True) for r in rows), header=True)
        headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    return JSONResponse(report.model_dump(mode="json", exclude_unset=True, by_alias=True))


def items_csv_response(conn: asyncpg.Connection, filters: ItemFilter, *, pii: bool) -> StreamingResponse:
    """Every matching item as CSV, read in keyset pages so no export holds a long transaction."""

    async def chunks() -> AsyncIterator[str]:
        yield csv_text(ITEM_EXPORT_COLUMNS, [], header=True)
        after_id = 0
        while True:
            page = await select_item_export_rows(conn, filters=filters, after_id=after_id, limit=EXPORT_CHUNK)
            if page:
                rows = (r.model_dump(mode="json") for r in page)
                yield csv_text(ITEM_EXPORT_COLUMNS, rows if pii else map(mask_contacts_of, rows))
            if len(page) < EXPORT_CHUNK:
                return
            after_id = page[-1].item_id

    headers = {"Content-Disposition": 'attachment; filename="items.csv"'}
    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8", headers=headers)
