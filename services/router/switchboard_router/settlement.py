"""Settlement of every call the router accepted: exactly once, from where the provider answered.

The router is the one place that knows what every call consumed — the
provider's usage, or what a cut stream delivered — whoever the caller is and
whenever it goes away. So it settles every call it took (the facade's and
internal services' alike, succeeded, failed or cancelled) through its billing
client's durable outbox, however the call ends: a caller that dies at any
instant after the provider answered leaves no call unbilled. A stream is
settled before its end is sent; a whole answer on the Exchange stream as soon as
it is written (or the stream broke), so that its journal record is not on the
answer's way to the caller, and on a unary RPC before it is returned. The usage
event names the hold the call was admitted under, so the
settlement frees it in billing's ledger transaction; billing's idempotency by
request id makes a replayed journal harmless. The facade settles only what
never reached the router.

A stream is also recorded while it runs (:meth:`Settlement.progress`): if the
router dies before the stream ends, the next router bills it as its last such
record — what had been relayed by then — with the code :data:`ROUTER_LOST`.
"""

from __future__ import annotations

import time

from switchboard.v1 import common_pb2, router_pb2
from switchboard_billing.client import CANCELLED, CLIENT_CLOSED_REQUEST, BillingClient, UsageEvent
from switchboard_common.errors import ServiceError
from switchboard_router.callers import Ticket
from switchboard_router.gate import Gate
from switchboard_router.route_metrics import record_tokens
from switchboard_rules.custody import PII_HEADER, custody_path, pii_summary

#: The error code of a stream the router ended without settling (it died): billed for what it had relayed at its
#: last progress record, recorded as a cut stream (``cancelled``, 499) like one the router's shutdown ended.
ROUTER_LOST = "router_lost"


class Settlement:
    def __init__(self, billing: BillingClient, gate: Gate) -> None:
        self.billing = billing
        self.gate = gate

    def settle(self, request: router_pb2.CompleteRequest, ticket: Ticket, *, status: str, http_status: int,
               usage: common_pb2.Usage | None = None, route: router_pb2.RouteInfo | None = None,
               error_code: str = "", ttft_ms: float = 0.0, stream: bool = False, response_id: str = "",
               provider_ms: float = 0.0, pii: str = "") -> None:
        """Journals the call's usage for billing (never blocks on it), then gives back a key holder's admission
        and hold."""
        event = self._event(request, ticket, status=status, http_status=http_status, usage=usage, route=route,
                            error_code=error_code, ttft_ms=ttft_ms, stream=stream, response_id=response_id,
                            provider_ms=provider_ms, pii=pii)
        if route is not None:
            record_tokens(request.model, route, event.usage, ticket.payer.team_id, event.source)
        self.billing.settle(event)
        if ticket.admitted is not None or ticket.hold is not None:
            self.gate.finish(ticket, usage)

    def progress(self, request: router_pb2.CompleteRequest, ticket: Ticket, *, usage: common_pb2.Usage,
                 route: router_pb2.RouteInfo | None, ttft_ms: float, response_id: str) -> None:
        """Records a stream still running as it would be billed if the router died now: what it relayed so far, as
        a cut stream with the code :data:`ROUTER_LOST`. Its settlement supersedes the record; nothing is given
        back."""
        self.billing.progress(self._event(
            request, ticket, status=CANCELLED, http_status=CLIENT_CLOSED_REQUEST, error_code=ROUTER_LOST,
            usage=usage, route=route, ttft_ms=ttft_ms, stream=True, response_id=response_id))

    def _event(self, request: router_pb2.CompleteRequest, ticket: Ticket, *, status: str, http_status: int,
               usage: common_pb2.Usage | None, route: router_pb2.RouteInfo | None, error_code: str,
               ttft_ms: float, stream: bool, response_id: str, provider_ms: float = 0.0,
               pii: str = "") -> UsageEvent:
        """The call's usage event, as billing records it."""
        payer = ticket.payer
        reached = route is not None and bool(route.deployment_id)
        event = UsageEvent(
            request_id=request.request_id, key_id=payer.key_id, key_alias=payer.key_alias, team_id=payer.team_id,
            model=request.model, status=status, http_status=http_status,
            latency_ms=(time.perf_counter() - ticket.started) * 1000, ttft_ms=ttft_ms,
            started_at_ms=payer.started_at_ms or int(time.time() * 1000), stream=stream, error_code=error_code,
            privacy_tier=route.privacy_tier if route is not None and route.privacy_tier
            else ticket.constraints.privacy_tier,
            required_privacy_tier=route.required_privacy_tier if route is not None
            else ticket.constraints.privacy_tier,
            custody_path=custody_path(payer.custody_hop or "facade", route.router_instance if route else "",
                                      route.provider if route else "", route.deployment_id if route else ""),
            pii=pii or pii_summary(payer.pii_policy, route.pii_counts if route else {}, reached),
            pii_policy=payer.pii_policy or "off", source=ticket.source.value, response_id=response_id[:120],
            lease_id=payer.lease_id, lease_unit_micros=payer.held_micros if payer.lease_id else 0,
            user_id=payer.user_id, provider_ms=provider_ms)
        # Copied as slices, and only when there are some: a message's repeated field read as an iterable ends in
        # an IndexError, which costs more than the copy.
        if payer.tags:
            event.tags.extend(payer.tags[:])
        if payer.watched_budgets:
            event.watched_budgets.extend(payer.watched_budgets[:])
        if usage is not None:
            event.usage.CopyFrom(usage)
        if route is not None:
            event.deployment_id = route.deployment_id
            event.provider = route.provider
            event.upstream_model = route.upstream_model
            event.jurisdiction = route.jurisdiction
            event.byok = route.byok
            event.attempts = route.attempts
        return event

    def failed(self, request: router_pb2.CompleteRequest, ticket: Ticket, err: ServiceError, *,
               stream: bool = False) -> None:
        """A call that ended in a typed error before any answer (nothing consumed that the provider reported)."""
        self.settle(request, ticket, status="error", http_status=err.http_status, error_code=err.error.code,
                    stream=stream, pii=err.error.headers.get(PII_HEADER, ""))  # what a block refusal found
