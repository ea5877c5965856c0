"""One long-lived gRPC channel and stub per peer service."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from switchboard.v1 import auth_pb2_grpc, billing_pb2_grpc, router_pb2_grpc
from switchboard_common.channels import open_channel
from switchboard_facade.router_exchange import RouterExchange
from switchboard_facade.settings import FacadeSettings


@dataclass
class Peers:
    auth: auth_pb2_grpc.AuthStub
    router: router_pb2_grpc.RouterStub
    billing: billing_pb2_grpc.BillingStub
    channels: dict[str, grpc.aio.Channel]
    #: Completions multiplexed on a few streams to the router; None: unary calls only.
    router_exchange: RouterExchange | None = field(default=None)

    @classmethod
    def connect(cls, settings: FacadeSettings) -> Peers:
        channels = {
            "auth": open_channel(settings.auth_address),
            "router": open_channel(settings.router_address),
            "billing": open_channel(settings.billing_address),
        }
        router = router_pb2_grpc.RouterStub(channels["router"])
        exchange = None
        if settings.router_exchange_streams > 0:
            exchange = RouterExchange(router, settings.router_exchange_streams,
                                      timeout_seconds=settings.completion_timeout_seconds,
                                      open_timeout_seconds=settings.service_timeout_seconds)
        return cls(
            auth=auth_pb2_grpc.AuthStub(channels["auth"]),
            router=router,
            billing=billing_pb2_grpc.BillingStub(channels["billing"]),
            channels=channels,
            router_exchange=exchange,
        )

    async def close(self) -> None:
        if self.router_exchange is not None:
            await self.router_exchange.close()
        for channel in self.channels.values():
            await channel.close()
