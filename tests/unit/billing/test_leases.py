"""Budget leases on real databases (SQLite, and PostgreSQL when SWITCHBOARD_TEST_POSTGRES_URL is set): money a
holder spends locally, granted with a reservation, freed by settlements and returns, lapsing to what its holder
committed when it stops renewing it — and never refusing its own holder's request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_billing.budgets import (
    LAPSED_LEASE_GRACE_SECONDS,
    LEASE_ROOM_UNITS,
    Budgets,
    LeaseAsk,
    Limits,
    Reservation,
)
from switchboard_billing.ledger import Ledger
from switchboard_rules.windows import ManualClock
from tests.unit.billing.test_lapse_clock import running
from tests.unit.billing.test_reservations import START, dsn, engines, ledger_on, usage_row  # noqa: F401

LIMITS = Limits(max_budget_micros=10_000)


async def held(budgets: Budgets) -> int:
    probe = await budgets.reserve(request_id="probe", key_id="k1", team_id="", key_limits=LIMITS,
                                  team_limits=Limits(), amount_micros=0)
    return probe.budgets[0].held_micros


async def reserve(budgets: Budgets, request_id: str, amount: int, *, ask: int = 0, committed: int | None = None,
                  give_back: tuple[str, int] | None = None, cap: Callable[[int], int | None] | None = None,
                  lease_id: str = "") -> Reservation:
    lease_ask = LeaseAsk(lease_id or f"lease-{request_id}", ask, 5.0, ask if committed is None else committed) \
        if ask else None
    return await budgets.reserve(request_id=request_id, key_id="k1", team_id="", key_limits=LIMITS,
                                 team_limits=Limits(), amount_micros=amount, lease_ask=lease_ask,
                                 return_lease=give_back, cap=cap)


async def test_a_lease_takes_at_most_a_quarter_of_a_roomy_budget(engines: list[AsyncEngine]) -> None:  # noqa: F811
    budgets = Budgets(engines[0], ManualClock(START))
    first = await reserve(budgets, "r1", 100, ask=100_000)
    assert first.held and first.lease is not None and first.lease.micros == (10_000 - 100) // 4
    assert await held(budgets) == 100 + 2_475
    second = await reserve(budgets, "r2", 100, ask=100_000)
    assert second.lease is not None and second.lease.micros == (10_000 - 2_575 - 100) // 4
    # What is left pays for fewer than LEASE_ROOM_UNITS requests like it: held request by request, no lease.
    third = await reserve(budgets, "r3", 1_000, ask=100_000)
    assert third.held and third.lease is None
    again = await reserve(budgets, "r1", 100, ask=100_000)
    assert again.held and again.lease is None, "idempotent by request id: nothing more is held"


async def test_a_tight_budget_is_never_leased(engines: list[AsyncEngine]) -> None:  # noqa: F811
    """Four requests of about a quarter of the budget each, as Cursor's on a daily cap: no lease takes the money
    the others arriving alongside need."""
    budgets = Budgets(engines[0], ManualClock(START))
    served = [await reserve(budgets, f"r{i}", 2_400, ask=100_000) for i in range(4)]
    assert all(r.held and r.lease is None and not r.capped for r in served)
    assert LEASE_ROOM_UNITS * 2_400 > 10_000


async def test_a_holders_own_lease_never_refuses_its_request(engines: list[AsyncEngine]) -> None:  # noqa: F811
    """A lone caller: whatever its lease holds unused goes back in the reservation's transaction."""
    budgets = Budgets(engines[0], ManualClock(START))
    first = await reserve(budgets, "r1", 200, ask=100_000)
    assert first.lease is not None and first.lease.micros == 2_450  # 9,800 free: a quarter
    # 7,350 left free, and this request wants 8,000: only the lease's money makes it fit.
    refused = await reserve(budgets, "r2", 8_000)
    assert refused.denied_by is not None
    served = await reserve(budgets, "r3", 8_000, give_back=(first.lease.lease_id, first.lease.micros))
    assert served.held and served.denied_by is None
    assert await held(budgets) == 8_200


