"""Budget alerts raised by settlement on real databases (SQLite, and PostgreSQL when SWITCHBOARD_TEST_POSTGRES_URL is
set): each threshold of each budget once per window, however the spend arrives (one batch crossing several, replays,
concurrent settlements on two replicas), queued for every webhook in the same transaction."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard.v1.common_pb2 import WatchedBudget
from switchboard_billing.alert_detect import AlertPolicy
from switchboard_billing.alert_rules import Watch, watches_of
from switchboard_billing.ledger import Ledger
from switchboard_rules.alert_thresholds import ThresholdError, normalize, parse_thresholds
from switchboard_rules.windows import ManualClock
from tests.unit.billing.test_reservations import START, dsn, engines, usage_row  # noqa: F401

WEBHOOKS = ("ops", "slack")


@pytest.fixture
async def alert_ledgers() -> AsyncIterator[Callable[[AsyncEngine, ManualClock], Ledger]]:
    made: list[Ledger] = []

    def make(engine: AsyncEngine, clock: ManualClock) -> Ledger:
        made.append(Ledger(engine, AlertPolicy((50, 80, 100), WEBHOOKS, clock=clock)))
        return made[-1]

    yield make
    for ledger in made:
        await ledger.close()


async def alerts_of(engine: AsyncEngine) -> list[tuple[str, str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT kind, budget, threshold_percent FROM budget_alerts "
                                          "ORDER BY budget, threshold_percent"))
        return [(r[0], r[1], r[2]) for r in rows]


async def deliveries_of(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT idempotency_key, webhook FROM alert_deliveries "
                                          "WHERE status = 'pending' ORDER BY 1, 2"))
        return [(r[0], r[1]) for r in rows]


KEY_WATCH = Watch("key", "k1", "dev-key", max_budget_micros=1_000)


async def test_each_threshold_fires_once_as_spend_crosses_it(
        engines: list[AsyncEngine], alert_ledgers: Callable[[AsyncEngine, ManualClock], Ledger]) -> None:  # noqa: F811
    ledger = alert_ledgers(engines[0], ManualClock(START))
    assert await ledger.record_new([usage_row("r1", 300, START)], watches=[KEY_WATCH])
    assert await alerts_of(engines[0]) == []
    await ledger.record_new([usage_row("r2", 250, START)], watches=[KEY_WATCH])
    assert await alerts_of(engines[0]) == [("threshold", "budget", 50)]
    await ledger.record_new([usage_row("r2", 250, START), usage_row("r1", 300, START)], watches=[KEY_WATCH])
    assert await alerts_of(engines[0]) == [("threshold", "budget", 50)], "a replay raises nothing"
    await ledger.record_new([usage_row("r3", 500, START)], watches=[KEY_WATCH])  # 1,050: 80% and 100% at once
    assert await alerts_of(engines[0]) == [("threshold", "budget", 50), ("threshold", "budget", 80),
                                           ("threshold", "budget", 100)]
    await ledger.record_new([usage_row("r4", 10, START)], watches=[KEY_WATCH])
    assert len(await alerts_of(engines[0])) == 3, "past every threshold, more spend raises nothing new"
    queued = await deliveries_of(engines[0])
    assert len(queued) == 6 and {w for _, w in queued} == set(WEBHOOKS), "each alert queued once per webhook"


async def test_concurrent_settlements_on_two_replicas_raise_each_alert_once(
        engines: list[AsyncEngine], alert_ledgers: Callable[[AsyncEngine, ManualClock], Ledger]) -> None:  # noqa: F811
    clock = ManualClock(START)
    replicas = [alert_ledgers(engines[0], clock), alert_ledgers(engines[1], clock)]
    team = Watch("team", "t1", max_budget_micros=2_000)
    watches = [Watch("key", "k1", max_budget_micros=1_000), team]

    async def settle(i: int) -> None:
        await replicas[i % 2].record_new([usage_row(f"c{i}", 50, START, team_id="t1")], watches=watches)

    await asyncio.gather(*(settle(i) for i in range(40)))  # 2,000 micro-dollars: key 200%, team 100%
    async with engines[0].connect() as conn:
        rows = (await conn.execute(sa.text("SELECT scope, threshold_percent, spent_micros FROM budget_alerts "
                                           "ORDER BY scope, threshold_percent"))).all()
    assert [(r[0], r[1]) for r in rows] == [("key", 50), ("key", 80), ("key", 100),
                                            ("team", 50), ("team", 80), ("team", 100)]
    limits = {"key": 1_000, "team": 2_000}
    for scope, percent, spent in rows:  # none was missed and raised late: each when its crossing settled
        assert limits[scope] * percent // 100 <= spent < limits[scope] * percent // 100 + 50 * 2 + 1
    assert len(await deliveries_of(engines[0])) == 12


async def test_a_crossing_two_replicas_make_together_is_raised_once(
        engines: list[AsyncEngine], alert_ledgers: Callable[[AsyncEngine, ManualClock], Ledger]) -> None:  # noqa: F811
    """Each of two settlements alone stays under the threshold; together they reach it. Settled at the same moment
    on two replicas, neither would see the other's row in its own snapshot: the subject's lock makes the second
    sum after the first commits, so the crossing is raised once, never missed."""
    clock = ManualClock(START)
    replicas = [alert_ledgers(engines[0], clock), alert_ledgers(engines[1], clock)]
    subjects = [f"pair{i}" for i in range(12)]

    async def settle(replica: int, key_id: str) -> None:
        watch = Watch("key", key_id, max_budget_micros=100)
        await replicas[replica].record_new([usage_row(f"{key_id}-{replica}", 50, START, key_id=key_id)],
                                           watches=[watch])

    for i, key_id in enumerate(subjects):  # known subjects (creating one would serialize), warm connections
        await replicas[i % 2].record_new([usage_row(f"{key_id}-free", 0, START, key_id=key_id)],
                                         watches=[Watch("key", key_id, max_budget_micros=100)])
    for key_id in subjects:
        await asyncio.gather(settle(0, key_id), settle(1, key_id))
    async with engines[0].connect() as conn:
        rows = (await conn.execute(sa.text("SELECT subject_id, threshold_percent FROM budget_alerts"))).all()
    assert Counter((r[0], r[1]) for r in rows) == Counter({(k, p): 1 for k in subjects for p in (50, 80, 100)})


async def test_a_late_settlement_alerts_in_the_window_it_was_charged_to(
        engines: list[AsyncEngine], alert_ledgers: Callable[[AsyncEngine, ManualClock], Ledger]) -> None:  # noqa: F811
    """Requests started just before midnight and settled just after are charged to the day they started (billing
    dates them so): that day's cap is where their spend counts, and where it alerts."""
    midnight = START.replace(hour=0) + timedelta(days=1)
    ledger = alert_ledgers(engines[0], ManualClock(midnight + timedelta(milliseconds=20)))
    watch = Watch("key", "k1", "dev-key", max_daily_spend_micros=1_000)
    await ledger.record_new([usage_row("r1", 600, midnight - timedelta(seconds=1))], watches=[watch])
    await ledger.record_new([usage_row("r2", 500, midnight - timedelta(milliseconds=10))], watches=[watch])
    assert await alerts_of(engines[0]) == [("threshold", "daily", 50), ("threshold", "daily", 80),
                                           ("threshold", "daily", 100)]
    async with engines[0].connect() as conn:
        windows = (await conn.execute(sa.text("SELECT DISTINCT window_start_ms FROM budget_alerts"))).scalars().all()
    assert windows == [int((midnight - timedelta(days=1)).timestamp() * 1000)], "the day the requests started"
    # Today's spend starts afresh: 400 of today's 1,000 is under every threshold.
    await ledger.record_new([usage_row("r3", 400, midnight + timedelta(seconds=1))], watches=[watch])
    assert len(await alerts_of(engines[0])) == 3


