"""How a call that ended before its answer is recorded: by why it was cut, as far as the router knows.

A call is cut when its task is cancelled: the caller went away (a gRPC cancel, or an Exchange cancel), the caller's
deadline passed, the caller is shutting down, or this router is. An Exchange cancel says which of the caller's
reasons it is (``router.proto``'s ``CancelReason``); the session hands it to the call's task through :data:`CURRENT`
before cancelling it, and the call's settlement reads it here. A unary call's cancel says nothing: its client is
taken to have gone. What the provider consumed is billed whatever the reason; only the outcome recorded differs.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from switchboard.v1 import router_pb2
from switchboard_billing.client import (
    CALLER_SHUTDOWN,
    CANCELLED,
    CLIENT_CLOSED_REQUEST,
    CLIENT_DISCONNECTED,
    DEADLINE_EXCEEDED,
    ROUTER_SHUTDOWN,
)


@dataclass(frozen=True, slots=True)
class CutOutcome:
    """What the ledger records of a cut call."""

    status: str
    http_status: int
    error_code: str


_OUTCOMES = {
    router_pb2.CANCEL_REASON_CLIENT_GONE: CutOutcome(CANCELLED, CLIENT_CLOSED_REQUEST, CLIENT_DISCONNECTED),
    router_pb2.CANCEL_REASON_DEADLINE: CutOutcome("error", 503, DEADLINE_EXCEEDED),
    router_pb2.CANCEL_REASON_CALLER_SHUTDOWN: CutOutcome(CANCELLED, CLIENT_CLOSED_REQUEST, CALLER_SHUTDOWN),
}
_ROUTER_STOPPING = CutOutcome(CANCELLED, CLIENT_CLOSED_REQUEST, ROUTER_SHUTDOWN)


@dataclass(slots=True)
class CallCut:
    """The reason a caller gave for cutting one call (set before its task is cancelled)."""

    reason: router_pb2.CancelReason = router_pb2.CANCEL_REASON_CLIENT_GONE


#: The current call's cut, in the task that runs it (None: a call whose caller cannot say, a unary RPC's).
CURRENT: ContextVar[CallCut | None] = ContextVar("switchboard_call_cut", default=None)


def cut_outcome(router_stopping: bool) -> CutOutcome:
    """The outcome of the current call, cut now: this router's shutdown, else its caller's reason."""
    if router_stopping:
        return _ROUTER_STOPPING
    cut = CURRENT.get()
    return _OUTCOMES.get(cut.reason if cut is not None else router_pb2.CANCEL_REASON_CLIENT_GONE,
                         _OUTCOMES[router_pb2.CANCEL_REASON_CLIENT_GONE])