async def test_settlements_debit_the_lease_and_returns_free_it(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    budgets, ledger = Budgets(engines[0], ManualClock(START)), ledger_on(engines[1])
    opened = await reserve(budgets, "r0", 100, ask=2_000)
    assert opened.lease is not None and opened.lease.micros == 2_000
    await ledger.record_new([usage_row("r0", 100, START)])
    assert await held(budgets) == 2_000
    units = {"r1": ("lease-r0", 500), "r2": ("lease-r0", 500)}
    new = await ledger.record_new([usage_row("r1", 300, START), usage_row("r2", 200, START)], units)
    assert len(new) == 2 and await held(budgets) == 1_000
    await ledger.record_new([usage_row("r1", 300, START)], {"r1": ("lease-r0", 500)})
    assert await held(budgets) == 1_000, "a replayed settlement frees nothing twice"
    await budgets.return_lease("lease-r0", 500)  # unused; one request still in flight
    assert await held(budgets) == 500
    await ledger.record_new([usage_row("r3", 400, START)], {"r3": ("lease-r0", 500)})
    assert await held(budgets) == 0
    probe = await reserve(budgets, "after", 9_000)
    assert probe.held and probe.budgets[0].spent_micros == 1_000


async def test_a_lease_its_holder_stops_renewing_shrinks_to_what_it_committed(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    """A dead holder's money is free within seconds; the requests it sent stay covered until they settle."""
    clock = ManualClock(START)
    budgets, ledger = Budgets(engines[0], clock), ledger_on(engines[1])
    opened = await reserve(budgets, "r0", 100, ask=2_000, committed=1_000)
    assert opened.lease is not None and await held(budgets) == 2_100
    await running(budgets, clock, 4)
    statuses = (await budgets.renew([("lease-r0", 1_500, 0)], 5.0)).leases  # 1,500 in flight and allowance
    assert statuses[0].known and statuses[0].micros == 2_000
    await running(budgets, clock, 4)
    assert await held(budgets) == 2_100, "renewed: still whole"
    await running(budgets, clock, 2)
    assert await held(budgets) == 100 + 1_500, "not renewed in time: only what the holder committed"
    await ledger.record_new([usage_row("r1", 700, START)], {"r1": ("lease-r0", 1_000)})
    assert await held(budgets) == 100 + 500, "a settlement frees its hold from the committed part too"
    await running(budgets, clock, LAPSED_LEASE_GRACE_SECONDS - 3.5)  # lapsed 2.5 s ago
    assert await held(budgets) == 100 + 500, "the committed part counts for a grace after the lapse"
    await running(budgets, clock, 2.5)
    assert await held(budgets) == 100, "then the lease counts for nothing: the allowance never taken is free"
    clock.advance(timedelta(hours=1))
    assert await held(budgets) == 0, "the reservation TTL ends the plain hold"
    gone = (await budgets.renew([("lease-r0", 0, 0)], 5.0)).leases
    assert not gone[0].known


async def test_a_lapsed_lease_is_not_renewed_whole_again(engines: list[AsyncEngine]) -> None:  # noqa: F811
    """A holder back after its lease lapsed (billing unreachable, or the holder stalled): what the lease stopped
    counting was free for others to hold, so the heartbeat does not make it whole again; the holder is told the
    lease is unknown (it forgets it and asks for a new one)."""
    clock = ManualClock(START)
    budgets = Budgets(engines[0], clock)
    opened = await reserve(budgets, "r0", 100, ask=2_000, committed=500)
    assert opened.lease is not None and await held(budgets) == 2_100
    await running(budgets, clock, 6)
    assert await held(budgets) == 100 + 500
    others = await reserve(budgets, "other", 10_000 - 600)
    assert others.held, "the money the lapsed lease stopped counting is free for another request"
    statuses = (await budgets.renew([("lease-r0", 500, 0)], 5.0)).leases
    assert not statuses[0].known
    assert await held(budgets) == 100 + 500 + 9_400, "the budget is not overrun by a renewal"


async def test_a_hold_its_holder_stops_renewing_lapses_like_a_lease(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    """A holder that dies after billing held its request but before the router took the call: nobody will settle
    that request, so its hold must not stay held until the reservation TTL (half an hour and more)."""
    clock = ManualClock(START)
    budgets, ledger = Budgets(engines[0], clock), ledger_on(engines[1])
    kept = await budgets.reserve(request_id="kept", key_id="k1", team_id="", key_limits=LIMITS,
                                 team_limits=Limits(), amount_micros=3_000, renew_seconds=5.0)
    dead = await budgets.reserve(request_id="dead", key_id="k1", team_id="", key_limits=LIMITS,
                                 team_limits=Limits(), amount_micros=2_000, renew_seconds=5.0)
    assert kept.held and dead.held and await held(budgets) == 5_000
    for _ in range(4):  # the live holder renews its hold; the dead one does not
        await running(budgets, clock, 4)
        renewed = await budgets.renew([], 5.0, ["kept"])
        assert renewed.unknown_holds == []
    assert await held(budgets) == 3_000, "16 s on: the unrenewed hold counted through its grace, then nothing"
    late = await budgets.renew([], 5.0, ["dead"])
    assert late.unknown_holds == ["dead"], "a lapsed hold is not made whole again"
    await ledger.record_new([usage_row("kept", 1_200, START)], {})
    assert await held(budgets) == 0
    settled = await budgets.renew([], 5.0, ["kept"])
    assert settled.unknown_holds == ["kept"], "once settled, its holder is told to stop renewing it"


async def test_a_hold_its_holder_stops_renewing_counts_through_a_grace(engines: list[AsyncEngine]) -> None:  # noqa: F811
    clock = ManualClock(START)
    budgets = Budgets(engines[0], clock)
    await budgets.reserve(request_id="h", key_id="k1", team_id="", key_limits=LIMITS, team_limits=Limits(),
                          amount_micros=2_000, renew_seconds=5.0)
    await running(budgets, clock, 5 + LAPSED_LEASE_GRACE_SECONDS - 0.5)
    assert await held(budgets) == 2_000, "lapsed, but the router may still be settling the call: still held"
    await running(budgets, clock, 1)
    assert await held(budgets) == 0
    plain = await budgets.reserve(request_id="plain", key_id="k1", team_id="", key_limits=LIMITS,
                                  team_limits=Limits(), amount_micros=2_000)
    clock.advance(seconds=600)
    assert plain.held and await held(budgets) == 2_000, "a hold reserved without renew_seconds lives to its TTL"


async def test_a_request_that_does_not_fit_is_capped_to_what_is_left(engines: list[AsyncEngine]) -> None:  # noqa: F811
    budgets = Budgets(engines[0], ManualClock(START))
    assert (await reserve(budgets, "r1", 7_000)).held
    capped = await reserve(budgets, "r2", 5_000, ask=10_000, cap=lambda free: free - 1 if free > 1_000 else None)
    assert capped.held and capped.capped and capped.amount_micros == 2_999 and capped.lease is None
    refused = await reserve(budgets, "r3", 5_000, cap=lambda free: free - 1 if free > 1_000 else None)
    assert refused.denied_by is not None and refused.free_micros == 1


async def test_leases_and_reservations_on_two_replicas_never_overrun(engines: list[AsyncEngine]) -> None:  # noqa: F811
    """Requests asking for leases and plain reservations racing through two engines, against room for 10 holds."""
    replicas = [Budgets(engine, ManualClock(START)) for engine in engines]

    async def one(i: int) -> int:
        outcome = await reserve(replicas[i % 2], f"r{i}", 1_000, ask=3_000 if i % 3 else 0)
        return int(outcome.held) * 1_000 + (outcome.lease.micros if outcome.lease is not None else 0)

    granted = await asyncio.gather(*(one(i) for i in range(40)))
    assert 0 < sum(granted) <= LIMITS.max_budget_micros
    assert await held(replicas[0]) == sum(granted)
