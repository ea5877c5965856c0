"""Switchboard facade: the one public HTTP door (OpenAI, Cursor and Anthropic dialects, admin API)."""

import switchboard_common  # noqa: F401  # before grpc: it chooses the gRPC core's I/O engine (grpc_engine.py)
