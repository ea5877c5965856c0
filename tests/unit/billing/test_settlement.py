"""Batched settlement on real databases (SQLite, and PostgreSQL when SWITCHBOARD_TEST_POSTGRES_URL is set):
idempotent by request id inside and across batches, lease units freed once per new row in the same
transaction, spend per key, team and day exact, and a failing batch writes nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard.v1 import billing_pb2, common_pb2
from switchboard_billing import settlement
from switchboard_billing.budgets import Budgets, LeaseAsk, Limits, Reservation
from switchboard_billing.costing import Pricer
from switchboard_billing.holds import CAP_WAIT_SECONDS
from switchboard_billing.ledger import Ledger
from switchboard_billing.priced_models import CatalogSource, parse_models
from switchboard_billing.servicer import BillingServicer
from switchboard_billing.settlement import COLUMNS
from switchboard_common.errors import ServiceError
from switchboard_rules.windows import ManualClock
from tests.unit.billing.test_reservations import START, dsn, engines, ledger_on, usage_row  # noqa: F401

START_MS = int(START.timestamp() * 1000)
DAY_MS = 86_400_000
BIG = Limits(max_budget_micros=10**12)
# $1 per million input and output tokens: a request of p + c tokens costs p + c micro-dollars.
CATALOG = {"models": [{"name": "m", "deployments": [
    {"provider": "openai", "model": "gpt-4o-mini", "input_cost_per_million": 1, "output_cost_per_million": 1}]}]}


async def lease_amount(engine: AsyncEngine, lease_id: str) -> int | None:
    """What the lease still holds; None once it is over (deleted)."""
    async with engine.connect() as conn:
        return (await conn.execute(sa.text("SELECT amount_micros FROM reservations WHERE reservation_id = :i"),
                                   {"i": lease_id})).scalar_one_or_none()


async def ledger_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return sorted((await conn.execute(sa.text("SELECT request_id FROM usage_ledger"))).scalars())


async def take_lease(budgets: Budgets, lease_id: str, units: int, key_id: str = "k1", team_id: str = "") -> None:
    """A lease of ``units`` holds of 1,000 micro-dollars, granted with the reservation of a request that asked."""
    held = await budgets.reserve(request_id=f"asked-{lease_id}", key_id=key_id, team_id=team_id, key_limits=BIG,
                                 team_limits=BIG if team_id else Limits(), amount_micros=1_000,
                                 lease_ask=LeaseAsk(lease_id, units * 1_000, 60.0, units * 1_000))
    assert held.lease is not None and held.lease.micros == units * 1_000


async def test_duplicates_inside_and_across_batches_are_recorded_once(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    ledger = ledger_on(engines[0])
    first = [usage_row("a", 10, START), usage_row("b", 20, START), usage_row("a", 99, START)]
    new = await ledger.record_new(first)
    assert [(r["request_id"], r["cost_micros"]) for r in new] == [("a", 10), ("b", 20)], "first of a duplicate wins"
    second = [usage_row("b", 20, START), usage_row("c", 30, START), usage_row("c", 30, START),
              usage_row("a", 10, START)]
    assert [r["request_id"] for r in await ledger.record_new(second)] == ["c"]
    assert await ledger.record_new(first + second) == [], "a redelivered batch records nothing"
    assert await ledger_ids(engines[0]) == ["a", "b", "c"]
    total, = await ledger.summarize()
    assert total.requests == 3 and total.cost_micros == 60


async def test_lease_debits_are_summed_per_lease_and_freed_once(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    budgets, ledger = Budgets(engines[0], ManualClock(START)), ledger_on(engines[1])
    await take_lease(budgets, "lease_a", 5)
    await take_lease(budgets, "lease_b", 3)
    await budgets.reserve(request_id="held", key_id="k1", team_id="", key_limits=BIG, team_limits=Limits(),
                          amount_micros=7_000)
    rows = [usage_row(f"a{i}", 1, START) for i in range(3)] + [usage_row(f"b{i}", 1, START) for i in range(3)]
    units = {f"a{i}": ("lease_a", 1_000) for i in range(3)} | {f"b{i}": ("lease_b", 1_000) for i in range(3)}
    rows += [usage_row("a0", 1, START), usage_row("held", 5, START)]  # a duplicate; a request with its own hold
    assert len(await ledger.record_new(rows, units)) == 7
    assert await lease_amount(engines[0], "lease_a") == 2_000, "3 of 5 units freed, the duplicate not twice"
    assert await lease_amount(engines[0], "lease_b") is None, "every unit settled: the lease is over"
    assert await lease_amount(engines[0], "held") is None, "the request's own hold is replaced by its cost"
    # Redelivered together with one new request: only the new request's unit is freed.
    again = await ledger.record_new([*rows, usage_row("a3", 1, START)], {**units, "a3": ("lease_a", 1_000)})
    assert [r["request_id"] for r in again] == ["a3"]
    assert await lease_amount(engines[0], "lease_a") == 1_000
    # A unit larger than what is left empties the lease, never below 0.
    await ledger.record_new([usage_row("a4", 1, START)], {"a4": ("lease_a", 5_000)})
    assert await lease_amount(engines[0], "lease_a") is None


async def test_spend_per_key_team_and_day_is_exact(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    clock = ManualClock(START)
    budgets, ledger = Budgets(engines[0], clock), ledger_on(engines[1])
    day2 = START + timedelta(days=1)
    rows = [usage_row("k1-d1-a", 100, START, "k1", "t1"), usage_row("k1-d1-b", 200, START, "k1", "t1"),
            usage_row("k2-d1", 400, START, "k2", "t1"), usage_row("k1-d2", 800, day2, "k1", "t1"),
            usage_row("k3-d2", 1_600, day2, "k3", "t2"), usage_row("k1-d1-a", 100, START, "k1", "t1")]
    await ledger.record_new(rows[:3])
    await ledger.record_new(rows[2:])
    by_day = await ledger.summarize(group_by="day")
    assert [(g.group, g.requests, g.cost_micros) for g in by_day] == [("2026-03-10", 3, 700),
                                                                      ("2026-03-11", 2, 2_400)]
    assert [(g.group, g.cost_micros) for g in await ledger.summarize(group_by="key")] == [
        ("k1", 1_100), ("k2", 400), ("k3", 1_600)]
    assert [(g.group, g.cost_micros) for g in await ledger.summarize(group_by="team")] == [
        ("t1", 1_500), ("t2", 1_600)]
    # Budgets read the same sums: k1's daily spend on day 1, then on day 2; team t1's in total.
    daily = Limits(max_daily_spend_micros=10_000)
    probe = await budgets.reserve(request_id="p1", key_id="k1", team_id="t1", key_limits=daily,
                                  team_limits=Limits(max_budget_micros=10_000), amount_micros=0)
    assert [(b.scope, b.spent_micros) for b in probe.budgets] == [("key", 300), ("team", 1_500)]
    clock.set(day2)
    probe = await budgets.reserve(request_id="p2", key_id="k1", team_id="", key_limits=daily,
                                  team_limits=Limits(), amount_micros=0)
    assert probe.budgets[0].spent_micros == 800


async def test_a_batch_of_a_hundred_and_one_rows_records_each_row_and_its_spend(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    """A batch of 101 rows, three of them already recorded: the 98 others (statements of 64, 16, 16, 1 and 1 rows on
    SQLite) are recorded once each, and the spend sums (kept by the ledger's triggers) count each once."""
    ledger = ledger_on(engines[0])
    await ledger.record_new([usage_row(f"r{i:03d}", i, START, f"k{i % 3}") for i in (5, 50, 100)])
    rows = [usage_row(f"r{i:03d}", i, START, f"k{i % 3}", "t1" if i % 2 else "") for i in range(101)]
    new = await ledger.record_new(rows)
    assert [r["request_id"] for r in new] == [f"r{i:03d}" for i in range(101) if i not in (5, 50, 100)]
    assert await ledger_ids(engines[0]) == [f"r{i:03d}" for i in range(101)]
    by_key = {g.group: (g.requests, g.cost_micros) for g in await ledger.summarize(group_by="key")}
    assert by_key == {f"k{k}": (len(range(k, 101, 3)), sum(range(k, 101, 3))) for k in range(3)}
    budgets = Budgets(engines[1], ManualClock(START))
    probe = await budgets.reserve(request_id="probe", key_id="k1", team_id="t1", key_limits=BIG, team_limits=BIG,
                                  amount_micros=0)
    assert [(b.scope, b.spent_micros) for b in probe.budgets] == [
        ("key", sum(range(1, 101, 3))), ("team", sum(i for i in range(101) if i % 2 and i not in (5,)))]


def test_rows_go_in_within_the_connections_limit_on_parameters(tmp_path: Path) -> None:
    """A SQLite build that allows few parameters per statement gets smaller statements, never a refusal."""
    conn = sqlite3.connect(tmp_path / "rows.db", isolation_level=None)
    conn.execute(f"CREATE TABLE usage_ledger ({', '.join(COLUMNS)})")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, len(COLUMNS) * 5)  # five rows a statement at most
    rows = [{column: f"{column}-{i}" for column in COLUMNS} for i in range(23)]
    settlement._insert_rows(conn, rows)
    assert conn.execute("SELECT request_id FROM usage_ledger ORDER BY rowid").fetchall() == [
        (f"request_id-{i}",) for i in range(23)]
    conn.close()


