"""When a gRPC service stops, and who says it serves: the process's signals, or the process it shares.

A service run alone (``python -m switchboard_auth``) stops on SIGTERM or SIGINT. Several services sharing one
process (:mod:`switchboard_common.shared_process`, ``make run``'s default) cannot each own those signals: the host
takes them and stops its services in order — the router, which still needs auth and billing to settle what its
calls consumed, before them. So a service's ``serve()`` waits on a :class:`Lifecycle` instead of on signals, and
sets ``serving`` once it answers, which is when its host starts the services that call it.
"""

from __future__ import annotations

import asyncio
import signal
from contextvars import ContextVar
from dataclasses import dataclass, field

#: The stages of a stop, each begun once the one before has ended: a service outlives the ones that call it (the
#: router settles what its calls consumed with billing; the facade's requests need all three).
STOP_ORDER: tuple[tuple[str, ...], ...] = (("facade",), ("router",), ("auth", "billing"))
#: The stages of a start, each begun once the one before serves: the reverse of the stop.
START_ORDER: tuple[tuple[str, ...], ...] = tuple(reversed(STOP_ORDER))

#: The service whose work is running: set by a host around each service it runs, read by the log formatter, so
#: that a shared process's log lines still name the service that wrote them.
CURRENT_SERVICE: ContextVar[str] = ContextVar("switchboard_service", default="")


@dataclass(frozen=True)
class Lifecycle:
    """The stop request a service waits for, and the sign it gives once it serves."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    serving: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def on_signals(cls) -> Lifecycle:
        """A service alone in its process: SIGTERM or SIGINT asks it to stop (call inside the running loop)."""
        lifecycle = cls()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lifecycle.stop.set)
        return lifecycle
