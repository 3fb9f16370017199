"""`python -m workers.reembed`: after a model change (EMBEDDER), embed every item again.

Items without a vector for the configured model are marked pending; running workers pick them up
through the relay. `--all` re-processes every item (intent and nearest theme included).
"""

from __future__ import annotations

import argparse
import asyncio

from db.pool import connect
from db.queries.work import update_items_pending
from schemas.settings import get_settings


async def reembed(only_missing: bool) -> tuple[str, int]:
    from clustering.embed import model_version_of

    settings = get_settings()
    model_version = model_version_of(settings.embedder)
    conn = await connect(settings, role="cli")
    try:
        async with conn.transaction():
            marked = await update_items_pending(conn, model_version=model_version, only_missing=only_missing)
            await conn.execute("SELECT pg_notify('work_ready', '')")
    finally:
        await conn.close()
    return model_version, marked


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m workers.reembed", description=__doc__)
    parser.add_argument("--all", action="store_true", help="re-process every item, not only those missing a vector")
    args = parser.parse_args()
    model_version, marked = asyncio.run(reembed(only_missing=not args.all))
    print(f"{marked} items queued for {model_version}; running workers will embed them")


if __name__ == "__main__":
    main()
