"""``python -m switchboard_common.shared_process auth billing router``: several gRPC services in one process.

Each service is its own deployable, and Kubernetes runs each in its own pods. On one machine (``make run``, the
embedded default) every Python process pays again for the interpreter, grpc, pydantic and SQLAlchemy: a bare
``grpc.aio`` server process holds about 37 MB before any of our code (docs/performance.md, Memory). So ``make
run`` hosts auth, billing and the router in one process, as Grafana Mimir's or Loki's monolithic mode hosts its
components: each keeps its own settings, gRPC server and port, health, clients, data and shutdown; they still
reach each other only over gRPC, so each does exactly what it does alone. The facade, which does most of the
HTTP work, keeps its own process (and so the second core).

- **Start**: in dependency order (:data:`switchboard_common.lifecycle.START_ORDER`: auth and billing, then the
  router), each stage once the one before serves.
- **Stop** (SIGTERM or SIGINT): in the reverse order, each stage once the one before has ended: the router first
  (it ends its calls and settles what they consumed with billing, which still serves), then auth and billing.
- **A service that ends by itself** (a crash, a port in use, a broken catalog) stops the others in the same
  order, and the process exits with that service's failure.
- **Logs** name the service whose work wrote each line (:data:`~switchboard_common.lifecycle.CURRENT_SERVICE`).
- **Metrics**: a process has one Prometheus registry, so the first service serves it, on
  ``SWITCHBOARD_METRICS_PORT``; every series of a gRPC server carries its ``service`` label.
- **Addresses**: each service listens on ``SWITCHBOARD_<NAME>_ADDRESS`` (what the others are told to call), else
  on its own default.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol, cast

from switchboard_common import runtime, tracing
from switchboard_common.lifecycle import CURRENT_SERVICE, START_ORDER, STOP_ORDER, Lifecycle
from switchboard_common.settings import ServiceSettings

log = logging.getLogger(__name__)

#: The services a shared process can host: the gRPC ones (the facade is an HTTP server with its own process).
HOSTABLE = ("auth", "billing", "router")


class Hosted(Protocol):
    """A service's ``hosted()`` (in its ``__main__``): its serve() as one of several in this process."""

    def __call__(self, listen: str | None, metrics_port: int,
                 lifecycle: Lifecycle) -> Coroutine[Any, Any, None]: ...


def process_name(names: Sequence[str]) -> str:
    """The name a shared process goes by (its log lines' default service, its traces' service name)."""
    return "+".join(names)


def checked(names: Sequence[str]) -> list[str]:
    """The services to host, in start order; a name that is not a gRPC service, or none at all, is refused."""
    unknown = [n for n in names if n not in HOSTABLE]
    if unknown or not names:
        raise ValueError(f"cannot host {', '.join(unknown) or 'nothing'}: name one or more of {', '.join(HOSTABLE)}")
    return [n for stage in START_ORDER for n in stage if n in names]


def importing(names: Sequence[str]) -> dict[str, Hosted]:
    """Each service's ``hosted()``, its modules imported: before the collector is tuned (``runtime.run`` freezes
    what is alive then, as it does for a service alone), so that what the imports built is never traversed again."""
    return {n: cast(Hosted, importlib.import_module(f"switchboard_{n}.__main__").hosted) for n in names}


async def host(hosted: dict[str, Hosted]) -> None:
    """Runs the services until SIGTERM or SIGINT, or until one of them ends by itself; re-raises a service's
    failure once the others have stopped."""
    settings = ServiceSettings()
    lifecycles = {n: Lifecycle() for n in hosted}
    tasks: dict[str, asyncio.Task[None]] = {}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopper = loop.create_task(stop.wait())
    metrics_port = settings.metrics_port
    try:
        for stage in START_ORDER:
            starting = [n for n in stage if n in hosted]
            for name in starting:
                token = CURRENT_SERVICE.set(name)  # the task (and all it starts) runs with its service's name
                try:
                    serving = hosted[name](os.environ.get(f"SWITCHBOARD_{name.upper()}_ADDRESS"), metrics_port,
                                           lifecycles[name])
                    tasks[name] = loop.create_task(_contained(serving), name=f"serve {name}")
                finally:
                    CURRENT_SERVICE.reset(token)
                metrics_port = 0  # one registry, served once
            ready = loop.create_task(_all_serving([lifecycles[n] for n in starting]))
            watched: list[asyncio.Future[Any]] = [ready, stopper, *tasks.values()]
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if stop.is_set() or any(t.done() for t in tasks.values()):
                break
        else:
            running: list[asyncio.Future[Any]] = [stopper, *tasks.values()]
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        ended = [n for n, t in tasks.items() if t.done()]
        for name in ended:
            log.error(f"{name} ended by itself; stopping the others", extra={"service_ended": name})
        await _stop_in_order(tasks, lifecycles)
    for name in ended:
        error = tasks[name].exception() if not tasks[name].cancelled() else None
        if isinstance(error, ServiceExited):
            raise SystemExit(error.code)
        if error is not None:
            raise error
    if ended:
        raise SystemExit(1)


class ServiceExited(Exception):
    """A hosted service asked to end the process (SystemExit: a start it refused, its reason already written)."""

    def __init__(self, code: int | str | None) -> None:
        super().__init__(code)
        self.code = code


async def _contained(serving: Coroutine[Any, Any, None]) -> None:
    """Runs a service's serve(); its SystemExit ends its task like any failure (the event loop would otherwise stop
    at once, the other services with it), so that the host stops the others in order, then exits as it asked."""
    try:
        await serving
    except SystemExit as exc:
        raise ServiceExited(exc.code) from None


async def _all_serving(lifecycles: Sequence[Lifecycle]) -> None:
    for lifecycle in lifecycles:
        await lifecycle.serving.wait()


async def _stop_in_order(tasks: dict[str, asyncio.Task[None]], lifecycles: dict[str, Lifecycle]) -> None:
    for stage in STOP_ORDER:
        stopping = [tasks[n] for n in stage if n in tasks]
        for name in stage:
            if name in lifecycles:
                lifecycles[name].stop.set()
        if stopping:
            await asyncio.wait(stopping)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        names = checked(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        sys.stderr.write(f"switchboard shared process: {exc}\n")
        raise SystemExit(2) from None
    name = process_name(names)
    tracing.setup(f"switchboard-{name}")
    runtime.run(name, host(importing(names)), ServiceSettings().log_level)


if __name__ == "__main__":
    main()
