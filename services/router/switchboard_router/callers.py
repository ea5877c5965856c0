"""Who is calling the router, and what a call carries through it (its ticket).

Two kinds of caller (see router.proto):

* the facade, a trusted service: its service token is in the metadata; it has
  authorized the caller's key and held its budget, and says so in the
  request's ``payer``, ``constraints`` and ``output_tokens_bound``;
* a key holder — an internal service calling directly: a virtual key in the
  ``authorization`` metadata; the router's gate (:mod:`switchboard_router.gate`)
  admits it exactly as the facade admits an HTTP caller.

A call without either is refused with UNAUTHENTICATED, saying what to send.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from switchboard.v1 import router_pb2
from switchboard_auth.client import Admitted
from switchboard_billing.client import Hold
from switchboard_common.errors import Kind, ServiceError
from switchboard_common.identity import ServiceIdentity


class Source(StrEnum):
    """How a call reached the gateway (the ledger's ``source``)."""

    HTTP = "http"
    GRPC = "grpc"


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller of one RPC (or of every call on one Exchange stream)."""

    #: True for the facade (its service token was presented).
    trusted: bool
    #: A key holder's virtual key ("" for a trusted caller).
    api_key: str = ""


@dataclass(slots=True)
class Ticket:
    """What one call carries through the router: who pays, what it may use, what was held for it."""

    payer: router_pb2.Payer
    constraints: router_pb2.RoutingConstraints
    #: The most output tokens the call may produce (0: no bound).
    output_bound: int
    source: Source
    #: A key holder's admission and hold, given back when the call ends (None for a trusted caller's).
    admitted: Admitted | None = None
    hold: Hold | None = None
    #: Monotonic time the router took the call.
    started: float = field(default_factory=time.perf_counter)


_MISSING = ("Send a Switchboard virtual key in the call's metadata: 'authorization: Bearer sk-...' "
            "(grpcurl -H 'authorization: Bearer sk-...'; see docs/grpc.md).")


def caller_of(metadata: Iterable[Any] | None, identity: ServiceIdentity) -> Caller:
    """The caller named by a call's metadata; raises the UNAUTHENTICATED ServiceError when there is none."""
    if identity.caller(metadata) == "facade":
        return Caller(trusted=True)
    for item in metadata or ():
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, credential = text.strip().partition(" ")
            if scheme.lower() == "bearer" and credential.strip():
                return Caller(trusted=False, api_key=credential.strip())
            raise ServiceError(Kind.ERROR_KIND_AUTHENTICATION, f"The authorization metadata is not a bearer key. "
                               f"{_MISSING}", code="invalid_api_key")
    raise ServiceError(Kind.ERROR_KIND_AUTHENTICATION, f"No API key was sent. {_MISSING}", code="missing_api_key")


def trusted_ticket(request: router_pb2.CompleteRequest) -> Ticket:
    """A facade's call: what it authorized and held, as it says."""
    payer = request.payer
    if not payer.key_id:  # an older facade: the key facts of the request itself
        payer = router_pb2.Payer(key_id=request.key_id, key_alias=request.key_alias)
    return Ticket(payer, request.constraints, request.output_tokens_bound, Source.HTTP)
