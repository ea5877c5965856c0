"""Facade settings (environment variables SWITCHBOARD_*)."""

from __future__ import annotations

from switchboard_common.settings import ServiceSettings


class FacadeSettings(ServiceSettings):
    #: HTTP bind address.
    host: str = "127.0.0.1"
    #: HTTP port of the gateway.
    port: int = 4000
    #: Address of the auth service (host:port, a comma-separated list, or dns:///name:port).
    auth_address: str = "127.0.0.1:50051"
    #: Address of the router service.
    router_address: str = "127.0.0.1:50053"
    #: Address of the billing service.
    billing_address: str = "127.0.0.1:50052"
    #: Largest accepted request body, bytes (Cursor sends large code contexts); every route, checked from
    #: Content-Length before reading and counted while reading chunked bodies.
    max_body_bytes: int = 20 * 1024 * 1024
    #: Largest request head (request line and headers), bytes; larger heads get 431 before anything else runs.
    http_max_header_bytes: int = 64 * 1024
    #: Seconds a client has to send a whole request head, from the connection's start or its first byte.
    http_header_timeout_seconds: float = 10.0
    #: Longest pause, seconds, between two pieces of a request body before the connection is closed.
    http_body_timeout_seconds: float = 30.0
    #: Seconds an idle keep-alive connection stays open between requests.
    http_idle_timeout_seconds: float = 5.0
    #: Requests one connection may carry; the last answer says ``connection: close``. 0: no limit.
    http_max_requests_per_connection: int = 1000
    #: Seconds a call to auth or billing may take before the facade answers 503.
    service_timeout_seconds: float = 5.0
    #: Long-lived Exchange streams to the router that carry the completions, multiplexed (see router_exchange.py);
    #: calls are spread over them round-robin. 0: one unary gRPC call per completion.
    router_exchange_streams: int = 2
    #: Seconds a whole completion may take (the router applies per-deployment timeouts inside).
    completion_timeout_seconds: float = 900.0
    #: Longest life, seconds, of a cached key verification (changes are pushed by auth sooner); 0 turns the cache off.
    key_cache_ttl_seconds: float = 30.0
    #: Most requests one budget lease may cover (see leases.py); 0: a billing reservation per request.
    budget_lease_units: int = 1024
    #: Seconds a budget lease takes new requests before its unused part is returned.
    budget_lease_seconds: float = 10.0
    #: Most requests one rate-limit lease may cover (see limit_leases.py); 0: an auth admission per request.
    rate_lease_units: int = 256
    #: Seconds a rate-limit lease admits requests before its unused part is returned.
    rate_lease_seconds: float = 10.0
    #: Origins allowed by CORS ("*" lets the Cursor editor and browser tools call the gateway).
    cors_origins: str = "*"
