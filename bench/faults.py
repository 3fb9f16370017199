"""The long fault run: deliveries through injected faults, with the figures table.

    python bench/faults.py --deliveries 50000 --faults 20
    python bench/faults.py --deliveries 10000 --faults 10 --load-s 300

Starts embedded Postgres + Valkey, the API and workers as separate processes on loopback (see
tests/faults/harness.py), drives a ledger-checked load of items and signed webhook deliveries
while killing and restarting processes and stores, then checks by SQL: acked ⊆ stored,
stored = processed within --drain-timeout-s of the last fault, no duplicate rows.
Exit status 1 if an invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults.harness import Scenario, run_scenario  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/faults.py", description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=50_000, help="units of load (items + webhooks)")
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--load-s", type=float, default=None, help="spread the load over this long (default: 1 unit per 12 ms)"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--webhook-share", type=float, default=0.2)
    parser.add_argument("--drain-timeout-s", type=float, default=300.0)
    parser.add_argument("--outage-s", type=float, default=5.0)
    parser.add_argument("--sweep-after-s", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the data dir and logs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    scenario = Scenario(
        deliveries=args.deliveries,
        faults=args.faults,
        workers=args.workers,
        load_s=args.load_s or args.deliveries * 0.012,
        concurrency=args.concurrency,
        webhook_share=args.webhook_share,
        drain_timeout_s=args.drain_timeout_s,
        outage_s=args.outage_s,
        sweep_after_s=args.sweep_after_s,
        seed=args.seed,
    )
    base = Path(tempfile.mkdtemp(prefix="faults-"))
    try:
        result = asyncio.run(run_scenario(scenario, base))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"scenario: {json.dumps(asdict(scenario))}")
    print(result.table())
    if args.keep:
        print(f"data, logs and ledger kept in {base}")
    if args.json:
        args.json.write_text(json.dumps(dict(result.figures()), indent=2))
    ok = not result.missing and result.unprocessed_items == 0 and result.unprocessed_deliveries == 0
    ok = ok and result.duplicate_rows == 0 and result.failed_deliveries == 0
    print("invariants:", "HOLD" if ok else "BROKEN")
    if result.failed_delivery_errors:
        print("failed delivery errors:", *result.failed_delivery_errors, sep="\n  ")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
