"""Bring your own key: when a caller's own provider credential carries a request.

The router calls a deployment with the caller's credential when the caller has
one for the deployment's provider; billing then charges the deployment's BYOK
routing fee instead of the model's price, and holds that fee (not the price)
against budgets. Both must agree on when that is: the rule is here.

Bedrock is excluded: its requests are signed with the operator's AWS key pair,
which a single API key cannot replace, so the operator's credential is used and
the model's price is charged.
"""

from __future__ import annotations

from collections.abc import Collection

#: Providers whose deployments never use a caller's credential.
UNSUPPORTED_PROVIDERS = frozenset({"bedrock"})


def byok_applies(provider: str, credential_providers: Collection[str]) -> bool:
    """Whether a deployment of ``provider`` is called (and charged) with the caller's own credential, given the
    providers the caller has a credential for."""
    return provider in credential_providers and provider not in UNSUPPORTED_PROVIDERS
