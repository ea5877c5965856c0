"""Custody facts of a request, as the answer's headers and the ledger both state them.

The custody path names each process that handled the request, ending in the
deployment that served it (``facade@host:pid>router@host:pid>openai:gpt-4o/0``;
an internal service calling the router directly is its first hop,
``grpc:<key alias>``). The PII summary carries the kinds and distinct-value
counts the router substituted, masked or found (``card=1,email=2``), never a
value. The facade writes them on the answer; the router, which settles the
call, writes the same in the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The answer's header with the PII summary; a refusal under the ``block`` policy carries it too, and the
#: ledger row of the refused request records what it says.
PII_HEADER = "x-switchboard-pii"


def custody_path(first_hop: str, router_instance: str = "", provider: str = "", deployment_id: str = "") -> str:
    """Each hop, ending in the deployment; only the first hop when no deployment was reached."""
    if not deployment_id:
        return first_hop
    router = f"router@{router_instance}" if router_instance else "router"
    return f"{first_hop}>{router}>{provider}:{deployment_id}"


def pii_summary(policy: str, counts: Mapping[str, int], reached: bool) -> str:
    """``card=1,email=2`` (kinds in alphabetical order), ``none`` when the policy found nothing, ``off`` when the
    policy is off; empty when no deployment was reached."""
    if not reached:
        return ""
    if policy in ("", "off"):
        return "off"
    return ",".join(f"{kind}={count}" for kind, count in sorted(counts.items())) or "none"
