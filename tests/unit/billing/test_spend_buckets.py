"""Spend in a window from hourly buckets is exactly the ledger's sum, on SQLite and PostgreSQL, whatever changes the
ledger: new rows, a provisional row replaced by the router's (another cost, another hour), rows deleted, rows of
unpriced models; and the migration fills the buckets of rows recorded before it."""

from __future__ import annotations

import random
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_billing import spend_buckets
from switchboard_billing.ledger import Ledger
from switchboard_billing.models import UsageRow
from switchboard_billing.spend_buckets import HOUR_MS, Span, spent_params, spent_sql, split
from tests.unit.billing.test_reservations import START, dsn, engines, ledger_on  # noqa: F401

START_MS = int(START.timestamp() * 1000)
SUBJECTS = [("key", "k1"), ("key", "k2"), ("team", "t1"), ("user", "u1"), ("key_model", "k1/m1"),
            ("key_model", "k2/m2"), ("team", "nobody")]


def test_a_window_splits_into_whole_hours_and_its_two_edges() -> None:
    h = HOUR_MS
    assert split(10 * h + 5, 13 * h + 7) == Span(11 * h, 13 * h, (10 * h + 5, 11 * h), (13 * h, 13 * h + 7))
    assert split(10 * h, 12 * h) == Span(10 * h, 12 * h, (10 * h, 10 * h), (12 * h, 12 * h))
    # Inside one hour, or across one boundary only: no whole hour, all of it read from the ledger.
    assert split(10 * h + 5, 10 * h + 9) == Span(0, 0, (10 * h + 5, 10 * h + 9), (0, 0))
    assert split(10 * h + 5, 11 * h + 9) == Span(0, 0, (10 * h + 5, 11 * h + 9), (0, 0))


def _row(request_id: str, cost: int | None, at_ms: int, key_id: str, team_id: str, user_id: str, model: str,
         provisional: bool = False) -> UsageRow:
    return UsageRow(request_id=request_id, key_id=key_id, team_id=team_id, user_id=user_id, model=model,
                    cost_micros=cost, started_at_ms=at_ms, provisional=provisional)


def _random_rows(rng: random.Random, count: int, prefix: str) -> list[UsageRow]:
    rows = []
    for i in range(count):
        key_id = rng.choice(["k1", "k2"])
        rows.append(_row(f"{prefix}{i}", rng.choice([None, 0, rng.randrange(1, 50_000)]),
                         START_MS + rng.randrange(-30 * HOUR_MS, 30 * HOUR_MS), key_id,
                         rng.choice(["", "t1"]), rng.choice(["", "u1"]), "m1" if key_id == "k1" else "m2"))
    return rows


async def _from_buckets(engine: AsyncEngine, scope: str, subject_id: str, start_ms: int, end_ms: int) -> int:
    async with engine.connect() as conn:
        found = (await conn.execute(sa.text(f"SELECT {spent_sql(scope)}"),
                                    spent_params(scope, subject_id, start_ms, end_ms))).scalar_one()
    return int(found)


async def _from_ledger(engine: AsyncEngine, scope: str, subject_id: str, start_ms: int, end_ms: int) -> int:
    ledger = UsageRow.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ at class creation
    if scope == "key_model":
        key_id, _, model = subject_id.partition("/")
        owned = sa.and_(ledger.c.key_id == key_id, ledger.c.model == model)
    else:
        owned = ledger.c[f"{scope}_id"] == subject_id
    async with engine.connect() as conn:
        found = (await conn.execute(sa.select(sa.func.coalesce(sa.func.sum(ledger.c.cost_micros), 0)).where(
            owned, ledger.c.started_at_ms >= start_ms, ledger.c.started_at_ms < end_ms))).scalar_one()
    return int(found)