async def test_a_failing_batch_writes_nothing(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    budgets, ledger = Budgets(engines[0], ManualClock(START)), ledger_on(engines[1])
    await take_lease(budgets, "lease_a", 4)
    good = usage_row("good", 1, START).model_dump()
    bad = {**usage_row("bad", 1, START).model_dump(), "key_id": None}  # NOT NULL: the insert fails
    with pytest.raises((sqlite3.IntegrityError, asyncpg.NotNullViolationError)):
        await ledger.record_new([good, bad], {"good": ("lease_a", 1_000), "bad": ("lease_a", 1_000)})
    assert await ledger_ids(engines[0]) == []
    assert await lease_amount(engines[0], "lease_a") == 4_000, "lease units are freed only with their rows"
    # The writer recovers: the same batch without the bad row goes through.
    assert len(await ledger.record_new([good], {"good": ("lease_a", 1_000)})) == 1
    assert await lease_amount(engines[0], "lease_a") == 3_000


async def test_two_replicas_settling_overlapping_batches_record_and_free_each_once(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    """Every request delivered twice, to two replicas at about the same time, against a lease of exactly
    as many units: each is recorded once and frees its unit once, so the lease ends at 0 (and is deleted)
    however the debits interleave — the last ones race on a nearly empty lease."""
    budgets = Budgets(engines[0], ManualClock(START))
    replicas = [ledger_on(engines[0]), ledger_on(engines[1])]
    for round_ in range(6):
        lease_id = f"lease_{round_}"
        await take_lease(budgets, lease_id, 200)

        async def deliver(i: int, lease_id: str = lease_id, round_: int = round_) -> int:
            # Batches of 20 consecutive requests, each starting 10 after the previous one.
            ids = [f"{round_}-r{j:03d}" for j in range(i * 10, i * 10 + 20)]
            new = await replicas[i % 2].record_new([usage_row(r, 1, START) for r in ids],
                                                   {r: (lease_id, 1_000) for r in ids})
            return len(new)

        recorded = await asyncio.gather(*(deliver(i) for i in range(19)))
        assert sum(recorded) == 200
        assert await lease_amount(engines[0], lease_id) is None, "exactly 200 units freed, then the lease is over"
    assert len(await ledger_ids(engines[0])) == 1_200


@pytest.fixture
async def servicer(engines: list[AsyncEngine]) -> AsyncIterator[BillingServicer]:  # noqa: F811
    ledger = Ledger(engines[1])
    yield BillingServicer(ledger, Budgets(engines[0], ManualClock(START)),
                          Pricer(CatalogSource.of(parse_models(CATALOG))))
    await ledger.close()


def event(request_id: str, prompt: int, completion: int, lease_id: str = "") -> billing_pb2.UsageEvent:
    return billing_pb2.UsageEvent(
        request_id=request_id, key_id="k1", model="m", deployment_id="m/0", started_at_ms=START_MS,
        status="success", lease_id=lease_id, lease_unit_micros=1_000 if lease_id else 0,
        usage=common_pb2.Usage(prompt_tokens=prompt, completion_tokens=completion))


async def test_settle_batch_prices_and_records_each_request_once(servicer: BillingServicer,
                                                                 engines: list[AsyncEngine]) -> None:  # noqa: F811
    await take_lease(servicer.budgets, "lease_a", 10)
    batch = [event("x", 10, 5, "lease_a"), event("y", 10, 5, "lease_a"), event("z", 7, 3), event("x", 10, 5)]
    answer = await servicer.SettleBatch(billing_pb2.SettleBatchRequest(events=batch), None)  # type: ignore[arg-type]
    assert answer.recorded == 3
    again = await servicer.SettleBatch(billing_pb2.SettleBatchRequest(events=[*batch, event("w", 1, 1, "lease_a")]),
                                       None)  # type: ignore[arg-type]
    assert again.recorded == 1
    assert await lease_amount(engines[0], "lease_a") == 7_000
    rows = {r.request_id: r.cost_micros for r in await servicer.ledger.list()}
    assert rows == {"x": 15, "y": 15, "z": 10, "w": 2}, "each cost from its own usage, remembered shapes included"


def reserve_request(request_id: str, budget_micros: int) -> billing_pb2.ReserveRequest:
    """60 µ$ worst case on model ``m`` (1 µ$ a token): a 10-token prompt and 50 output tokens."""
    return billing_pb2.ReserveRequest(request_id=request_id, key_id="k1", model="m", prompt_tokens_bound=10,
                                      max_output_tokens=50,
                                      key_limits=billing_pb2.BudgetLimits(max_budget_micros=budget_micros,
                                                                          min_output_tokens=50))


async def test_a_denial_caused_by_a_hold_whose_usage_is_on_its_way_waits_for_it(servicer: BillingServicer) -> None:
    """A lone caller's next request can reach billing before the previous one's usage (outboxes linger): the
    reservation waits for that settlement instead of refusing."""
    assert (await servicer.holder.reserve(reserve_request("r1", 100))).reservation.held
    loop = asyncio.get_running_loop()
    started = loop.time()
    second = loop.create_task(servicer.holder.reserve(reserve_request("r2", 100)))
    await asyncio.sleep(0.05)
    assert not second.done(), "40 µ$ free and 60 held by r1: it waits"
    await servicer.SettleBatch(billing_pb2.SettleBatchRequest(events=[event("r1", 10, 5)]), None)  # type: ignore[arg-type]
    held = await asyncio.wait_for(second, 1)
    assert held.reservation.held and loop.time() - started < 0.5


async def test_a_denial_money_in_flight_would_not_cure_is_immediate_and_a_wait_ends(
        servicer: BillingServicer) -> None:
    servicer.holder.wait_seconds = 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ServiceError) as too_big:  # 60 µ$ can never fit in 50: nothing to wait for
        await servicer.holder.reserve(reserve_request("big", 50))
    assert too_big.value.error.code == "budget_exceeded" and loop.time() - started < 0.1
    assert (await servicer.holder.reserve(reserve_request("r1", 100))).reservation.held
    started = loop.time()
    with pytest.raises(ServiceError) as refused:  # r1 never settles: refused once the wait is over
        await servicer.holder.reserve(reserve_request("r2", 100))
    assert 0.3 <= loop.time() - started < 1.0
    assert "held by requests in flight" in refused.value.error.message


def cappable_request(request_id: str, budget_micros: int) -> billing_pb2.ReserveRequest:
    """:func:`reserve_request` with a floor of 10 output tokens: what cannot be held whole may be held capped."""
    request = reserve_request(request_id, budget_micros)
    request.key_limits.min_output_tokens = 10
    return request


async def test_a_cap_caused_by_a_hold_whose_usage_is_on_its_way_waits_for_it(servicer: BillingServicer) -> None:
    """An agent's next turn comes the moment its tool has run, often before the last turn's usage reached billing:
    it is held whole once that settles, not cut short by the last turn's hold."""
    assert (await servicer.holder.reserve(cappable_request("r1", 100))).reservation.held
    second = asyncio.get_running_loop().create_task(servicer.holder.reserve(cappable_request("r2", 100)))
    await asyncio.sleep(0.05)
    assert not second.done(), "40 µ$ free and 60 held by r1: it waits rather than be capped"
    await servicer.SettleBatch(billing_pb2.SettleBatchRequest(events=[event("r1", 10, 5)]), None)  # type: ignore[arg-type]
    held = await asyncio.wait_for(second, 1)
    assert held.reservation.held and not held.reservation.capped and held.quote.output_tokens == 50


async def test_a_cap_money_in_flight_would_not_cure_is_immediate_and_a_cap_waits_briefly(
        servicer: BillingServicer, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float | None] = []
    wait_for_money = servicer.holder._wait_for_money

    async def counted(*args: Any) -> Reservation:
        waits.append(args[3] if len(args) > 3 else None)
        return await wait_for_money(*args)
    monkeypatch.setattr(servicer.holder, "_wait_for_money", counted)
    alone = await servicer.holder.reserve(cappable_request("small", 50))  # 60 µ$ can never fit in 50
    assert alone.reservation.capped and alone.quote.output_tokens == 40 and waits == [], "nothing to wait for"
    assert (await servicer.holder.reserve(cappable_request("r1", 150))).reservation.held
    started = asyncio.get_running_loop().time()
    beside = await servicer.holder.reserve(cappable_request("r2", 150))  # r1 is still running: served capped
    assert beside.reservation.capped and beside.quote.output_tokens == 30
    assert waits == [CAP_WAIT_SECONDS] and asyncio.get_running_loop().time() - started >= CAP_WAIT_SECONDS
