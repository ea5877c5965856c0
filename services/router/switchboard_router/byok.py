"""Bring your own key: a caller's own provider credential used instead of the operator's.

The facade passes the key's (or team's) decrypted credentials per request in
``CompleteRequest.provider_credentials`` (provider name -> API key). For every attempt, retries
and fallbacks included, a deployment of such a provider is called with the caller's credential in
place of its configured ``api_key``; the request is then billed with the routing-only fee
(``RouteInfo.byok``). Credentials are never logged, stored or returned by the router.

When a credential applies is a rule billing shares (it holds and charges the BYOK fee then):
:func:`switchboard_rules.byok.byok_applies`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from switchboard_router.deployment import Deployment
from switchboard_rules.byok import byok_applies


def applies(provider: str, credentials: Mapping[str, str]) -> bool:
    """Whether a deployment of ``provider`` is called with the caller's own credential."""
    return bool(credentials.get(provider)) and byok_applies(provider, credentials)


def with_own_credential(deployment: Deployment, credentials: Mapping[str, str]) -> Deployment:
    """The deployment as this request calls it: the caller's credential when one applies."""
    if not credentials or not applies(deployment.provider, credentials):
        return deployment
    return dataclasses.replace(deployment, api_key=credentials[deployment.provider])
