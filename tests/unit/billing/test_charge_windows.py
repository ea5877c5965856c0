"""A request is charged to the budget windows of the instant it started, whenever billing hears of it
(charge_windows.py): its reservation must fit those windows, its hold counts in them only, a start far off
billing's clock is brought within the skew bound, and a lease pays only for requests of the windows it was checked
in — on SQLite, and PostgreSQL when SWITCHBOARD_TEST_POSTGRES_URL is set."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_billing.budgets import Budgets, LeaseAsk, Limits, Reservation
from switchboard_billing.charge_windows import MAX_CLOCK_SKEW_MS
from switchboard_billing.ledger import Ledger
from switchboard_billing.spend_buckets import ALL_TIME
from switchboard_rules.windows import ManualClock
from tests.unit.billing.test_reservations import START, dsn, engines, ledger_on, usage_row  # noqa: F401

#: The midnight after START (UTC, the budget timezone here).
MIDNIGHT = datetime(2026, 3, 11, tzinfo=UTC)
#: $1.00 a day.
DAILY = Limits(max_daily_spend_micros=1_000_000)


def at(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


async def reserve(budgets: Budgets, request_id: str, amount: int, started: datetime | None,
                  limits: Limits = DAILY, **extra: Any) -> Reservation:
    """Reserves for a request of key k1 that started at ``started`` by its holder's clock (None: not said)."""
    return await budgets.reserve(request_id=request_id, key_id="k1", team_id="", key_limits=limits,
                                 team_limits=Limits(), amount_micros=amount,
                                 started_at_ms=at(started) if started is not None else 0, **extra)


async def ledger_spend(engine: AsyncEngine, start: datetime, end: datetime) -> int:
    """What the ledger charges key k1 in ``[start, end)``, read from its rows."""
    query = sa.text("SELECT COALESCE(SUM(cost_micros), 0) FROM usage_ledger WHERE key_id = 'k1' "
                    "AND started_at_ms >= :start AND started_at_ms < :end")
    async with engine.connect() as conn:
        return int((await conn.execute(query, {"start": at(start), "end": at(end)})).scalar_one())


