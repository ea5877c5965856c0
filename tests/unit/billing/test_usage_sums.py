"""Usage sums for charts: per hour or day, split by model, key or team, with errors and latency percentiles read
from the database's histogram (within about 6% of the exact value)."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from switchboard.v1 import billing_pb2, common_pb2
from switchboard_billing.ledger import Ledger
from switchboard_billing.servicer import ledger_values
from switchboard_billing.usage_sums import EDGES, quantile
from switchboard_common.database import make_engine
from tests.unit.billing.test_reservations import PG_URL, drop_postgres, fresh_postgres_dsn

HOUR = 3_600_000
AT_MS = int(datetime(2026, 11, 22, 8, 0, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(params=["sqlite", "postgres"])
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Ledger]:
    """A migrated ledger on SQLite, and on PostgreSQL when SWITCHBOARD_TEST_POSTGRES_URL is set (a fresh database)."""
    if request.param == "postgres" and not PG_URL:
        pytest.skip("needs PostgreSQL: set SWITCHBOARD_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1/test)")
    dsn, name = (await fresh_postgres_dsn()) if request.param == "postgres" else (
        f"sqlite:///{tmp_path / 'ledger.db'}", "")
    led = Ledger(make_engine(dsn))
    try:
        await led.migrate()
        yield led
    finally:
        await led.close()
        if name:
            await drop_postgres(name)


def event(n: int, *, model: str, key_id: str, team_id: str = "", status: str = "success", latency: float = 100.0,
          ttft: float = 0.0, at: int = AT_MS, cost: int | None = 10) -> dict[str, object]:
    e = billing_pb2.UsageEvent(
        request_id=f"req_{n}", key_id=key_id, team_id=team_id, model=model, status=status, started_at_ms=at,
        latency_ms=latency, ttft_ms=ttft, stream=ttft > 0,
        usage=common_pb2.Usage(prompt_tokens=10, completion_tokens=5))
    return ledger_values(e, cost)


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def test_quantile_interpolates_inside_its_bucket() -> None:
    assert quantile({}, 0.5) == 0.0
    one = next(i for i, edge in enumerate(EDGES) if edge > 100)  # the bucket of a 100 ms request
    assert EDGES[one - 1] <= quantile({one: 1}, 0.5) <= EDGES[one]
    assert quantile({0: 1, len(EDGES): 1}, 0.99) == EDGES[-1], "past the last edge: the last edge"
    assert all(b / a == pytest.approx(1.12, abs=0.001) for a, b in zip(EDGES[10:], EDGES[11:], strict=False))


async def test_percentiles_are_within_six_percent_of_the_exact_ones(ledger: Ledger) -> None:
    rng = random.Random(7)
    latencies = [rng.lognormvariate(6, 0.8) for _ in range(400)]
    ttfts = [rng.lognormvariate(5, 0.5) for _ in range(400)]
    await ledger.record_many([event(i, model="m", key_id="k", latency=latencies[i], ttft=ttfts[i])
                              for i in range(400)])
    total, = await ledger.summarize()
    for got, values, q in ((total.latency_p50_ms, latencies, 0.5), (total.latency_p95_ms, latencies, 0.95),
                           (total.ttft_p50_ms, ttfts, 0.5), (total.ttft_p95_ms, ttfts, 0.95)):
        assert got == pytest.approx(exact(values, q), rel=0.06)


async def test_sums_per_hour_split_by_model_with_errors(ledger: Ledger) -> None:
    rows = [
        event(1, model="a", key_id="k1", team_id="t1", latency=100),
        event(2, model="a", key_id="k1", team_id="t1", status="error", latency=5, cost=0),
        event(3, model="b", key_id="k2", team_id="t2", latency=300, ttft=80),
        event(4, model="a", key_id="k2", at=AT_MS + HOUR + 60_000, latency=200),
        event(5, model="b", key_id="k2", at=AT_MS + HOUR, status="cancelled", latency=50, cost=None),
    ]
    await ledger.record_many(rows)
    hourly = await ledger.summarize(group_by="hour", split_by="model")
    assert [(g.group, g.split, g.requests, g.errors, g.successful_requests) for g in hourly] == [
        ("2026-11-22T08:00:00Z", "a", 2, 1, 1),
        ("2026-11-22T08:00:00Z", "b", 1, 0, 1),
        ("2026-11-22T09:00:00Z", "a", 1, 0, 1),
        ("2026-11-22T09:00:00Z", "b", 1, 0, 0),
    ]
    first = hourly[0]
    assert first.latency_p50_ms == pytest.approx(100, rel=0.06), "errors are not in the latency percentiles"
    assert first.ttft_p50_ms == 0.0, "no stream: no time to first token"
    assert hourly[1].ttft_p50_ms == pytest.approx(80, rel=0.06)
    assert hourly[3].unpriced_requests == 1 and hourly[3].latency_p50_ms == 0.0, "a cancelled request has none"
    by_team = await ledger.summarize(group_by="team", split_by="key")
    assert [(g.group, g.split, g.requests) for g in by_team] == [("", "k2", 2), ("t1", "k1", 2), ("t2", "k2", 1)]
    daily = await ledger.summarize(group_by="day", key_id="k2")
    assert [(g.group, g.requests, g.cost_micros) for g in daily] == [("2026-11-22", 3, 20)]