async def _assert_exact(engine: AsyncEngine, rng: random.Random, windows: int = 60) -> None:
    spans = [(0, 2**62), (START_MS - 24 * HOUR_MS, START_MS + 24 * HOUR_MS), (START_MS, START_MS + HOUR_MS)]
    for _ in range(windows):
        start = START_MS + rng.randrange(-32 * HOUR_MS, 32 * HOUR_MS)
        spans.append((start, start + rng.choice([1, 59_000, HOUR_MS, rng.randrange(1, 40 * HOUR_MS)])))
    for scope, subject_id in SUBJECTS:
        for start_ms, end_ms in spans:
            assert await _from_buckets(engine, scope, subject_id, start_ms, end_ms) == \
                await _from_ledger(engine, scope, subject_id, start_ms, end_ms), (scope, subject_id, start_ms, end_ms)


async def test_window_spend_from_buckets_is_the_ledgers_sum_whatever_changes_it(
        engines: list[AsyncEngine], ledger_on) -> None:  # noqa: F811
    rng = random.Random(7)
    ledger: Ledger = ledger_on(engines[0])
    # Settled in batches, some request ids twice (a redelivery records nothing and moves no money).
    rows = _random_rows(rng, 400, "r")
    for i in range(0, len(rows), 37):
        await ledger.record_many(rows[i:i + 37] + rows[max(0, i - 5):i])
    # The facade's provisional records, then the router's records of the same calls: another cost, another hour.
    provisional = [_row(f"p{i}", 9_000, START_MS + i * 1_000, "k1", "t1", "u1", "m1", provisional=True)
                   for i in range(20)]
    await ledger.record_many(provisional)
    await _assert_exact(engines[0], rng)
    replaced = [_row(f"p{i}", 1_234 + i, START_MS + i * 1_000 + 2 * HOUR_MS, "k1", "t1", "u1", "m1")
                for i in range(0, 20, 2)]
    await ledger.record_many(replaced)
    # An operator prunes old rows.
    async with engines[0].begin() as conn:
        await conn.execute(sa.text("DELETE FROM usage_ledger WHERE started_at_ms < :t"),
                           {"t": START_MS - 20 * HOUR_MS})
    await _assert_exact(engines[1], rng)


async def test_the_migration_fills_the_buckets_of_rows_recorded_before_it(
        engines: list[AsyncEngine], ledger_on) -> None:  # noqa: F811
    rng = random.Random(11)
    ledger: Ledger = ledger_on(engines[0])
    await ledger.record_many(_random_rows(rng, 200, "old"))
    async with engines[0].begin() as conn:
        kept = sorted((await conn.execute(sa.text("SELECT subject, hour_ms, micros FROM spend_buckets"))).all())
        await conn.execute(sa.text("DELETE FROM spend_buckets"))
        await conn.execute(sa.text(spend_buckets.BACKFILL))
        refilled = sorted((await conn.execute(sa.text("SELECT subject, hour_ms, micros FROM spend_buckets"))).all())
    assert kept and refilled == kept
    await _assert_exact(engines[0], rng, windows=10)


async def test_a_budget_over_many_hours_of_spend_is_enforced_from_the_buckets(
        engines: list[AsyncEngine], ledger_on) -> None:  # noqa: F811
    from switchboard_billing.budgets import Budgets, Limits
    from switchboard_rules.windows import ManualClock

    ledger: Ledger = ledger_on(engines[0])
    # 30 days of spend, an hour apart, and a row in the current hour.
    await ledger.record_many([_row(f"h{i}", 1_000, START_MS - i * HOUR_MS - 1, "k1", "", "", "m1")
                              for i in range(30 * 24)])
    await ledger.record_many([_row("now", 500, START_MS + 10, "k1", "", "", "m1")])
    budgets = Budgets(engines[1], ManualClock(START + timedelta(minutes=5)))
    limits = Limits(max_budget_micros=30 * 24 * 1_000 + 1_000)
    held = await budgets.reserve(request_id="a", key_id="k1", team_id="", key_limits=limits, team_limits=Limits(),
                                 amount_micros=500)
    assert held.held and held.budgets[0].spent_micros == 30 * 24 * 1_000 + 500
    denied = await budgets.reserve(request_id="b", key_id="k1", team_id="", key_limits=limits, team_limits=Limits(),
                                   amount_micros=1)
    assert not denied.held and denied.denied_by is not None
