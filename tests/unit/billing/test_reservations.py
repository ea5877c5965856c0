"""Budget reservations on real databases: SQLite, and PostgreSQL when SWITCHBOARD_TEST_POSTGRES_URL is set.

Each PostgreSQL test gets a database of its own (CREATE DATABASE sb_<random>), dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_billing.budgets import Budgets, Limits
from switchboard_billing.ledger import Ledger
from switchboard_billing.models import UsageRow
from switchboard_billing.money_writer import close_writer
from switchboard_common.database import make_engine
from switchboard_rules.windows import ManualClock, parse_timezone

PG_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "")
START = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


async def fresh_postgres_dsn() -> tuple[str, str]:
    """A new empty database on the test server: (its DSN, its name)."""
    name = "sb_" + secrets.token_hex(6)
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return PG_URL.rsplit("/", 1)[0] + "/" + name, name


async def drop_postgres(name: str) -> None:
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'billing.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests need SWITCHBOARD_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1/test)")
    url, name = await fresh_postgres_dsn()
    yield url
    await drop_postgres(name)


@pytest.fixture
async def engines(dsn: str) -> AsyncIterator[list[AsyncEngine]]:
    """Two engines on one database: two billing replicas."""
    made = [make_engine(dsn), make_engine(dsn)]
    await Ledger(made[0]).migrate()
    yield made
    for engine in made:
        await close_writer(engine)
        await engine.dispose()


@pytest.fixture
async def ledger_on() -> AsyncIterator[Callable[[AsyncEngine], Ledger]]:
    """Makes ledgers on the test's engines and closes them at the end (a ledger keeps a settlement connection)."""
    made: list[Ledger] = []

    def make(engine: AsyncEngine) -> Ledger:
        made.append(Ledger(engine))
        return made[-1]

    yield make
    for ledger in made:
        await ledger.close()


def usage_row(request_id: str, cost: int | None, started: datetime, key_id: str = "k1",
              team_id: str = "") -> UsageRow:
    return UsageRow(request_id=request_id, key_id=key_id, team_id=team_id, model="m", prompt_tokens=10,
                    completion_tokens=5, cost_micros=cost, started_at_ms=int(started.timestamp() * 1000))


async def test_holds_up_to_the_budget_then_denies_naming_it(engines: list[AsyncEngine]) -> None:
    budgets = Budgets(engines[0], ManualClock(START))
    limits = Limits(max_budget_micros=1_000)
    first = await budgets.reserve(request_id="r1", key_id="k1", team_id="", key_limits=limits,
                                  team_limits=Limits(), amount_micros=600)
    assert first.held and first.denied_by is None
    assert first.budgets[0].held_micros == 600 and first.budgets[0].remaining_micros == 400
    second = await budgets.reserve(request_id="r2", key_id="k1", team_id="", key_limits=limits,
                                   team_limits=Limits(), amount_micros=600)
    assert not second.held and second.denied_by is not None
    assert second.denied_by.scope == "key" and second.denied_by.kind == "budget"
    assert second.denied_by.remaining_micros == 400 and second.denied_by.resets_at is None


async def test_reserve_is_idempotent_by_request_id(engines: list[AsyncEngine]) -> None:
    budgets = Budgets(engines[0], ManualClock(START))
    limits = Limits(max_budget_micros=1_000)
    for _ in range(3):
        outcome = await budgets.reserve(request_id="same", key_id="k1", team_id="", key_limits=limits,
                                        team_limits=Limits(), amount_micros=700)
        assert outcome.held and outcome.budgets[0].held_micros == 700


async def test_settlement_replaces_the_hold_with_the_real_cost(engines: list[AsyncEngine],
                                                               ledger_on: Callable[[AsyncEngine], Ledger]) -> None:
    clock = ManualClock(START)
    budgets, ledger = Budgets(engines[0], clock), ledger_on(engines[1])
    limits = Limits(max_budget_micros=1_000)
    await budgets.reserve(request_id="r1", key_id="k1", team_id="", key_limits=limits, team_limits=Limits(),
                          amount_micros=900)
    assert await ledger.record_many([usage_row("r1", 120, START)]) == 1
    assert await ledger.record_many([usage_row("r1", 120, START)]) == 0  # a replay changes nothing
    after = await budgets.reserve(request_id="r2", key_id="k1", team_id="", key_limits=limits,
                                  team_limits=Limits(), amount_micros=880)
    assert after.held
    assert after.budgets[0].spent_micros == 120 and after.budgets[0].held_micros == 880
    # A settled request cannot be reserved again (a late retry must not hold twice).
    late = await budgets.reserve(request_id="r1", key_id="k1", team_id="", key_limits=limits,
                                 team_limits=Limits(), amount_micros=900)
    assert not late.held and late.denied_by is None


async def test_unsettled_reservations_expire(engines: list[AsyncEngine]) -> None:
    clock = ManualClock(START)
    budgets = Budgets(engines[0], clock, default_ttl_seconds=60)
    limits = Limits(max_budget_micros=1_000)
    await budgets.reserve(request_id="r1", key_id="k1", team_id="", key_limits=limits, team_limits=Limits(),
                          amount_micros=1_000)
    denied = await budgets.reserve(request_id="r2", key_id="k1", team_id="", key_limits=limits,
                                   team_limits=Limits(), amount_micros=1)
    assert denied.denied_by is not None
    clock.advance(seconds=61)
    allowed = await budgets.reserve(request_id="r3", key_id="k1", team_id="", key_limits=limits,
                                    team_limits=Limits(), amount_micros=1)
    assert allowed.held and allowed.budgets[0].held_micros == 1
    assert await budgets.purge_expired() == 1
    assert await budgets.release("r3") and not await budgets.release("r3")


