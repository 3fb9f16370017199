"""The fault suite, short version for CI (reliability.md W4, Q1, Q3, D3, L2).

One run (module fixture, about two minutes): real Postgres and Valkey, the API and two workers as
separate processes, ~2,000 items and signed webhook deliveries, and one fault of each kind:
`kill -9` of a busy worker, `kill -9` of the API, Valkey stopped and restarted, Postgres stopped
(immediate) and restarted, the API's Postgres backends terminated. The long version with the
figures table is `python bench/faults.py`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import FAULT_KINDS, Result, Scenario, run_scenario

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

# ~22 units/s: below what two workers sustain on two shared cores (~27 items/s while the relay
# enqueues 1-3 items per job), so the drain measures recovery from the faults, not a backlog of
# over-capacity load. Over capacity, see docs/reliability.md "Known weaknesses" and bench/faults.py.
SCENARIO = Scenario(deliveries=2_000, faults=len(FAULT_KINDS), workers=2, load_s=90.0, drain_timeout_s=120.0)


@pytest.fixture(scope="module")
def run() -> Iterator[Result]:
    # Not pytest's tmp_path: a concurrent pytest run elsewhere may prune old basetemps mid-run.
    base = Path(tempfile.mkdtemp(prefix="faults-ci-"))
    try:
        # In a thread of its own: the scenario owns an event loop; the test session has another.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            result = pool.submit(asyncio.run, run_scenario(SCENARIO, base)).result(timeout=400)
        print("\n" + result.table())
        yield result
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_every_fault_kind_was_injected_under_load(run: Result) -> None:
    assert sorted(f.kind for f in run.faults) == sorted(FAULT_KINDS)
    assert run.sent == SCENARIO.deliveries
    # Retries (as senders do) get nearly everything acknowledged; otherwise acked ⊆ stored says little.
    assert len(run.acked) >= 0.98 * run.sent, run.table()


def test_no_acknowledged_delivery_is_lost(run: Result) -> None:
    assert run.missing == [], run.table()
    assert run.stored_items >= len(run.acked)


def test_every_stored_delivery_is_processed_within_two_minutes_of_the_last_fault(run: Result) -> None:
    assert run.unprocessed_items == 0 and run.unprocessed_deliveries == 0, run.table()
    assert run.failed_deliveries == 0, run.failed_delivery_errors
    assert run.drained_after_last_fault_s is not None and run.drained_after_last_fault_s <= 120


def test_duplicates_are_acknowledged_and_stored_once(run: Result) -> None:
    assert run.duplicates_sent > 0  # else this test proves nothing
    assert run.duplicate_rows == 0


def test_the_api_answers_2xx_within_10s_of_postgres_returning(run: Result) -> None:
    for fault in run.faults:
        if fault.kind in ("pg_restart", "pg_terminate"):
            assert fault.recovery_s is not None and fault.recovery_s <= 10.0, fault
    api = [f for f in run.faults if f.kind == "api_kill"]
    assert all(f.recovery_s is not None and f.recovery_s <= 15.0 for f in api), api


def test_refusals_while_a_store_is_down_are_fast(run: Result) -> None:
    # W4: with Postgres (or Valkey) down, answers are 503 within 5 s, never a hang.
    assert max(run.outage_latencies, default=0.0) < 5.0
    assert run.statuses.get("ReadTimeout", 0) == 0
    valkey = [f for f in run.faults if f.kind == "valkey_restart"]
    assert all(f.acks_during > 0 for f in valkey), valkey  # Q3: acks continue without Redis
