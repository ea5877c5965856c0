"""The facade's peers: one channel and one client per service, made and closed together.

The facade speaks no service's protocol itself: auth, billing and the router
each ship their client (``switchboard_auth.client``, ``switchboard_billing.client``,
``switchboard_router.client``), holding the caching, leases and batching that
make calling them cheap. This object owns them for the process's life and
presents the facade's service identity on every call.
"""

from __future__ import annotations

import grpc

from switchboard_auth.client import AuthClient, AuthClientSettings, KeyContext
from switchboard_billing.client import BillingClient, BillingClientSettings
from switchboard_common.channels import open_channel
from switchboard_common.identity import load_identity
from switchboard_facade.privacy_tier import INSTANCE
from switchboard_facade.request_id import new_request_id as new_request_id  # re-exported for the routes
from switchboard_facade.settings import FacadeSettings
from switchboard_router.client import ListModelsResponse, RouterClient, RoutingConstraints


class Gateway:
    def __init__(self, settings: FacadeSettings) -> None:
        self.settings = settings
        identity = load_identity("facade", settings)
        self.channels: dict[str, grpc.aio.Channel] = {
            "auth": open_channel(settings.auth_address),
            "router": open_channel(settings.router_address),
            "billing": open_channel(settings.billing_address),
        }
        timeout = settings.service_timeout_seconds
        self.auth = AuthClient(self.channels["auth"], identity.metadata, AuthClientSettings(
            timeout, settings.key_cache_ttl_seconds, settings.rate_lease_units, settings.rate_lease_seconds))
        self.billing = BillingClient(
            self.channels["billing"], holder=f"facade@{INSTANCE}", outbox_dir=settings.ensure_data_dir() / "outbox",
            metadata=identity.metadata, settings=BillingClientSettings(
                timeout, settings.completion_timeout_seconds, settings.budget_lease_units))
        self.router = RouterClient(self.channels["router"], metadata=identity.metadata,
                                   exchange_streams=settings.router_exchange_streams,
                                   timeout_seconds=settings.completion_timeout_seconds, open_timeout_seconds=timeout)
        #: Set when the shutdown's grace ran out: the requests cut from then on are cut by this facade, not by
        #: their clients, and recorded so (``caller_shutdown``).
        self.grace_expired = False

    def shutdown_grace_expired(self) -> None:
        """The server's shutdown grace ran out and it cancels the requests still running (see ``__main__``)."""
        self.grace_expired = True
        self.router.caller_stopping()

    async def start(self) -> None:
        await self.billing.start()
        await self.auth.start()

    async def close(self) -> None:
        grace = self.settings.shutdown_grace_seconds
        await self.auth.close(grace)
        await self.billing.close(grace)
        await self.router.close()
        for channel in self.channels.values():
            await channel.close()

    async def verify(self, api_key: str) -> KeyContext:
        """The key's context, without counting a request; raises ServiceError."""
        return await self.auth.verify(api_key)

    async def list_models(self, key: KeyContext, include_wildcards: bool = False) -> ListModelsResponse:
        """The live models this key can be served by (its models, privacy tier and jurisdictions); wildcard entries
        as the models they serve, and themselves too with ``include_wildcards``."""
        return await self.router.list_models(RoutingConstraints(
            allowed_models=key.models, privacy_tier=key.privacy_tier, jurisdictions=key.jurisdictions),
            include_wildcards)
