"""Bootstrap of a Switchboard gRPC service: health, reflection, graceful shutdown.

Every service's ``__main__`` builds its servicers, calls :func:`start_server` and then
:func:`run_until_stopped`.
Health is the standard ``grpc.health.v1`` protocol (the library's servicer,
usable by Kubernetes' native gRPC probes); reflection lets ``grpcurl`` discover
the API. When asked to stop (SIGTERM/SIGINT, or the host of a shared process: see
:mod:`switchboard_common.lifecycle`) the server reports NOT_SERVING, stops accepting
new RPCs and gives in-flight ones ``shutdown_grace_seconds`` to finish.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from switchboard_common.grpc_metrics import MetricsInterceptor, Observe
from switchboard_common.lifecycle import Lifecycle
from switchboard_common.ports import PortInUse, port_in_use_message

log = logging.getLogger(__name__)

#: Options for every server: generous message sizes (100 KB prompts are common),
#: keepalive so that idle peer connections stay warm, and a bounded connection life:
#: after five minutes a connection is asked to go away (GOAWAY; its calls may still run
#: for fifteen minutes, longer than the longest completion), so that clients resolve
#: the headless Service's DNS again and new replicas get their share of the traffic.
SERVER_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_connection_age_ms", 300_000),
    ("grpc.max_connection_age_grace_ms", 900_000),
    # One server per port: without this, a second server (a leftover of an earlier run) would silently share the
    # port with this one, and the kernel would split the connections between them.
    ("grpc.so_reuseport", 0),
)


#: The settings that move a gRPC service's port, for the message of one that cannot listen.
GRPC_PORT_SETTINGS = ("SWITCHBOARD_GRPC_LISTEN; under make run, SWITCHBOARD_AUTH_PORT, SWITCHBOARD_BILLING_PORT or "
                      "SWITCHBOARD_ROUTER_PORT")
__all__ = ["GRPC_PORT_SETTINGS", "GrpcService", "PortInUse", "run_until_stopped", "start_server"]


class GrpcService:
    """A started gRPC server with its health servicer."""

    def __init__(self, server: grpc.aio.Server, port: int, health_servicer: health.HealthServicer,
                 service_names: Sequence[str]) -> None:
        self.server = server
        self.port = port
        self.health = health_servicer
        self.service_names = list(service_names)

    async def stop(self, grace: float) -> None:
        for name in [*self.service_names, ""]:
            await _set(self.health, name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)


async def start_server(
    listen: str,
    register: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    observe: Observe | None = None,
) -> GrpcService:
    """Creates, registers and starts a server on ``listen`` (port 0 = any free port); ``interceptors`` run after
    the metrics one (e.g. :class:`switchboard_common.identity.RequireServiceToken`), which hands every answer
    going out to ``observe``."""
    label = service_names[0].rsplit(".", 1)[-1].lower() if service_names else "grpc"
    server = grpc.aio.server(options=SERVER_OPTIONS,
                             interceptors=[MetricsInterceptor(label, observe), *interceptors])
    register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError:
        port = 0
    if port == 0:
        raise PortInUse(port_in_use_message(listen, GRPC_PORT_SETTINGS))
    await server.start()
    for name in [*service_names, ""]:
        await _set(health_servicer, name, health_pb2.HealthCheckResponse.SERVING)
    return GrpcService(server, port, health_servicer, service_names)


async def _set(servicer: health.HealthServicer, name: str, status: int) -> None:
    result = servicer.set(name, status)
    if isinstance(result, Awaitable):
        await result


async def run_until_stopped(
    service: GrpcService,
    grace: float,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    on_drain: Callable[[], None] | None = None,
    lifecycle: Lifecycle | None = None,
) -> None:
    """Says the service serves, waits until it is asked to stop (by ``lifecycle``, else by SIGTERM or SIGINT), then
    drains and stops gracefully.

    ``on_drain`` runs first: it tells long-lived streams (the router's Exchange) to take no new calls, so that
    they end as soon as their calls in flight are done rather than at the end of the grace."""
    lifecycle = lifecycle or Lifecycle.on_signals()
    lifecycle.serving.set()
    await lifecycle.stop.wait()
    log.info("shutting down", extra={"grace_seconds": grace})
    if on_drain is not None:
        on_drain()
    await service.stop(grace)
    if on_stop is not None:
        await on_stop()
    log.info("stopped")
