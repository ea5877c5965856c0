"""Where an administrative change comes from (request id, client IP, user agent, door), carried from the facade
to the service that makes the change as the contract's ``AuditOrigin`` message.

The facade sets it once per admin request (:func:`begin`); the client packages put it in every admin call they
make while that request runs (a context variable, so the many admin calls of the routes, the dashboard and the
key checks need no extra argument, and nothing leaks between concurrent requests).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from switchboard.v1 import common_pb2

#: Longest user agent kept.
MAX_USER_AGENT = 400


@dataclass(frozen=True, slots=True)
class Origin:
    request_id: str = ""
    client_ip: str = ""
    user_agent: str = ""
    #: "api" (the admin API, the CLI) or "dashboard".
    channel: str = ""


_CURRENT: ContextVar[Origin | None] = ContextVar("switchboard_audit_origin", default=None)


def begin(origin: Origin) -> None:
    """The origin of the admin request running in this context."""
    _CURRENT.set(Origin(origin.request_id[:80], origin.client_ip[:64], origin.user_agent[:MAX_USER_AGENT],
                        origin.channel[:20]))


def current() -> Origin | None:
    return _CURRENT.get()


def message(origin: Origin | None = None) -> common_pb2.AuditOrigin:
    """The origin (the current one by default) as the contract's message; empty when none is set."""
    o = origin if origin is not None else current()
    if o is None:
        return common_pb2.AuditOrigin()
    return common_pb2.AuditOrigin(request_id=o.request_id, client_ip=o.client_ip, user_agent=o.user_agent,
                                  channel=o.channel)


def of_message(m: common_pb2.AuditOrigin) -> Origin:
    return Origin(m.request_id, m.client_ip, m.user_agent, m.channel)
