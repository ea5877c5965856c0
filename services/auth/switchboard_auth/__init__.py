"""Switchboard auth: virtual keys, teams and rate limits."""

import switchboard_common  # noqa: F401  # before grpc: it chooses the gRPC core's I/O engine (grpc_engine.py)
