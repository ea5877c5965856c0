"""The privacy facts the facade reads from a request and writes on the answer.

Reading: a client may name the privacy tier it wants in the ``x-switchboard-privacy-tier`` header
or in the body's ``privacy_tier`` field (the OpenAI SDKs send it with ``extra_body``). The facade
only extracts and removes it from the body (it is the gateway's, not the provider's); the router,
which owns the configured tier order, combines it with the key's pin and refuses a looser or
unknown tier, so there is one source of truth for what "stricter" means.

Writing: the custody path names each process that handled the request, ending in the deployment
(``facade@host:pid>router@host:pid>provider:deployment``), and ``x-switchboard-pii`` carries the
kinds and counts of values the router substituted, masked or found.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from switchboard.v1 import router_pb2
from switchboard_facade.errors import invalid

TIER_HEADER = "x-switchboard-privacy-tier"
TIER_FIELD = "privacy_tier"
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


def custody_path(route: router_pb2.RouteInfo | None) -> str:
    """Each hop that handled the request, ending in the deployment that served it (only the facade
    when no deployment was reached)."""
    if route is None or not route.deployment_id:
        return f"facade@{INSTANCE}"
    router = f"router@{route.router_instance}" if route.router_instance else "router"
    return f"facade@{INSTANCE}>{router}>{route.provider}:{route.deployment_id}"


def pii_header(policy: str, route: router_pb2.RouteInfo | None) -> str:
    """``card=1,email=2`` (kinds in alphabetical order, distinct-value counts; never values), ``none`` when
    the key's policy found nothing, ``off`` when the policy is off; empty when no deployment was reached."""
    if route is None or not route.deployment_id:
        return ""
    if policy in ("", "off"):
        return "off"
    return ",".join(f"{kind}={count}" for kind, count in sorted(route.pii_counts.items())) or "none"