async def test_budget_window_resets_on_its_schedule(engines: list[AsyncEngine],
                                                    ledger_on: Callable[[AsyncEngine], Ledger]) -> None:
    clock = ManualClock(START)
    budgets, ledger = Budgets(engines[0], clock), ledger_on(engines[0])
    limits = Limits(max_budget_micros=1_000, budget_duration="1d")
    first = await budgets.reserve(request_id="r1", key_id="k1", team_id="", key_limits=limits,
                                  team_limits=Limits(), amount_micros=1_000)
    assert first.budgets[0].resets_at == datetime(2026, 3, 11, tzinfo=UTC)
    await ledger.record_many([usage_row("r1", 1_000, clock.now())])
    denied = await budgets.reserve(request_id="r2", key_id="k1", team_id="", key_limits=limits,
                                   team_limits=Limits(), amount_micros=1)
    assert denied.denied_by is not None and denied.denied_by.spent_micros == 1_000
    clock.set(datetime(2026, 3, 10, 23, 59, 59, tzinfo=UTC))
    assert (await budgets.reserve(request_id="r3", key_id="k1", team_id="", key_limits=limits,
                                  team_limits=Limits(), amount_micros=1)).denied_by is not None
    clock.set(datetime(2026, 3, 11, 0, 0, 0, tzinfo=UTC))
    reset = await budgets.reserve(request_id="r4", key_id="k1", team_id="", key_limits=limits,
                                  team_limits=Limits(), amount_micros=1)
    assert reset.held and reset.budgets[0].spent_micros == 0


async def test_daily_cap_follows_the_configured_timezone(engines: list[AsyncEngine],
                                                         ledger_on: Callable[[AsyncEngine], Ledger]) -> None:
    # 03:00 UTC on March 10 is still March 9 in Toronto; the Toronto day ends at 04:00 UTC (EDT from March 8).
    clock = ManualClock(datetime(2026, 3, 10, 3, 0, tzinfo=UTC))
    budgets = Budgets(engines[0], clock, tz=parse_timezone("America/Toronto"))
    ledger = ledger_on(engines[0])
    limits = Limits(max_daily_spend_micros=500)
    await ledger.record_many([usage_row("old", 500, clock.now())])
    denied = await budgets.reserve(request_id="r1", key_id="k1", team_id="", key_limits=limits,
                                   team_limits=Limits(), amount_micros=1)
    assert denied.denied_by is not None and denied.denied_by.kind == "daily"
    assert denied.denied_by.resets_at == datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
    clock.advance(hours=1)
    assert (await budgets.reserve(request_id="r2", key_id="k1", team_id="", key_limits=limits,
                                  team_limits=Limits(), amount_micros=1)).held


async def test_team_budget_counts_every_key_of_the_team(engines: list[AsyncEngine]) -> None:
    budgets = Budgets(engines[0], ManualClock(START))
    team = Limits(max_budget_micros=1_000, budget_duration="30d")
    ok = await budgets.reserve(request_id="a", key_id="k1", team_id="t1", key_limits=Limits(), team_limits=team,
                               amount_micros=700)
    assert ok.held and [b.scope for b in ok.budgets] == ["team"]
    denied = await budgets.reserve(request_id="b", key_id="k2", team_id="t1", key_limits=Limits(),
                                   team_limits=team, amount_micros=400)
    assert denied.denied_by is not None and denied.denied_by.scope == "team"
    other_team = await budgets.reserve(request_id="c", key_id="k3", team_id="t2", key_limits=Limits(),
                                       team_limits=team, amount_micros=400)
    assert other_team.held


async def test_no_budget_touches_nothing(engines: list[AsyncEngine]) -> None:
    budgets = Budgets(engines[0], ManualClock(START))
    outcome = await budgets.reserve(request_id="r", key_id="k1", team_id="t", key_limits=Limits(),
                                    team_limits=Limits(), amount_micros=10**12)
    assert not outcome.held and outcome.denied_by is None and outcome.budgets == ()


async def test_concurrent_reservations_on_two_replicas_never_overrun(engines: list[AsyncEngine]) -> None:
    """60 reservations at once through two engines (two billing replicas) against room for exactly 10."""
    replicas = [Budgets(engine, ManualClock(START)) for engine in engines]
    limits = Limits(max_budget_micros=10_000, max_daily_spend_micros=50_000)

    async def one(i: int) -> bool:
        outcome = await replicas[i % 2].reserve(request_id=f"r{i}", key_id="k1", team_id="t1", key_limits=limits,
                                                team_limits=Limits(max_budget_micros=20_000),
                                                amount_micros=1_000)
        return outcome.held

    held = await asyncio.gather(*(one(i) for i in range(60)))
    assert sum(held) == 10
    final = await replicas[0].reserve(request_id="check", key_id="k1", team_id="t1", key_limits=limits,
                                      team_limits=Limits(max_budget_micros=20_000), amount_micros=1)
    assert final.denied_by is not None and final.budgets[0].held_micros == 10_000


def test_windows_use_the_clock_not_the_wall(tmp_path: Path) -> None:
    clock = ManualClock(START)
    clock.advance(timedelta(days=400))
    assert clock.now().year == 2027
