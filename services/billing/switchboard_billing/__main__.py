"""Entry point: ``python -m switchboard_billing`` (or ``switchboard-billing``)."""

from __future__ import annotations

import logging

from switchboard.v1 import billing_pb2, billing_pb2_grpc
from switchboard_billing.ledger import Ledger
from switchboard_billing.servicer import BillingServicer
from switchboard_billing.settings import BillingSettings
from switchboard_common import metrics, runtime, tracing
from switchboard_common.database import default_sqlite_dsn, make_engine
from switchboard_common.grpc_server import run_until_signalled, start_server

log = logging.getLogger("switchboard_billing")


async def serve(settings: BillingSettings) -> None:
    data_dir = settings.ensure_data_dir()
    ledger = Ledger(make_engine(settings.database_url or default_sqlite_dsn(data_dir, "billing.db")))
    await ledger.migrate()
    name = billing_pb2.DESCRIPTOR.services_by_name["Billing"].full_name
    service = await start_server(
        settings.grpc_listen,
        lambda server: billing_pb2_grpc.add_BillingServicer_to_server(BillingServicer(ledger), server),
        [name],
    )
    log.info("billing listening", extra={"port": service.port})
    metrics.serve(settings.metrics_port)
    await run_until_signalled(service, settings.shutdown_grace_seconds, ledger.close)


def main() -> None:
    settings = BillingSettings()
    tracing.setup("switchboard-billing")
    runtime.run("billing", serve(settings), settings.log_level)


if __name__ == "__main__":
    main()
