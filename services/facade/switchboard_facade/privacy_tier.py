"""The privacy facts the facade reads from a request and writes on the answer.

Reading: a client may name the privacy tier it wants in the ``x-switchboard-privacy-tier`` header
or in the body's ``privacy_tier`` field (the OpenAI SDKs send it with ``extra_body``), and the
jurisdictions it may be served in in the ``x-switchboard-jurisdiction`` header or the body's
``jurisdiction`` field (``"ca"``, ``"ca,eu"`` or ``["ca", "eu"]``). The facade only extracts and
removes them from the body (they are the gateway's, not the provider's); the router, which owns the
configured tier order and the catalog's jurisdictions, combines them with the key's and refuses a looser
tier or a jurisdiction the key does not allow, so there is one source of truth for each rule.

Writing: ``x-switchboard-custody-path`` and ``x-switchboard-pii``, as :mod:`switchboard_rules.custody`
formats them (the router writes the same facts in the ledger).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from switchboard_facade.errors import invalid
from switchboard_router.client import RouteInfo
from switchboard_rules import custody
from switchboard_rules.jurisdictions import JurisdictionError, parse_jurisdictions

TIER_HEADER = "x-switchboard-privacy-tier"
TIER_FIELD = "privacy_tier"
JURISDICTION_HEADER = "x-switchboard-jurisdiction"
JURISDICTION_FIELD = "jurisdiction"
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"
"""This facade process in custody paths."""


def _clean(value: Any, source: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid(f"{source} must be a string naming a privacy tier (for example 'zero_retention').",
                      TIER_FIELD, "invalid_privacy_tier")
    return value.strip().lower()


def take_requested_tier(headers: Mapping[str, str], body: dict[str, Any]) -> str:
    """The tier the client asks for ("" when none), removing ``privacy_tier`` from ``body`` in place.

    Header and body may both be present only when they agree; otherwise the request is ambiguous (400).
    """
    header = _clean(headers.get(TIER_HEADER), f"The {TIER_HEADER} header")
    field = _clean(body.pop(TIER_FIELD, None), f"The body's '{TIER_FIELD}' field")
    if header and field and header != field:
        raise invalid(f"The {TIER_HEADER} header ({header!r}) and the body's '{TIER_FIELD}' ({field!r}) disagree; "
                      "send one of them.", TIER_FIELD, "conflicting_privacy_tier")
    return header or field


def _places(value: Any, source: str) -> tuple[str, ...]:
    try:
        return parse_jurisdictions(value, source)
    except JurisdictionError as exc:
        raise invalid(str(exc), JURISDICTION_FIELD, "invalid_jurisdiction") from None


def take_requested_jurisdictions(headers: Mapping[str, str], body: dict[str, Any]) -> list[str]:
    """The jurisdictions the client asks to be served in ([] when none), removing ``jurisdiction`` from ``body``
    in place. Header and body may both be present only when they name the same jurisdictions."""
    header = _places(headers.get(JURISDICTION_HEADER), f"The {JURISDICTION_HEADER} header")
    field = _places(body.pop(JURISDICTION_FIELD, None), f"The body's '{JURISDICTION_FIELD}' field")
    if header and field and set(header) != set(field):
        raise invalid(f"The {JURISDICTION_HEADER} header ({', '.join(header)}) and the body's "
                      f"'{JURISDICTION_FIELD}' ({', '.join(field)}) disagree; send one of them.", JURISDICTION_FIELD,
                      "conflicting_jurisdiction")
    return list(header or field)


def custody_path(route: RouteInfo | None) -> str:
    """This facade, then the router and the deployment that served (see :mod:`switchboard_rules.custody`)."""
    if route is None:
        return f"facade@{INSTANCE}"
    return custody.custody_path(f"facade@{INSTANCE}", route.router_instance, route.provider, route.deployment_id)


def pii_header(policy: str, route: RouteInfo | None) -> str:
    """The PII summary of the answer (see :mod:`switchboard_rules.custody`)."""
    if route is None:
        return ""
    return custody.pii_summary(policy, route.pii_counts, bool(route.deployment_id))
