"""Cost of settling usage in billing: µs of CPU per event of a ``SettleBatch``, in process, on SQLite.

Prints numbers; asserts nothing. Run from the repository root:

    python benchmarks/settle_bench.py [--batches 200] [--batch-size 30] [--ledger-rows 300000]
                                      [--request-ids random]

Each batch is shaped like the router's at concurrency 1 (30 events of one key, about 50 ms of traffic): priced
usage, a lease unit, and — with ``--watched`` (the default) — the key's budget as a watched budget, so that alert
detection runs as it does for a key with a budget. No gRPC: the servicer's method is called directly, so the
number is billing's own work (pricing, the ledger rows, their holds and spend buckets, alert detection).

Ids are shaped as in production: request ids as the facade makes them (they sort by time), response ids random
as a provider's. A row's cost depends on the ledger's size (each index the row enters may need a page that is no
longer cached): ``--ledger-rows`` settles that many rows first, unmeasured, and ``--request-ids random`` makes
request ids the way the facade did before they began with the millisecond, to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for package_root in ("protos/gen", "libs/common", "libs/rules", "services/billing", "services/facade"):
    sys.path.insert(0, str(ROOT / package_root))

from switchboard.v1 import billing_pb2, common_pb2  # noqa: E402
from switchboard_billing.budgets import Budgets  # noqa: E402
from switchboard_billing.costing import Pricer  # noqa: E402
from switchboard_billing.ledger import Ledger  # noqa: E402
from switchboard_billing.priced_models import CatalogSource, parse_models  # noqa: E402
from switchboard_billing.servicer import BillingServicer  # noqa: E402
from switchboard_common.database import default_sqlite_dsn, make_engine  # noqa: E402
from switchboard_facade.request_id import new_request_id  # noqa: E402

CATALOG = {"models": [{"name": "gpt-4o-mini", "deployments": [{
    "provider": "openai", "model": "gpt-4o-mini", "input_cost_per_million": 0.15, "output_cost_per_million": 0.6,
    "max_output_tokens": 4096}]}]}


def _random_request_id() -> str:
    return "req_" + os.urandom(12).hex()


def batch(size: int, watched: bool, random_request_ids: bool = False) -> billing_pb2.SettleBatchRequest:
    events = []
    for _ in range(size):
        event = billing_pb2.UsageEvent(
            request_id=_random_request_id() if random_request_ids else new_request_id(), key_id="key_bench", key_alias="bench", model="gpt-4o-mini",
            deployment_id="gpt-4o-mini/0", provider="openai", upstream_model="gpt-4o-mini", status="success",
            http_status=200, latency_ms=1.2, started_at_ms=int(time.time() * 1000), source="http",
            custody_path="facade>router>openai", pii="none", pii_policy="off",
            response_id="chatcmpl-" + os.urandom(15).hex(),
            usage=common_pb2.Usage(prompt_tokens=10, completion_tokens=20, total_tokens=30,
                                   reported_by_provider=True))
        if watched:
            event.watched_budgets.add(scope="key", subject_id="key_bench", alias="bench",
                                      max_budget_micros=1_000_000_000_000)
        events.append(event)
    return billing_pb2.SettleBatchRequest(events=events)


async def run(batches: int, size: int, watched: bool, ledger_rows: int = 0, random_request_ids: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(default_sqlite_dsn(Path(tmp), "billing.db"))
        ledger = Ledger(engine)
        await ledger.migrate()
        servicer = BillingServicer(ledger, Budgets(engine), Pricer(CatalogSource.of(parse_models(CATALOG))))
        # Warm-up (caches of prices and statements), and the ledger grown to its size.
        for _ in range(max(20, -(-ledger_rows // size))):
            await servicer.SettleBatch(batch(size, watched, random_request_ids), None)  # type: ignore[arg-type]  # no gRPC context needed
        requests = [batch(size, watched, random_request_ids) for _ in range(batches)]
        wall, cpu = time.perf_counter(), time.process_time()
        for request in requests:
            await servicer.SettleBatch(request, None)  # type: ignore[arg-type]  # idem
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        events = batches * size
        print(f"SettleBatch of {size} events{' with a watched budget' if watched else ''}, "
              f"{'random' if random_request_ids else 'time-ordered'} request ids, {ledger_rows} rows before: "
              f"{cpu / events * 1e6:.1f} µs CPU per event ({wall / events * 1e6:.1f} µs wall)")
        await ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=30)
    parser.add_argument("--no-watched", action="store_true", help="events carry no watched budget")
    parser.add_argument("--ledger-rows", type=int, default=0, help="rows settled before the measured batches")
    parser.add_argument("--request-ids", choices=("time", "random"), default="time",
                        help="request ids as the facade makes them (time) or all random, as it did before")
    args = parser.parse_args()
    asyncio.run(run(args.batches, args.batch_size, not args.no_watched, args.ledger_rows, args.request_ids == "random"))


if __name__ == "__main__":
    main()
