"""L2 in CI: bench/soak.py's own code for three minutes instead of two hours (#17).

A worker is killed with -9 every minute, Valkey and Postgres restart once each, under a steady
load of signed deliveries and items; then 0 lost, 0 duplicated, everything drained, Postgres
connections bounded. (RSS growth needs the long run's warm-up to mean anything; it is sampled
here and reported, and checked by the long run.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.soak import parser, run_soak
from tests.faults.harness import Cluster


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_three_minute_soak_with_kills_and_store_restarts(tmp_path: Path) -> None:
    args = parser().parse_args(
        ["--duration-s", "180", "--kill-every-s", "60", "--units-per-s", "10", "--sample-every-s", "5",
         "--warm-up-s", "60", "--drain-timeout-s", "300"]
    )  # fmt: skip
    cluster = Cluster(tmp_path, workers=2, sweep_after_s=30)
    try:
        cluster.start_stores()
        result = asyncio.run(run_soak(args, cluster))
    finally:
        cluster.stop()
    kinds = [kind for _, kind in result["faults"]]
    assert kinds.count("valkey_restart") == 1 and kinds.count("pg_restart") == 1
    assert sum(k.startswith("kill -9") for k in kinds) >= 2
    assert result["acked"] > 1000
    goals = result["goals"]
    assert goals["zero_lost"] and goals["zero_duplicated"] and goals["drained"], result["ledger"]
    assert goals["pg_connections_bounded"], result["resources"]
