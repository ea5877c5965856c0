"""Budget leases on real databases (SQLite, and PostgreSQL when SWITCHBOARD_TEST_POSTGRES_URL is set):
a lease is a reservation of several units, freed unit by unit by settlements and by returns."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_billing.budgets import Budgets, Limits
from switchboard_billing.ledger import Ledger
from switchboard_billing.windows import ManualClock
from tests.unit.billing.test_reservations import START, dsn, engines, ledger_on, usage_row  # noqa: F401

LIMITS = Limits(max_budget_micros=10_000)


async def held(budgets: Budgets) -> int:
    probe = await budgets.reserve(request_id="probe", key_id="k1", team_id="", key_limits=LIMITS,
                                  team_limits=Limits(), amount_micros=0)
    return probe.budgets[0].held_micros


async def test_a_lease_takes_at_most_half_of_what_is_free(engines: list[AsyncEngine]) -> None:  # noqa: F811
    budgets = Budgets(engines[0], ManualClock(START))
    first = await budgets.lease(lease_id="l1", key_id="k1", team_id="", key_limits=LIMITS, team_limits=Limits(),
                                unit_micros=1_000, units=100)
    assert first.units == 5 and first.budgets[0].held_micros == 5_000
    second = await budgets.lease(lease_id="l2", key_id="k1", team_id="", key_limits=LIMITS, team_limits=Limits(),
                                 unit_micros=1_000, units=100)
    assert second.units == 2
    again = await budgets.lease(lease_id="l1", key_id="k1", team_id="", key_limits=LIMITS, team_limits=Limits(),
                                unit_micros=1_000, units=100)
    assert again.units == 5, "idempotent by lease id"
    # 3 000 free: half of it holds one unit; then 2 000 free holds one more; then nothing.
    grants = [await budgets.lease(lease_id=f"x{i}", key_id="k1", team_id="", key_limits=LIMITS,
                                  team_limits=Limits(), unit_micros=1_000, units=100) for i in range(3)]
    assert [g.units for g in grants] == [1, 1, 0]
    free = await budgets.lease(lease_id="free", key_id="k1", team_id="", key_limits=LIMITS, team_limits=Limits(),
                               unit_micros=0, units=10)
    assert free.units == 0, "a shape that costs nothing is not leased (Reserve decides)"


async def test_settlements_and_returns_free_a_lease_unit_by_unit(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    budgets, ledger = Budgets(engines[0], ManualClock(START)), ledger_on(engines[1])
    lease = await budgets.lease(lease_id="l1", key_id="k1", team_id="", key_limits=LIMITS, team_limits=Limits(),
                                unit_micros=1_000, units=4)
    assert lease.units == 4 and await held(budgets) == 4_000
    units = {"r1": ("l1", 1_000), "r2": ("l1", 1_000)}
    new = await ledger.record_new([usage_row("r1", 300, START), usage_row("r2", 200, START)], units)
    assert len(new) == 2 and await held(budgets) == 2_000
    await ledger.record_new([usage_row("r1", 300, START)], {"r1": ("l1", 1_000)})
    assert await held(budgets) == 2_000, "a replayed settlement frees nothing twice"
    await budgets.return_lease("l1", 1_000)  # one unit unused; one request still in flight
    assert await held(budgets) == 1_000
    await ledger.record_new([usage_row("r3", 900, START)], {"r3": ("l1", 1_000)})
    assert await held(budgets) == 0
    probe = await budgets.reserve(request_id="after", key_id="k1", team_id="", key_limits=LIMITS,
                                  team_limits=Limits(), amount_micros=8_600)
    assert probe.held and probe.budgets[0].spent_micros == 1_400


async def test_leases_and_reservations_on_two_replicas_never_overrun(engines: list[AsyncEngine]) -> None:  # noqa: F811
    """Leases and single reservations racing through two engines against room for exactly 10 units."""
    replicas = [Budgets(engine, ManualClock(START)) for engine in engines]

    async def one(i: int) -> int:
        if i % 3:
            lease = await replicas[i % 2].lease(lease_id=f"l{i}", key_id="k1", team_id="", key_limits=LIMITS,
                                                team_limits=Limits(), unit_micros=1_000, units=3)
            return lease.units
        outcome = await replicas[i % 2].reserve(request_id=f"r{i}", key_id="k1", team_id="", key_limits=LIMITS,
                                                team_limits=Limits(), amount_micros=1_000)
        return int(outcome.held)

    granted = await asyncio.gather(*(one(i) for i in range(40)))
    assert 0 < sum(granted) <= 10
    assert await held(replicas[0]) == sum(granted) * 1_000 <= LIMITS.max_budget_micros
