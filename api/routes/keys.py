from __future__ import annotations

from fastapi import APIRouter

from api.auth import KEY_PREFIX, hash_key, new_key
from api.deps import AdminKey, DbConn, RowId
from api.errors import NotFound
from db.queries.keys import insert_api_key, select_api_keys, update_api_key_revoked
from schemas.keys import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyList

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", status_code=201)
async def create_key(body: ApiKeyCreate, conn: DbConn, _: AdminKey) -> ApiKeyCreated:
    """Create an API key; the key itself is in this response only."""
    key = new_key()
    row = await insert_api_key(
        conn,
        name=body.name,
        prefix=key[: len(KEY_PREFIX) + 6],
        key_hash=hash_key(key),
        scopes=sorted(set(body.scopes)),
    )
    return ApiKeyCreated(**row.model_dump(), key=key)


@router.get("")
async def list_keys(conn: DbConn, _: AdminKey) -> ApiKeyList:
    return ApiKeyList(data=await select_api_keys(conn))


@router.delete("/{api_key_id}")
async def delete_key(api_key_id: RowId, conn: DbConn, _: AdminKey) -> ApiKey:
    """Revoke a key; it is refused from the next request on."""
    row = await update_api_key_revoked(conn, api_key_id=api_key_id)
    if row is None:
        raise NotFound(f"API key {api_key_id} does not exist.")
    return row
