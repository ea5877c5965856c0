"""The router's door for key holders: an internal service's call admitted exactly as an HTTP caller's.

The facade authorizes HTTP callers before it calls the router; an internal
service calls the router directly with its virtual key, so the router does the
same steps itself, through the same clients: the key verified (cache and
pushed invalidation: a revoked key stops within a second) and admitted against
its rate limits (:class:`~switchboard_auth.client.AuthClient`), its budget held
(:class:`~switchboard_billing.client.BillingClient`, leases included), and its
models, privacy tier, jurisdictions, PII policy and own provider credentials
turned into the call's constraints. The call is then served and settled like any other, with
``source: grpc``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from switchboard.v1 import router_pb2
from switchboard_auth.client import AuthClient, KeyContext, resolve_model
from switchboard_billing.client import BillingClient, watched_budgets
from switchboard_common.errors import Kind, ServiceError
from switchboard_router.callers import Source, Ticket
from switchboard_router.operations import Operation
from switchboard_rules import request_fields
from switchboard_translate.output_bound import requested_choices, requested_output_tokens
from switchboard_translate.prompt_bound import prompt_tokens_bound

#: Bytes per token when estimating a prompt for admission (a token is never shorter than a byte).
_BYTES_PER_TOKEN = 4


def constraints_of(key: KeyContext, asked: router_pb2.RoutingConstraints,
                   allowed_models: list[str]) -> router_pb2.RoutingConstraints:
    """What the key may use (``allowed_models``: the key's, as its aliases leave them); of the caller's own
    constraints only the privacy tier and the jurisdictions it asks for count (the router refuses a tier looser
    than the key's and jurisdictions outside the key's)."""
    return router_pb2.RoutingConstraints(
        allowed_models=allowed_models, privacy_tier=key.privacy_tier, jurisdictions=key.jurisdictions,
        pii_policy=key.pii_policy, requested_privacy_tier=asked.requested_privacy_tier.strip().lower(),
        requested_jurisdictions=asked.requested_jurisdictions, credential_providers=key.credential_providers)


def check_fields(body: dict[str, Any], operation: Operation) -> None:
    """The 400 (INVALID_ARGUMENT) of a body whose common fields, or chat messages, are malformed."""
    try:
        request_fields.check_common_fields(body)
        if operation is Operation.COMPLETE:
            request_fields.check_chat_messages(body)
    except request_fields.FieldError as exc:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, exc.message, param=exc.param, code=exc.code,
                           http_status=400) from None



#: Longest part of a caller's own request id kept in the call's ledger id (the id is at most 64 characters).
_CALLER_ID_CHARS = 40


def call_id_for(caller_request_id: str) -> str:
    """The ledger id of a key holder's call: the caller's id (cut to 40 characters, for finding the row) and
    ``~`` and a random suffix, so that every call gets a row of its own whatever id its caller sends."""
    return f"{caller_request_id[:_CALLER_ID_CHARS]}~{secrets.token_hex(8)}"


class Gate:
    def __init__(self, auth: AuthClient, billing: BillingClient) -> None:
        self.auth = auth
        self.billing = billing

    async def verify(self, api_key: str) -> KeyContext:
        return await self.auth.verify(api_key)

    async def admit(self, api_key: str, request: router_pb2.CompleteRequest, body: dict[str, Any],
                    operation: Operation) -> Ticket:
        """Admits and holds one call of a key holder; raises the typed ServiceError of a refusal. Its body is
        checked as the facade checks an HTTP caller's, before anything is counted against the key."""
        check_fields(body, operation)
        # The ledger's key and the hold's id must be the gateway's: a caller reusing its own id (or another
        # caller's) would otherwise be served again and settled as a duplicate of the first call, unbilled.
        request.request_id = call_id_for(request.request_id)
        started_at_ms = int(time.time() * 1000)
        size = len(request.body)
        admitted = await self.auth.admit(api_key, model=request.model, request_id=request.request_id,
                                         estimated_tokens=max(1, size // _BYTES_PER_TOKEN))
        key = admitted.key
        request.model, allowed_models = resolve_model(key, request.model)  # the key's own model names
        try:
            hold = await self.billing.hold(request_id=request.request_id, key=key, model=request.model,
                                           prompt_tokens_bound=prompt_tokens_bound(body, size),
                                           max_output_tokens=requested_output_tokens(body),
                                           started_at_ms=started_at_ms,
                                           choices=requested_choices(body) if operation.bounded else 1)
        except ServiceError:
            self.auth.release(admitted)  # refused after admission: give the rate-limit slot back
            raise
        payer = router_pb2.Payer(key_id=key.key_id, key_alias=key.key_alias, team_id=key.team_id,
                                 lease_id=hold.lease_id, held_micros=hold.micros,
                                 started_at_ms=hold.started_at_ms,
                                 custody_hop=f"grpc:{key.key_alias or key.key_id}", pii_policy=key.pii_policy or "off",
                                 user_id=key.user_id, tags=key.tags, watched_budgets=watched_budgets(key))
        return Ticket(payer, constraints_of(key, request.constraints, allowed_models), hold.output_tokens,
                      Source.GRPC, admitted=admitted, hold=hold)

    def finish(self, ticket: Ticket, usage: Any) -> None:
        """A key holder's call ended: its rate-limit admission and its hold are given back."""
        self.auth.release(ticket.admitted, usage)
        self.billing.end(ticket.hold)
