"""Switchboard billing: prices, usage ledger, spend, budgets."""

import switchboard_common  # noqa: F401  # before grpc: it chooses the gRPC core's I/O engine (grpc_engine.py)
