"""Facade settings (environment variables SWITCHBOARD_*)."""

from __future__ import annotations

from switchboard_common.settings import PeerSettings


class FacadeSettings(PeerSettings):
    #: HTTP bind address.
    host: str = "127.0.0.1"
    #: HTTP port of the gateway.
    port: int = 4000
    #: Address of the router service.
    router_address: str = "127.0.0.1:50053"
    #: Largest accepted request body, bytes (Cursor sends large code contexts).
    max_body_bytes: int = 20 * 1024 * 1024
    #: Long-lived Exchange streams to the router that carry the completions, multiplexed (see
    #: switchboard_router.client.exchange); calls are spread over them round-robin. 0: one unary gRPC call per
    #: completion.
    router_exchange_streams: int = 2
    #: Origins allowed by CORS ("*" lets the Cursor editor and browser tools call the gateway).
    cors_origins: str = "*"
