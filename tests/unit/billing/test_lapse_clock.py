"""Holds and leases lapse by billing's running time, not the wall clock (lapse_clock.py) — on SQLite, and
PostgreSQL when SWITCHBOARD_TEST_POSTGRES_URL is set."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_billing.budgets import LAPSED_LEASE_GRACE_SECONDS, Budgets, LeaseAsk, Limits
from switchboard_billing.lapse_clock import TICK_SECONDS
from switchboard_rules.windows import ManualClock
from tests.unit.billing.test_reservations import START, dsn, engines  # noqa: F401

LIMITS = Limits(max_budget_micros=10_000)


async def running(budgets: Budgets, clock: ManualClock, seconds: float) -> None:
    """``seconds`` of billing up and idle: its ticker refreshes its last-seen time every tick."""
    for _ in range(round(seconds / TICK_SECONDS)):
        clock.advance(seconds=TICK_SECONDS)
        assert await budgets.keep_alive() == 0


async def hold(budgets: Budgets, request_id: str, amount: int, limits: Limits = LIMITS) -> bool:
    reservation = await budgets.reserve(request_id=request_id, key_id="k1", team_id="", key_limits=limits,
                                        team_limits=Limits(), amount_micros=amount, renew_seconds=5.0)
    return reservation.held


async def held(budgets: Budgets, limits: Limits = LIMITS) -> int:
    probe = await budgets.reserve(request_id="probe", key_id="k1", team_id="", key_limits=limits,
                                  team_limits=Limits(), amount_micros=0)
    return probe.budgets[0].held_micros


async def test_a_hold_not_renewed_while_billing_was_away_counts_when_it_returns_then_lapses(
        engines: list[AsyncEngine]) -> None:  # noqa: F811
    """Billing frozen 14 s (kill -STOP): its holders' heartbeats found nobody. On its return the hold is counted
    (the routers' settlements, the holders' next heartbeats are on their way), and it lapses as usual if no
    heartbeat follows, by billing's running time."""
    clock = ManualClock(START)
    budgets = Budgets(engines[0], clock)
    assert await hold(budgets, "slow", 9_000)
    await running(budgets, clock, 2)
    clock.advance(seconds=14)  # billing away: no transaction, no tick
    assert not await hold(budgets, "fast", 2_000), "the hold of a request still running is counted"
    assert await held(budgets) == 9_000
    # No heartbeat follows: it lapses after 5 s (3 of them ran before the freeze), then its grace.
    await running(budgets, clock, 3 + LAPSED_LEASE_GRACE_SECONDS - 1)
    assert await held(budgets) == 9_000
    await running(budgets, clock, 1.5)
    assert await held(budgets) == 0
    assert await hold(budgets, "fast", 2_000)


async def test_a_holder_renewing_after_billings_return_keeps_its_hold(engines: list[AsyncEngine]) -> None:  # noqa: F811
    clock = ManualClock(START)
    budgets = Budgets(engines[0], clock)
    assert await hold(budgets, "slow", 9_000)
    clock.advance(seconds=30)
    renewed = await budgets.renew([], 5.0, ["slow"])
    assert renewed.unknown_holds == [], "the heartbeat billing could not hear does not cost the hold"
    await running(budgets, clock, 8)
    assert await held(budgets) == 9_000


async def test_a_lease_lapses_by_billings_running_time(engines: list[AsyncEngine]) -> None:  # noqa: F811
    clock = ManualClock(START)
    budgets = Budgets(engines[0], clock)
    opened = await budgets.reserve(request_id="r0", key_id="k1", team_id="", team_limits=Limits(),
                                   key_limits=Limits(max_budget_micros=100_000), amount_micros=100,
                                   lease_ask=LeaseAsk("lease-1", 5_000, 5.0, 1_000))
    assert opened.lease is not None
    clock.advance(seconds=20)
    renewed = await budgets.renew([("lease-1", 1_000, 0)], 5.0)
    assert renewed.leases[0].known and renewed.leases[0].micros == 5_000


async def test_a_restarted_billing_extends_live_holds_by_its_downtime(engines: list[AsyncEngine]) -> None:  # noqa: F811
    """Killed and restarted a minute later (another process on the same database): the router replaying its
    journal settles the calls its holds stand for only after the restart, so they count until then."""
    clock = ManualClock(START)
    before = Budgets(engines[0], clock)
    assert await hold(before, "answered", 9_000)
    await running(before, clock, 1.5)
    clock.advance(seconds=60)
    after = Budgets(engines[1], clock)
    assert not await hold(after, "new", 2_000)
    assert await held(after) == 9_000


async def test_a_new_databases_first_tick_is_no_absence(engines: list[AsyncEngine]) -> None:  # noqa: F811
    """A billing starting on a new database has never been away: its first tick makes up no gap (it used to
    report one of 56 years, "billing was away", on every first start)."""
    budgets = Budgets(engines[0], ManualClock(START))
    assert await budgets.keep_alive() == 0


async def test_an_absence_with_no_hold_running_makes_nothing_up(engines: list[AsyncEngine]) -> None:  # noqa: F811
    """A clean stop settles or returns every hold: the next start's first tick has nothing to extend and says
    nothing ("billing was away" used to be logged on every start after a clean stop)."""
    clock = ManualClock(START)
    budgets = Budgets(engines[0], clock)
    await running(budgets, clock, 1.5)
    clock.advance(seconds=60)
    assert await Budgets(engines[1], clock).keep_alive() == 0
    assert await hold(budgets, "after", 2_000)
    await running(budgets, clock, 1.5)
    clock.advance(seconds=60)
    assert await Budgets(engines[1], clock).keep_alive() >= 60_000, "a hold was running: the gap is made up"


async def test_a_hold_past_its_expiry_is_not_revived(engines: list[AsyncEngine]) -> None:  # noqa: F811
    clock = ManualClock(START)
    budgets = Budgets(engines[0], clock)
    reservation = await budgets.reserve(request_id="h", key_id="k1", team_id="", key_limits=LIMITS,
                                        team_limits=Limits(), amount_micros=9_000, ttl_seconds=60, renew_seconds=5.0)
    assert reservation.held
    clock.advance(hours=3)
    assert await held(budgets) == 0, "billing away for hours: the hold's expiry still bounds it"


async def test_standings_count_the_holds_an_absence_keeps_before_billing_has_caught_up(
        engines: list[AsyncEngine]) -> None:  # noqa: F811
    """Read-only standings (GetBudgets, the dashboard) take no lock and cannot make the absence up themselves: in
    the moment between billing's return and its first transaction or tick they show what the catch-up will keep,
    not every hold lapsed."""
    clock = ManualClock(START)
    budgets = Budgets(engines[0], clock)
    assert await hold(budgets, "slow", 9_000)
    await running(budgets, clock, 2)
    clock.advance(seconds=14)  # billing away; back now, no transaction or tick yet
    standing = (await budgets.standings([("key", "k1", LIMITS)]))[0]
    assert standing.held_micros == 9_000 and standing.budgets[0].held_micros == 9_000
    assert await budgets.keep_alive() > 0  # the first tick makes the absence up
    assert (await budgets.standings([("key", "k1", LIMITS)]))[0].held_micros == 9_000
    # Not renewed after the return, it lapses by billing's running time as before.
    await running(budgets, clock, 3 + LAPSED_LEASE_GRACE_SECONDS + 0.5)
    assert (await budgets.standings([("key", "k1", LIMITS)]))[0].held_micros == 0
