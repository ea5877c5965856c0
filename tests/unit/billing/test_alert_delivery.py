"""Spend reports and the delivery queue on real databases (SQLite, and PostgreSQL when configured), delivered to a
real webhook receiver: a report per team and finished period raised once by any number of replicas; a failed
delivery retried with backoff until it is accepted; a delivery claimed by a worker that died is sent again after its
claim lapses; a webhook removed from the configuration is abandoned."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_billing.alert_queue import AlertQueue, backoff_ms
from switchboard_billing.alert_store import list_alerts, raise_reports, report_period
from switchboard_billing.alert_webhooks import Webhook, parse_webhooks
from switchboard_billing.alert_worker import AlertWorker
from switchboard_billing.ledger import Ledger
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.unit.billing.test_reservations import dsn, engines, usage_row  # noqa: F401

NOW = datetime(2026, 3, 11, 9, 30, tzinfo=UTC)  # a Wednesday
YESTERDAY = NOW - timedelta(days=1)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver().start()
    yield hooks
    hooks.stop()


async def seed(engine: AsyncEngine) -> None:
    ledger = Ledger(engine)
    try:
        await ledger.record_new([usage_row("a", 300, YESTERDAY, team_id="t1"), usage_row("b", 200, YESTERDAY,
                                                                                         team_id="t1"),
                                 usage_row("c", 50, YESTERDAY, team_id="t2"), usage_row("d", 999, NOW, team_id="t1"),
                                 usage_row("e", 70, YESTERDAY)])
    finally:
        await ledger.close()


def test_report_periods() -> None:
    assert report_period("daily", NOW, UTC) == (datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC))
    assert report_period("weekly", NOW, UTC) == (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))


async def test_reports_are_raised_once_per_team_and_period(engines: list[AsyncEngine]) -> None:  # noqa: F811
    await seed(engines[0])
    first, second = await asyncio.gather(raise_reports(engines[0], "daily", NOW, UTC, ("ops",)),
                                         raise_reports(engines[1], "daily", NOW, UTC, ("ops",)))
    raised = sorted([*first, *second], key=lambda a: a.subject_id)
    assert [(a.subject_id, a.spent_micros) for a in raised] == [("t1", 500), ("t2", 50)], "today's row is not in it"
    assert await raise_reports(engines[0], "daily", NOW + timedelta(hours=5), UTC, ("ops",)) == []
    alerts, deliveries = await list_alerts(engines[0], kind="report")
    assert {a.subject_id for a in alerts} == {"t1", "t2"}
    assert all([d.webhook for d in deliveries[a.idempotency_key]] == ["ops"] for a in alerts)
    assert '"requests":2' in next(a.details_json for a in alerts if a.subject_id == "t1")


async def pending(engine: AsyncEngine) -> list[tuple[str, int, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT status, attempts, last_error FROM alert_deliveries ORDER BY 1"))
        return [(r[0], r[1], r[2]) for r in rows]


async def test_failed_delivery_is_retried_with_backoff_until_accepted(
        engines: list[AsyncEngine], receiver: WebhookReceiver) -> None:  # noqa: F811
    await seed(engines[0])
    await raise_reports(engines[0], "daily", NOW, UTC, ("ops",))
    hooks = (Webhook("ops", receiver.url("/ops"), "json", "s3cret"),)
    # A backoff of a second: the second round, right after the first, finds nothing due however slow the machine.
    worker = AlertWorker(AlertQueue(engines[0]), hooks, timeout_seconds=2, retry_base_seconds=1.0,
                         retry_max_seconds=2.0)
    receiver.fail_with(503)
    try:
        assert await worker.drain() == 2
        assert await worker.drain() == 0, "not due again before its backoff"
        assert {(s, n) for s, n, _ in await pending(engines[0])} == {("pending", 1)}
        assert {e for _, _, e in await pending(engines[0])} == {"HTTP 503"}
        receiver.fail_with(200)
        deadline = time.monotonic() + 10
        while any(s != "delivered" for s, _, _ in await pending(engines[0])) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            await worker.drain()
    finally:
        await worker.close()
    assert {(s, n) for s, n, _ in await pending(engines[0])} == {("delivered", 2)}
    accepted = receiver.accepted("/ops")
    assert len(accepted) == 2 and {d.json()["type"] for d in accepted} == {"switchboard.spend_report"}


async def test_a_claim_left_by_a_dead_worker_lapses_and_is_sent_again(
        engines: list[AsyncEngine], receiver: WebhookReceiver) -> None:  # noqa: F811
    await seed(engines[0])
    await raise_reports(engines[0], "daily", NOW, UTC, ("ops", "gone"))
    queue = AlertQueue(engines[0])
    now_ms = int(time.time() * 1000)
    claimed = await queue.claim(now_ms, claim_ms=300)  # a worker claims everything, then dies
    assert len(claimed) == 4 and await AlertQueue(engines[1]).claim(now_ms, 300) == [], "claimed once"
    await asyncio.sleep(0.4)
    worker = AlertWorker(AlertQueue(engines[1]), (Webhook("ops", receiver.url("/ops")),), timeout_seconds=2)
    try:
        assert await worker.drain() == 4
    finally:
        await worker.close()
    statuses = sorted((s, e) for s, _, e in await pending(engines[0]))
    assert statuses == [("abandoned", "webhook no longer configured")] * 2 + [("delivered", "")] * 2
    assert len(receiver.accepted("/ops")) == 2


def test_backoff_doubles_up_to_its_cap() -> None:
    waits = [backoff_ms(n, 1.0, 8.0) for n in range(1, 7)]
    for wait, expected in zip(waits, (1, 2, 4, 8, 8, 8), strict=True):
        assert expected * 1000 <= wait <= expected * 1200


def test_webhook_configuration_errors_say_what_to_do() -> None:
    assert parse_webhooks("") == ()
    hooks = parse_webhooks('[{"url": "https://a.example/x"}, {"name": "s", "url": "http://b", "format": "slack",'
                           ' "secret": "own"}]', default_secret="shared")
    assert hooks == (Webhook("webhook-1", "https://a.example/x", "json", "shared"), Webhook("s", "http://b", "slack",
                                                                                            "own"))
    for bad, says in (("{", "JSON array"), ('[{"url": "ftp://x"}]', "http(s)"),
                      ('[{"url": "http://x", "format": "xml"}]', "format must be one of"),
                      ('[{"url": "http://x", "colour": 1}]', "unknown fields"),
                      ('[{"name": "a", "url": "http://x"}, {"name": "a", "url": "http://y"}]', "names must differ")):
        with pytest.raises(ValueError, match=says):
            parse_webhooks(bad)


async def test_a_billing_without_webhooks_never_polls_the_delivery_queue() -> None:
    """Alerts are queued only for configured webhooks, so a billing with none has nothing to deliver: its worker
    looks once (to abandon what was queued for webhooks removed since) and then ends, instead of waking every
    second to look again (idle CPU)."""

    class CountingQueue:
        claims = 0

        async def claim(self, *_: object) -> list[object]:
            CountingQueue.claims += 1
            return []

    worker = AlertWorker(CountingQueue(), (), poll_seconds=0.01)  # type: ignore[arg-type]  # only claim() is used
    await asyncio.wait_for(worker.run(), 1)
    assert CountingQueue.claims == 1