async def test_soft_budget_daily_cap_and_a_new_window(
        engines: list[AsyncEngine], alert_ledgers: Callable[[AsyncEngine, ManualClock], Ledger]) -> None:  # noqa: F811
    clock = ManualClock(START)
    ledger = alert_ledgers(engines[0], clock)
    watch = Watch("user", "u1", soft_budget_micros=400, max_daily_spend_micros=1_000, budget_duration="1d")

    def row(request_id: str, cost: int) -> object:
        made = usage_row(request_id, cost, clock.now())
        made.user_id = "u1"
        return made

    await ledger.record_new([row("s1", 500)], watches=[watch])
    assert await alerts_of(engines[0]) == [("threshold", "daily", 50), ("soft_budget", "soft", 0)]
    await ledger.record_new([row("s2", 100)], watches=[watch])
    assert len(await alerts_of(engines[0])) == 2
    clock.advance(timedelta(days=1))  # a new day and a new soft-budget window: each alerts again, under new keys
    await ledger.record_new([row("s3", 800)], watches=[watch])
    kinds = await alerts_of(engines[0])
    assert kinds.count(("soft_budget", "soft", 0)) == 2 and kinds.count(("threshold", "daily", 80)) == 1
    async with engines[0].connect() as conn:
        messages = (await conn.execute(sa.text("SELECT message FROM budget_alerts WHERE kind = 'soft_budget'"))
                    ).scalars().all()
    assert all("requests are still served" in m for m in messages)


