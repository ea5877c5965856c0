"""gRPC client channels between services.

One long-lived channel per peer service, created once per process. An address
may list several hosts (``host1:50051,host2:50051``) or be a DNS name of a
headless Service (``dns:///auth:50051``); the channel balances round-robin over
all of them and reconnects by itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

CHANNEL_OPTIONS: Sequence[tuple[str, object]] = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.enable_retries", 0),
)


def target_for(address: str) -> str:
    """Turns ``a:1,b:2`` into an ``ipv4:`` multi-address target; passes others through."""
    if "," in address:
        hosts = [h.strip() for h in address.split(",") if h.strip()]
        return "ipv4:" + ",".join(hosts)
    return address


def open_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(target_for(address), options=CHANNEL_OPTIONS)
