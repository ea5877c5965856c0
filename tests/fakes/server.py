"""Run an ASGI app on a real loopback port in a background thread (every fake provider uses this)."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive ports, all free on every address, below the kernel's range of ephemeral
    ports: a port in that range may become a client connection's local port at any moment (any test's), and a
    later listen on it then fails."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        first = random.randrange(10_000, low - count)
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind(("0.0.0.0", port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} consecutive free ports below {low}")


class BackgroundServer:
    """A uvicorn server on its own thread and event loop, so it never shares the test's loop.

    The listening socket is bound before the thread starts, so the port is known
    and taken at once (no window in which another process could grab it).
    """

    def __init__(self, app: Any, *, lifespan: str = "off", name: str = "fake-provider", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: an answer's head and body go out at once, as a real provider's do,
        # instead of the body waiting for the client's delayed ACK of the head (40 ms on Linux).
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", port))  # 0: any free port; a given one: a server coming back on it
        self.port = int(self._sock.getsockname()[1])
        self.name = name
        # Idle connections are kept longer than an HTTP client's pool keeps them (httpx: 5 s), as a provider's
        # load balancer does: otherwise the client may reuse a connection the fake is closing at that instant.
        config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, loop="asyncio", http="h11", ws="none",
                                access_log=False, timeout_graceful_shutdown=1, timeout_keep_alive=60)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self._sock]))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self._sock.close()


class FakeProviderServer:
    """Lifecycle shared by fake providers that are their own ASGI app: start() before use, stop() after,
    reset() between tests (forget recorded requests, restore the default slowness)."""

    server_name = "fake-provider"
    requests: list[Any]
    slow_delay: float
    default_slow_delay: float
    _runner: BackgroundServer | None = None
    port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._runner = BackgroundServer(self, name=self.server_name).start()
        self.port = self._runner.port

    def reset(self) -> None:
        self.requests.clear()
        self.slow_delay = self.default_slow_delay

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()
