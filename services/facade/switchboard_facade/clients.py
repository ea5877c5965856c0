"""One long-lived gRPC channel and stub per peer service."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from switchboard.v1 import auth_pb2_grpc, billing_pb2_grpc, router_pb2_grpc
from switchboard_common.channels import open_channel
from switchboard_facade.settings import FacadeSettings


@dataclass
class Peers:
    auth: auth_pb2_grpc.AuthStub
    router: router_pb2_grpc.RouterStub
    billing: billing_pb2_grpc.BillingStub
    channels: dict[str, grpc.aio.Channel]

    @classmethod
    def connect(cls, settings: FacadeSettings) -> Peers:
        channels = {
            "auth": open_channel(settings.auth_address),
            "router": open_channel(settings.router_address),
            "billing": open_channel(settings.billing_address),
        }
        return cls(
            auth=auth_pb2_grpc.AuthStub(channels["auth"]),
            router=router_pb2_grpc.RouterStub(channels["router"]),
            billing=billing_pb2_grpc.BillingStub(channels["billing"]),
            channels=channels,
        )

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
