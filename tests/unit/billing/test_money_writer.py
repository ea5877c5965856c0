"""Billing's one SQLite writer: holds, renewals and settlements on one connection, and nothing kept of a transaction
whose caller stopped waiting (a gRPC deadline passed while another process held the database's lock)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from switchboard_billing.budgets import Budgets, Limits
from switchboard_billing.ledger import Ledger
from switchboard_billing.model_store import ModelStore
from switchboard_billing.money_writer import SqliteMoneyWriter, writer_for
from switchboard_common.database import make_engine
from tests.unit.billing.test_reservations import START, usage_row

LIMITS = Limits(max_budget_micros=10_000)


@pytest.fixture
async def ledger(tmp_path: Path):
    made = Ledger(make_engine(f"sqlite:///{tmp_path / 'billing.db'}"))
    await made.migrate()
    yield made
    await made.close()


async def _reserve(budgets: Budgets, request_id: str, amount: int):
    return await budgets.reserve(request_id=request_id, key_id="k1", team_id="", key_limits=LIMITS,
                                 team_limits=Limits(), amount_micros=amount)


async def test_budgets_and_settlements_share_one_writer(ledger: Ledger) -> None:
    budgets = Budgets(ledger.engine)
    assert isinstance(writer_for(ledger.engine), SqliteMoneyWriter)
    assert budgets._writer is writer_for(ledger.engine)
    held = await _reserve(budgets, "r1", 4_000)
    assert held.held
    await ledger.record(usage_row("r1", 1_500, START))  # settles r1: its hold becomes its cost
    after = await _reserve(budgets, "r2", 0)
    assert (after.budgets[0].spent_micros, after.budgets[0].held_micros) == (1_500, 0)


async def test_a_hold_whose_caller_gave_up_while_the_database_was_locked_is_not_kept(ledger: Ledger) -> None:
    budgets = Budgets(ledger.engine)
    await _reserve(budgets, "warm", 0)  # the writer's connection is open
    other = sqlite3.connect(ledger.engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        waiting = asyncio.ensure_future(_reserve(budgets, "gave-up", 3_000))  # blocked in BEGIN IMMEDIATE
        queued = asyncio.ensure_future(_reserve(budgets, "queued", 3_000))  # behind it on the writer
        await asyncio.sleep(0.3)
        waiting.cancel()
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises(asyncio.CancelledError):
            await queued
    finally:
        other.execute("COMMIT")
        other.close()
    probe = await _reserve(budgets, "probe", 0)
    assert probe.budgets[0].held_micros == 0
    # A caller that waits gets its hold as usual.
    assert (await _reserve(budgets, "kept", 3_000)).held


async def test_reads_take_no_write_lock_and_the_pooled_writers_take_it_first(ledger: Ledger) -> None:
    """The stored-models poll (twice a second), budget standings, spend logs and usage sums only read: they answer
    while another writer holds the database's write lock, instead of queueing for it in SQLite's busy handler and
    making the money writer's holds and settlements queue behind them. A pooled transaction that may write
    (``engine.begin()``: alert claims, stored models) still holds the write lock from its start."""
    await ledger.record(usage_row("r1", 1_500, START))
    store = ModelStore(ledger.engine, None)
    budgets = Budgets(ledger.engine)
    other = sqlite3.connect(ledger.engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a settlement in progress
    try:
        async with asyncio.timeout(10):  # the busy timeout is 30 s: a reader that queued for the lock fails here
            assert await store.refresh()
            standing, = await budgets.standings([("key", "k1", LIMITS)])
            assert standing.budgets[0].spent_micros == 1_500
            assert [row.request_id for row in await ledger.list(key_id="k1")] == ["r1"]
            assert (await ledger.summarize(key_id="k1"))[0].requests == 1
    finally:
        other.execute("ROLLBACK")
    async with ledger.engine.begin() as conn:
        await conn.execute(sa.text("SELECT 1"))
        other.execute("PRAGMA busy_timeout=0")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.close()
