"""Apply db/migrations/*.sql in order, each in its own transaction: `python -m db.migrate`."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import asyncpg

from schemas.settings import get_settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Serialises concurrent migrators (two containers starting at once).
_LOCK_KEY = 7_301_001


def migration_files() -> list[tuple[str, Path]]:
    files = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise RuntimeError(f"Migration file {path.name} is not named NNNN_slug.sql")
        files.append((match.group(1), path))
    return files


async def applied_versions(conn: asyncpg.Connection) -> set[str]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    rows = await conn.fetch("SELECT version FROM schema_migrations")
    return {r["version"] for r in rows}


async def pending_migrations(conn: asyncpg.Connection) -> list[str]:
    done = await applied_versions(conn)
    return [version for version, _ in migration_files() if version not in done]


async def migrate(dsn: str) -> list[str]:
    """Apply every migration not yet recorded; returns the versions applied now."""
    conn = await asyncpg.connect(dsn, server_settings={"lock_timeout": "10s"})
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = await applied_versions(conn)
        for version, path in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            log.info("applied migration %s", path.name)
            applied.append(version)
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()
    return applied


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    applied = asyncio.run(migrate(get_settings().database_url))
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")


if __name__ == "__main__":
    main()
