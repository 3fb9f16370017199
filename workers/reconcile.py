"""The reconciler job: re-read the recent hours of imported accounts, upserting what webhooks missed.

Tokens come from the environment of the worker (the same variables as `python -m api.cli import`);
an account whose token is not set is skipped with a recorded error. Counts (runs, items the
webhooks had missed, the last error) are kept on import_state and shown in the operations view.
"""

from __future__ import annotations

import logging
import os

from db.pool import connect
from db.queries.imports import select_import_states, update_reconciled
from imports.client import ImportFailed
from imports.run import reconcile_account
from schemas.settings import get_settings

log = logging.getLogger(__name__)


async def reconcile_imports(import_ids: list[int]) -> dict[str, int]:
    """RQ job: reconcile these accounts; returns {account: items the webhooks missed}."""
    settings = get_settings()
    conn = await connect(settings)
    missed: dict[str, int] = {}
    try:
        for state in await select_import_states(conn, reconcile_only=True):
            if state.import_id not in import_ids:
                continue
            try:
                missed[state.account] = await reconcile_account(
                    conn, state, hours=settings.reconcile_hours, env=os.environ
                )
            except ImportFailed as exc:  # no token in this worker's environment
                await update_reconciled(conn, import_id=state.import_id, missed=0, error=f"reconcile: {exc}")
        log.info("reconciled: %s", missed)
        return missed
    finally:
        await conn.close()
