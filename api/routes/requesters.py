from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from api.deps import AdminKey, DbConn
from db.queries.items import delete_requester_items

router = APIRouter(prefix="/v1/requesters", tags=["requesters"])


class Erasure(BaseModel):
    requester_id: str
    source: str | None
    items_deleted: int


@router.delete("/{requester_id}")
async def delete_requester(
    requester_id: Annotated[str, Path(min_length=1, max_length=512)],
    conn: DbConn,
    _: AdminKey,
    source: str | None = None,
) -> Erasure:
    """Erase a requester's data: all their items with text, status events and embeddings."""
    async with conn.transaction():
        deleted = await delete_requester_items(conn, requester_id=requester_id, source=source)
    return Erasure(requester_id=requester_id, source=source, items_deleted=deleted)
