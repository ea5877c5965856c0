"""Billing settings (environment variables SWITCHBOARD_*)."""

from __future__ import annotations

from switchboard_common.settings import GrpcServiceSettings


class BillingSettings(GrpcServiceSettings):
    #: gRPC listen address of the billing service.
    grpc_listen: str = "127.0.0.1:50052"
    #: Ledger database; empty: SQLite file billing.db in the data directory.
    database_url: str = ""
