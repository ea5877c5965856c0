"""The id of the request being served, for the router's log lines.

The servicer binds it when a call starts (each call runs in its own task, so
the binding is the call's own); code below it reads it with :func:`current`
instead of passing it through every signature.
"""

from __future__ import annotations

from contextvars import ContextVar

_CURRENT: ContextVar[str] = ContextVar("switchboard_request_id", default="")


def bind(request_id: str) -> None:
    """Makes ``request_id`` the current task's request id."""
    _CURRENT.set(request_id)


def current() -> str:
    """The current task's request id ("" outside a call)."""
    return _CURRENT.get()