async def test_a_request_started_before_midnight_and_reserved_after_must_fit_the_day_it_is_charged_to(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    """$1.00 a day with $0.99 spent today; a request started at 23:59:59.990 reaches billing at 00:00:00.020. It
    is charged to today, so today's cap decides — not tomorrow's empty one, which would let today reach $1.49."""
    clock = ManualClock(MIDNIGHT + timedelta(milliseconds=20))
    budgets, ledger = Budgets(engines[0], clock), ledger_on(engines[1])
    today = MIDNIGHT - timedelta(days=1)
    await ledger.record_new([usage_row("earlier", 990_000, MIDNIGHT - timedelta(hours=1))])
    started = MIDNIGHT - timedelta(milliseconds=10)
    late = await reserve(budgets, "late", 500_000, started)
    if late.held:  # its usage, as its holder reports it: charged to the day it started in
        await ledger.record_new([usage_row("late", 500_000, started)])
    assert await ledger_spend(engines[0], today, MIDNIGHT) <= 1_000_000, "today's cap was overrun"
    assert late.denied_by is not None and late.denied_by.kind == "daily"
    assert late.denied_by.window is not None and late.denied_by.window.end == MIDNIGHT
    assert late.denied_by.spent_micros == 990_000 and late.charged_at_ms == at(started)
    fresh = await reserve(budgets, "fresh", 1_000_000, MIDNIGHT + timedelta(milliseconds=15))
    assert fresh.held, "a request that started in the new day has all of the new day's cap"


async def test_a_late_requests_hold_counts_in_the_day_it_is_charged_to_only(engines: list[AsyncEngine]) -> None:  # noqa: F811
    clock = ManualClock(MIDNIGHT + timedelta(milliseconds=20))
    budgets = Budgets(engines[0], clock)
    started = MIDNIGHT - timedelta(milliseconds=10)
    assert (await reserve(budgets, "late", 600_000, started)).held
    assert not (await reserve(budgets, "late-too", 500_000, started)).held, "today holds $0.60 already"
    assert (await reserve(budgets, "new", 1_000_000, clock.now())).held, "the new day has all of its cap"
    # Where the key stands now (GetBudgets, /key/info): the new day's budget holds what is charged to it; the
    # late request's hold is still held, in the day it belongs to.
    [standing] = await budgets.standings([("key", "k1", DAILY)])
    assert standing.budgets[0].held_micros == 1_000_000 and standing.today.start == MIDNIGHT
    assert standing.held_micros == 1_600_000 and standing.today_micros == 0


async def test_a_request_that_starts_in_the_next_window_by_its_holders_clock_must_fit_that_window(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    """A facade's clock 0.8 s ahead of billing's: at billing's 29.5 s its requests start in the next 30 s window,
    and are charged there; requests of it already settled have spent $0.0099 of its $0.01."""
    windowed = Limits(max_budget_micros=10_000, budget_duration="30s")
    clock = ManualClock(START + timedelta(seconds=29.5))
    budgets, ledger = Budgets(engines[0], clock), ledger_on(engines[1])
    following = START + timedelta(seconds=30)
    await ledger.record_new([usage_row("ahead-1", 9_900, following + timedelta(milliseconds=100))])
    ahead = following + timedelta(milliseconds=300)
    assert not (await reserve(budgets, "ahead-2", 500, ahead, windowed)).held
    assert (await reserve(budgets, "ahead-3", 100, ahead, windowed)).held
    assert (await reserve(budgets, "billings-own", 9_000, clock.now(), windowed)).held, "the current window is free"
    clock.advance(seconds=1)
    probe = await reserve(budgets, "probe", 0, clock.now(), windowed)
    assert (probe.budgets[0].spent_micros, probe.budgets[0].held_micros) == (9_900, 100), \
        "the hold made before the window started counts in it; the last window's does not"


async def test_the_last_windows_holds_do_not_shrink_the_new_window(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    """max_budget 0.01 per 30 s: requests held at :25 are charged to the window they started in, so at :30 the new
    window has all of its money."""
    windowed = Limits(max_budget_micros=10_000, budget_duration="30s")
    clock = ManualClock(START + timedelta(seconds=25))
    budgets, ledger = Budgets(engines[0], clock), ledger_on(engines[1])
    assert (await reserve(budgets, "old", 9_000, clock.now(), windowed)).held
    assert not (await reserve(budgets, "too-much", 2_000, clock.now(), windowed)).held
    clock.advance(seconds=5)
    assert (await reserve(budgets, "new", 9_000, clock.now(), windowed)).held, "the old hold counts in its window"
    await ledger.record_new([usage_row("old", 8_000, START + timedelta(seconds=25))])
    after = await reserve(budgets, "probe", 0, clock.now(), windowed)
    assert after.budgets[0].spent_micros == 0 and after.budgets[0].held_micros == 9_000


async def test_a_start_further_off_billings_clock_than_the_skew_bound_is_charged_at_the_bound(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    """A holder whose clock is 10 minutes off does not reopen yesterday's unspent cap, nor spend a day not begun:
    its request is charged (and its usage dated) within the bound of billing's clock."""
    clock = ManualClock(MIDNIGHT + timedelta(minutes=5))
    budgets, ledger = Budgets(engines[0], clock), ledger_on(engines[1])
    await ledger.record_new([usage_row("today", 990_000, MIDNIGHT + timedelta(minutes=1))])
    bound = timedelta(milliseconds=MAX_CLOCK_SKEW_MS)
    slow = await reserve(budgets, "slow", 500_000, MIDNIGHT - timedelta(minutes=5))
    assert slow.charged_at_ms == at(clock.now() - bound)
    assert slow.denied_by is not None and slow.denied_by.resets_at == MIDNIGHT + timedelta(days=1), \
        "checked against today, not yesterday"
    fast = await reserve(budgets, "fast", 5_000, clock.now() + timedelta(minutes=10))
    assert fast.held and fast.charged_at_ms == at(clock.now() + bound)
    within = await reserve(budgets, "within", 1_000, clock.now() - bound + timedelta(milliseconds=1))
    assert within.charged_at_ms == at(clock.now() - bound + timedelta(milliseconds=1)), "taken as it is"
    undated = await reserve(budgets, "undated", 1_000, None)
    assert undated.charged_at_ms == at(clock.now())
    again = await reserve(budgets, "fast", 5_000, clock.now())
    assert again.held and again.charged_at_ms == fast.charged_at_ms, "a repeated Reserve answers the first's instant"


async def test_a_lease_pays_for_the_windows_it_was_checked_in_and_counts_there_only(
        engines: list[AsyncEngine]) -> None:  # noqa: F811
    """A lease granted ten seconds before midnight is money for requests of yesterday: past midnight neither it nor
    yesterday's holds shrink the new day, and yesterday's window still counts both."""
    clock = ManualClock(MIDNIGHT - timedelta(seconds=10))
    budgets = Budgets(engines[0], clock)
    daily = Limits(max_daily_spend_micros=100_000)
    assert (await reserve(budgets, "yesterday", 60_000, clock.now(), daily, renew_seconds=5.0)).held
    leased = await reserve(budgets, "r0", 100, clock.now(), daily, lease_ask=LeaseAsk("lease-1", 5_000, 5.0, 5_000))
    assert leased.lease is not None and leased.lease.micros == 5_000
    assert (leased.lease.charged_from_ms, leased.lease.charged_until_ms) == (at(MIDNIGHT - timedelta(days=1)),
                                                                            at(MIDNIGHT))
    for _ in range(11):  # their holders renew them: all still held, past midnight
        clock.advance(seconds=1)
        renewed = await budgets.renew([("lease-1", 5_000, 0)], 5.0, ["yesterday", "r0"])
        assert renewed.leases[0].known and not renewed.unknown_holds
    assert (await reserve(budgets, "probe", 0, clock.now(), daily)).budgets[0].held_micros == 0
    yesterday = await reserve(budgets, "probe-yesterday", 0, MIDNIGHT - timedelta(milliseconds=1), daily)
    assert yesterday.budgets[0].held_micros == 65_100
    assert (await reserve(budgets, "today", 100_000, clock.now(), daily)).held, "the new day has all of its cap"


async def test_a_leases_span_is_inside_every_window_it_was_checked_in(engines: list[AsyncEngine]) -> None:  # noqa: F811
    clock = ManualClock(START + timedelta(seconds=40))
    budgets = Budgets(engines[0], clock)
    both = Limits(max_budget_micros=1_000_000, budget_duration="30s", max_daily_spend_micros=1_000_000)
    leased = await reserve(budgets, "r0", 100, clock.now(), both, lease_ask=LeaseAsk("lease-1", 5_000, 5.0, 5_000))
    assert leased.lease is not None
    assert (leased.lease.charged_from_ms, leased.lease.charged_until_ms) == (
        at(START + timedelta(seconds=30)), at(START + timedelta(seconds=60)))
    total = Limits(max_budget_micros=1_000_000)
    other = await budgets.reserve(request_id="r1", key_id="k2", team_id="", key_limits=total, team_limits=Limits(),
                                  amount_micros=100, started_at_ms=at(clock.now()),
                                  lease_ask=LeaseAsk("lease-2", 5_000, 5.0, 5_000))
    assert other.lease is not None and (other.lease.charged_from_ms, other.lease.charged_until_ms) == ALL_TIME, \
        "a budget without windows: every request"


async def test_holds_made_before_migration_15_count_where_their_rule_let_them(engines: list[AsyncEngine]) -> None:  # noqa: F811
    """A billing upgraded with holds in flight: a lease was money for requests of any window, a request's hold was
    made within the clock skew billing accepts of its request's start."""
    engine = engines[0]
    made = at(MIDNIGHT - timedelta(seconds=1))
    async with engine.begin() as conn:
        for column in ("charged_from_ms", "charged_until_ms"):
            await conn.execute(sa.text(f"ALTER TABLE reservations DROP COLUMN {column}"))
        await conn.execute(sa.text("DELETE FROM billing_schema_migrations WHERE version = 15"))
        for reservation_id, lease in (("old-hold", False), ("old-lease", True)):
            await conn.execute(sa.text(
                "INSERT INTO reservations (reservation_id, key_id, team_id, user_id, model, amount_micros, "
                "created_at_ms, expires_at_ms, renewed_until_ms, committed_micros, holder, lease) VALUES "
                "(:id, 'k1', '', '', '', 1000, :made, :expires, :expires, 1000, 'facade@old', :lease)"),
                {"id": reservation_id, "made": made, "expires": made + 3_600_000, "lease": lease})
    await Ledger(engine).migrate()
    async with engine.connect() as conn:
        rows = dict((r[0], (r[1], r[2])) for r in await conn.execute(sa.text(
            "SELECT reservation_id, charged_from_ms, charged_until_ms FROM reservations")))
    assert rows == {"old-hold": (made - MAX_CLOCK_SKEW_MS, made + MAX_CLOCK_SKEW_MS + 1), "old-lease": ALL_TIME}
    budgets = Budgets(engine, ManualClock(MIDNIGHT + timedelta(seconds=1)))
    today = await reserve(budgets, "probe", 0, MIDNIGHT + timedelta(seconds=1))
    assert today.budgets[0].held_micros == 2_000, "the old hold may be charged on either side of midnight"


def test_a_holders_broken_clock_is_named_in_a_warning_once_a_minute(caplog: pytest.LogCaptureFixture,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Charged at the bound, a broken clock's requests also cannot use a lease (each costs a round trip): the
    operator is told, once a minute rather than on every request."""
    import switchboard_billing.charge_windows as charge_windows

    monkeypatch.setattr(charge_windows, "_last_skew_warning", -charge_windows.SKEW_WARNING_SECONDS)
    now = at(MIDNIGHT)
    with caplog.at_level("WARNING", logger="switchboard_billing.charge_windows"):
        assert charge_windows.charged_at(now - 1000, now) == now - 1000  # within the bound: no warning
        for late in (10, 11, 12):
            charge_windows.charged_at(now - late * 60_000, now)
    warnings = [r for r in caplog.records if "further from billing's clock" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].skew_ms == -600_000, [r.getMessage() for r in caplog.records]
