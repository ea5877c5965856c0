"""Entry point: ``python -m switchboard_billing`` (or ``switchboard-billing``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard.v1 import billing_pb2, billing_pb2_grpc
from switchboard_billing.alert_detect import AlertPolicy
from switchboard_billing.alert_queue import AlertQueue
from switchboard_billing.alert_rules import NewAlert
from switchboard_billing.alert_store import raise_reports
from switchboard_billing.alert_webhooks import parse_webhooks
from switchboard_billing.alert_worker import AlertWorker
from switchboard_billing.budget_gauges import BudgetGauges
from switchboard_billing.budgets import Budgets
from switchboard_billing.costing import Pricer
from switchboard_billing.lapse_clock import TICK_SECONDS
from switchboard_billing.ledger import Ledger
from switchboard_billing.model_admin import ModelAdmin
from switchboard_billing.model_store import AUDIT, ModelStore, cipher_for
from switchboard_billing.priced_models import CatalogSource
from switchboard_billing.servicer import BillingServicer
from switchboard_billing.settings import BillingSettings
from switchboard_common import audit_chain, metrics, runtime, tracing
from switchboard_common.database import default_sqlite_dsn, make_engine
from switchboard_common.database_errors import DatabaseUnreachable
from switchboard_common.grpc_server import run_until_stopped, start_server
from switchboard_common.identity import CALLERS, RequireServiceToken, load_identity
from switchboard_common.lifecycle import Lifecycle
from switchboard_rules.alert_thresholds import parse_thresholds
from switchboard_rules.catalog import refusing_invalid_catalog
from switchboard_rules.windows import parse_timezone

log = logging.getLogger("switchboard_billing")


async def _purge_expired(budgets: Budgets, every_seconds: float = 60.0) -> None:
    """Deletes reservations whose requests never settled (they stopped counting at expiry)."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            purged = await budgets.purge_expired()
            if purged:
                log.info("expired reservations purged", extra={"count": purged})
        except Exception as exc:  # the database may be briefly unreachable; try again next round
            log.warning("purging expired reservations failed", extra={"error": str(exc)})


async def _keep_alive(budgets: Budgets) -> None:
    """Keeps the time billing was last seen running fresh while no money moves (lapse_clock.py), so that only a
    real absence stops the clock holds lapse by."""
    failing = False
    while True:
        await asyncio.sleep(TICK_SECONDS)
        try:
            gap = await budgets.keep_alive()
            failing = False
            if gap:
                log.warning("billing was away: holds and leases extended by the gap", extra={"gap_ms": gap})
        except Exception as exc:  # the database may be briefly unreachable: the gap is made up when it is back
            if not failing:
                log.warning("refreshing billing's last-seen time failed", extra={"error": str(exc)})
            failing = True


def _alerts_raised(raised: list[NewAlert], worker: AlertWorker) -> None:
    """A settlement raised alerts: counted, and delivered now rather than at the worker's next look."""
    for alert in raised:
        metrics.ALERTS_RAISED.labels(alert.kind).inc()
    worker.notify()


async def _spend_reports(engine: AsyncEngine, period: str, tz: tzinfo, webhooks: tuple[str, ...],
                         worker: AlertWorker, every_seconds: float = 60.0) -> None:
    """Raises each team's report of the last finished period (once over every replica), then looks again later."""
    while True:
        try:
            raised = await raise_reports(engine, period, datetime.now(UTC), tz, webhooks)
            if raised:
                log.info("spend reports raised", extra={"count": len(raised)})
                _alerts_raised(raised, worker)
        except Exception as exc:  # the database may be briefly unreachable; try again next round
            log.warning("raising spend reports failed", extra={"error": str(exc)})
        await asyncio.sleep(every_seconds)


async def serve(settings: BillingSettings, lifecycle: Lifecycle | None = None) -> None:
    data_dir = settings.ensure_data_dir()
    dsn = settings.billing_database_url or settings.database_url or default_sqlite_dsn(data_dir, "billing.db")
    engine = make_engine(dsn)
    tz = parse_timezone(settings.budget_timezone)
    webhooks = parse_webhooks(settings.alert_webhooks, settings.alert_webhook_secret)
    webhook_names = tuple(w.name for w in webhooks)
    ledger = Ledger(engine, AlertPolicy(parse_thresholds(settings.alert_thresholds), webhook_names, tz))
    await ledger.migrate()
    worker = AlertWorker(AlertQueue(engine), webhooks, poll_seconds=settings.alert_poll_seconds,
                         timeout_seconds=settings.alert_webhook_timeout_seconds,
                         retry_base_seconds=settings.alert_retry_base_seconds,
                         retry_max_seconds=settings.alert_retry_max_seconds)
    ledger.on_alerts = lambda raised: _alerts_raised(raised, worker)
    budgets = Budgets(engine, tz=tz, default_ttl_seconds=settings.reservation_ttl_seconds)
    store = ModelStore(engine, cipher_for(settings.encryption_key, data_dir, embedded=engine.dialect.name == "sqlite"),
                       settings.stored_models_poll_seconds)
    await store.start()
    source = CatalogSource(settings.config, store=store)
    pricer = Pricer(source, default_output_tokens=settings.default_output_tokens_bound)
    identity = load_identity("billing", settings, accepts=CALLERS)
    gauges = BudgetGauges(budgets, settings.budget_metrics_subjects, settings.budget_metrics_seconds)
    metrics.observe_budgets(gauges.values)
    servicer = BillingServicer(ledger, budgets, pricer, settings.min_output_tokens, settings.budget_wait_seconds,
                               ModelAdmin(store, source, identity), gauges)
    name = billing_pb2.DESCRIPTOR.services_by_name["Billing"].full_name
    metrics.serve(settings.metrics_port)  # first: a port in use stops the start before anything listens
    service = await start_server(
        settings.grpc_listen,
        lambda server: billing_pb2_grpc.add_BillingServicer_to_server(servicer, server),
        [name],
        [RequireServiceToken(identity), DatabaseUnreachable("billing")],
    )
    loop = asyncio.get_running_loop()
    background = [loop.create_task(_purge_expired(budgets)), loop.create_task(_keep_alive(budgets)),
                  loop.create_task(worker.run())]
    if settings.alert_report:
        background.append(loop.create_task(_spend_reports(engine, settings.alert_report, tz, webhook_names, worker)))
    if settings.budget_metrics_subjects > 0:
        background.append(loop.create_task(gauges.run()))
    if settings.audit_retention_days > 0:
        background.append(loop.create_task(audit_chain.keep_for(
            engine, AUDIT, settings.audit_retention_days, settings.audit_prune_interval_seconds)))
    log.info("billing listening", extra={"port": service.port})

    async def close() -> None:
        await store.close()
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await ledger.close()

    await run_until_stopped(service, settings.shutdown_grace_seconds, close, on_drain=store.end_watchers,
                            lifecycle=lifecycle)


def hosted(listen: str | None, metrics_port: int, lifecycle: Lifecycle) -> Coroutine[Any, Any, None]:
    """Billing as one of the services of a shared process (switchboard_common.shared_process): its own gRPC
    address, the process's metrics port or none, stopped by its host."""
    overrides: dict[str, Any] = {"metrics_port": metrics_port}
    if listen:
        overrides["grpc_listen"] = listen
    return refusing_invalid_catalog("billing", serve(BillingSettings(**overrides), lifecycle))


def main() -> None:
    settings = BillingSettings()
    tracing.setup("switchboard-billing")
    runtime.run("billing", refusing_invalid_catalog("billing", serve(settings)), settings.log_level)


if __name__ == "__main__":
    main()