async def test_rows_of_unwatched_subjects_raise_nothing_and_a_bad_window_never_fails_a_settlement(
        engines: list[AsyncEngine], alert_ledgers: Callable[[AsyncEngine, ManualClock], Ledger]) -> None:  # noqa: F811
    ledger = alert_ledgers(engines[0], ManualClock(START))
    await ledger.record_new([usage_row("u1", 5_000, START)])
    assert await alerts_of(engines[0]) == []
    odd = Watch("key", "k1", max_budget_micros=10, budget_duration="fortnightly")
    assert len(await ledger.record_new([usage_row("u2", 5_000, START)], watches=[odd])) == 1
    assert await alerts_of(engines[0]) == []


async def test_a_subjects_own_thresholds_win_over_the_gateways(
        engines: list[AsyncEngine], alert_ledgers: Callable[[AsyncEngine, ManualClock], Ledger]) -> None:  # noqa: F811
    ledger = alert_ledgers(engines[0], ManualClock(START))
    own = Watch("key", "k1", max_budget_micros=1_000, thresholds=(30, 90))
    await ledger.record_new([usage_row("t1", 850, START)], watches=[own])
    assert await alerts_of(engines[0]) == [("threshold", "budget", 30)], "not the gateway's 50 and 80"


def test_thresholds_and_watches_are_read_strictly() -> None:
    assert parse_thresholds("80, 50,100%,50") == (50, 80, 100)
    for bad in ("", "0", "abc", "50,1001", "12.5"):
        with pytest.raises(ThresholdError, match="percentage"):
            parse_thresholds(bad)
    assert normalize([90, 30, 30]) == (30, 90)
    for wrong in ([0], [True], list(range(1, 30))):
        with pytest.raises(ThresholdError):
            normalize(wrong)  # type: ignore[arg-type]
    assert Watch.of(WatchedBudget(scope="key", subject_id="k", alert_thresholds=[90, 20])).thresholds == (20, 90)
    messages = [WatchedBudget(scope="team", subject_id="t", max_budget_micros=5),
                WatchedBudget(scope="key", subject_id="k", soft_budget_micros=1),
                WatchedBudget(scope="bogus", subject_id="x"), WatchedBudget(scope="team", subject_id="t",
                                                                           max_budget_micros=9)]
    assert watches_of(messages) == [Watch("key", "k", soft_budget_micros=1), Watch("team", "t", max_budget_micros=9)]
