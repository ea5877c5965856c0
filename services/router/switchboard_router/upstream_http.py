"""The router's one HTTP seam to providers: a pooled client per deployment, and the failures it reports.

Every provider call goes through an :class:`UpstreamPool`. The production pool (:class:`HttpPool`) keeps its own
keep-alive HTTP/1.1 connections (:class:`~switchboard_router.upstream_connection.Connection`): little work per call.
It keeps no cookies, never follows redirects and never raises on an HTTP error status: the caller reads the status
and lets the provider's adapter interpret the body. URLs go out byte for byte when already encoded, so a signed
request (SigV4) reaches the provider exactly as signed.

Failures leave this module as the three exception types of :mod:`switchboard_router.upstream_errors`, so that
callers classify them without knowing how the call was made.

The pool honours the usual environment for proxies and CA certificates (see
:mod:`switchboard_router.upstream_env`): an HTTPS provider behind a proxy is reached through a ``CONNECT`` tunnel,
a plain-HTTP one by sending the proxy the absolute URL.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlsplit

import aiohappyeyeballs

from switchboard_router.deployment import Timeouts
from switchboard_router.providers.base import UpstreamRequest
from switchboard_router.upstream_connection import Connection, TunnelRefused
from switchboard_router.upstream_env import EnvironmentProxies, ProxyRoute, tls_context
from switchboard_router.upstream_errors import CallTimeout, ConnectTimeout, ReadTimeout, TransportError

__all__ = ["Answer", "CallTimeout", "ConnectTimeout", "HttpPool", "PoolFactory", "ReadTimeout", "TransportError",
           "UpstreamPool", "UpstreamStream", "lowercase_headers"]

log = logging.getLogger(__name__)

#: Seconds an idle pooled connection is kept open for the next call.
KEEPALIVE_SECONDS = 60.0
#: Seconds before the next address of a provider's name is tried while the last has not answered (RFC 8305's
#: recommended 250 ms).
HAPPY_EYEBALLS_DELAY = 0.25
#: What a URL may hold as it is (RFC 3986 unreserved and reserved characters, and percent-escapes).
_ENCODED_URL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
_ENCODED = frozenset(_ENCODED_URL_CHARS)
#: Distinct URLs a pool remembers the parsed form of (a deployment uses a handful).
_URL_CACHE_SIZE = 64
#: Sent with every request unless the adapter set its own.
_ACCEPT_ENCODING = "gzip, deflate"
_USER_AGENT = "Switchboard"


def lowercase_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Response headers as a plain dict with lower-case names; repeated headers joined with ", "."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


@dataclass(slots=True)
class Answer:
    """A provider's whole answer."""

    status: int
    body: bytes
    #: The response headers as received (names lower-case from the pool; any case from a test double); read
    #: through :meth:`headers`.
    raw_headers: Mapping[str, str]

    def headers(self) -> dict[str, str]:
        """The response headers, names lower-case (what ``parse_error`` implementations read)."""
        return lowercase_headers(self.raw_headers)


class UpstreamStream(Protocol):
    """A provider's answer whose headers have arrived and whose body is read piece by piece."""

    status: int

    def headers(self) -> dict[str, str]:
        """The response headers, names lower-case (what ``parse_error`` implementations read)."""
        ...

    async def read(self) -> bytes:
        """The rest of the body (used for error answers)."""
        ...

    async def next_chunk(self) -> bytes:
        """The next bytes of the body as they arrive; ``b""`` once it has ended."""
        ...

    def close(self) -> None:
        """Ends the exchange; a body not read to its end closes the connection (the provider sees a cancel)."""
        ...


class UpstreamPool(Protocol):
    """One deployment's connection pool."""

    async def fetch(self, request: UpstreamRequest, within: float | None = None) -> Answer:
        """Sends ``request`` and reads the whole answer; raises :class:`CallTimeout` when that takes longer than
        ``within`` seconds, waiting for a connection included."""
        ...

    async def open_stream(self, request: UpstreamRequest) -> UpstreamStream:
        """Sends ``request`` and returns once the answer's headers have arrived."""
        ...

    async def aclose(self) -> None:
        ...


#: Builds the pool of one deployment from its timeouts and the connection limit.
PoolFactory = Callable[[Timeouts, int], UpstreamPool]


@dataclass(frozen=True, slots=True)
class _Target:
    """Where one URL's requests go and what their head starts with; decided once per URL."""

    #: The pool's key for the connections that can carry it.
    origin: tuple[str, str, int, ProxyRoute | None]
    host: str
    port: int
    tls: bool
    #: ``{target} HTTP/1.1\r\nHost: ...\r\n`` plus any proxy header: what follows the method.
    head: str
    proxy: ProxyRoute | None
    #: A proxy tunnel's ``CONNECT`` request (HTTPS through a proxy), else None.
    connect: bytes | None


def _target_of(url: str, proxy: ProxyRoute | None) -> _Target:
    if not _ENCODED.issuperset(url):
        url = quote(url, safe=_ENCODED_URL_CHARS)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError(f"its URL is not an http(s) URL: {parts.scheme}://{parts.netloc}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    authority = parts.netloc.rpartition("@")[2]
    if parts.port is not None and parts.port == (443 if tls else 80):
        authority = authority.rsplit(":", 1)[0]  # as SigV4 signs it: no default port in Host
    origin_form = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    extra = ""
    connect = None
    if proxy is None:
        target = origin_form
    elif tls:
        target = origin_form
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        host_port = f"{host}:{port}"
        auth = f"Proxy-Authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
        connect = f"CONNECT {host_port} HTTP/1.1\r\nHost: {host_port}\r\n{auth}\r\n".encode()
    else:
        target = f"{parts.scheme}://{authority}{origin_form}"
        if proxy.authorization:
            extra = f"Proxy-Authorization: {proxy.authorization}\r\n"
    head = f" {target} HTTP/1.1\r\nHost: {authority}\r\n{extra}"
    return _Target((parts.scheme, parts.hostname, port, proxy), parts.hostname, port, tls, head, proxy, connect)


def _request_head(method: str, target: _Target, headers: Mapping[str, str], length: int) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    if lines.count("\n") != len(headers) or lines.count("\r") != len(headers):
        raise TransportError("a request header holds a line break")
    if "accept-encoding" not in headers and "Accept-Encoding" not in headers:
        lines += f"Accept-Encoding: {_ACCEPT_ENCODING}\r\n"
    if "user-agent" not in headers and "User-Agent" not in headers:
        lines += f"User-Agent: {_USER_AGENT}\r\n"
    if length or method == "POST":
        lines += f"Content-Length: {length}\r\n"
    return f"{method}{target.head}{lines}\r\n".encode()


#: A connection failure's reason for clients, most specific class first (the error itself is only logged).
_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (socket.gaierror, "its host name could not be resolved"),
    (ssl.SSLCertVerificationError, "its TLS certificate was not accepted"),
    (ssl.SSLError, "the TLS handshake failed"),
    (ConnectionRefusedError, "the connection was refused or could not be opened"),
    (ConnectionResetError, "the connection was reset"),
)


def _connect_error(exc: BaseException, target: _Target, timeout: float) -> Exception:
    if isinstance(exc, TimeoutError):
        return ConnectTimeout(f"no connection within {timeout:g} s")
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, TunnelRefused):
        reason = f"the proxy refused the tunnel ({exc.status_line})"
    elif target.proxy is not None and isinstance(exc, OSError) and not isinstance(exc, socket.gaierror | ssl.SSLError):
        reason = "the proxy could not be reached"
    else:
        reason = next((text for kind, text in _REASONS if isinstance(exc, kind)),
                      "the connection was refused or could not be opened")
    log.info("provider connection failed", extra={"reason": reason, "error": repr(exc)})
    error = TransportError(reason)
    error.__cause__ = exc
    return error


async def _connect(loop: asyncio.AbstractEventLoop, connection: Connection, host: str, port: int, tls: bool) -> None:
    """Connects ``connection`` to ``host``: every address the name resolves to, IPv6 and IPv4 interleaved, the next
    one tried :data:`HAPPY_EYEBALLS_DELAY` after the last if it has not answered yet (RFC 8305), so an address family
    that is unroutable here costs a quarter second, not the connect timeout; then TLS when asked."""
    addresses = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    sock = await aiohappyeyeballs.start_connection(addresses, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, loop=loop)
    try:
        await loop.create_connection(lambda: connection, sock=sock, ssl=tls_context() if tls else None,
                                     server_hostname=host if tls else None)
    except BaseException:
        sock.close()
        raise


class _Stream:
    """A stream's answer on a lent connection, given back to the pool once read to its end."""

    __slots__ = ("_pool", "_connection", "status", "_done")

    def __init__(self, pool: HttpPool, connection: Connection) -> None:
        self._pool = pool
        self._connection = connection
        self.status = connection.status
        self._done = False

    def headers(self) -> dict[str, str]:
        return dict(self._connection.headers)

    async def read(self) -> bytes:
        pieces = []
        while piece := await self.next_chunk():
            pieces.append(piece)
        return b"".join(pieces)

    async def next_chunk(self) -> bytes:
        piece = await self._connection.next_piece()
        if not piece:
            self.close()
        return piece

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._pool._give_back(self._connection)


class HttpPool:
    """A deployment's keep-alive connections, at most ``max_connections`` lent at once.

    ``connect`` bounds waiting for a free connection plus TCP, TLS and any proxy tunnel; ``first_byte`` is the
    longest silence while reading a whole answer, or a stream's until its headers are in. The deployment's
    ``total`` bounds the call from outside. A connection goes back to the pool only when its answer was read to the
    end and kept alive; the last one given back is lent first, and one idle for :data:`KEEPALIVE_SECONDS` is closed.
    """

    def __init__(self, timeouts: Timeouts, max_connections: int) -> None:
        self._timeouts = timeouts
        self._limit = max(1, max_connections)
        self._lent = 0
        self._idle: dict[Hashable, list[Connection]] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._proxies = EnvironmentProxies()
        self._targets: dict[str, _Target] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) >= _URL_CACHE_SIZE:
                self._targets.clear()
            target = self._targets[url] = _target_of(url, self._proxies.route(url))
        return target

    async def fetch(self, request: UpstreamRequest, within: float | None = None) -> Answer:
        target = self._target(request.url)
        head = _request_head(request.method, target, request.headers, len(request.content))
        deadline = None if within is None else asyncio.get_running_loop().time() + within
        connection = await self._lend(target, deadline)
        try:
            connection.send(head, request.content, False, self._timeouts.first_byte, deadline)
            body = await connection.whole()
        except BaseException:
            connection.abort()
            self._give_back(connection)
            raise
        self._give_back(connection)
        return Answer(connection.status, body, connection.headers)

    async def open_stream(self, request: UpstreamRequest) -> UpstreamStream:
        target = self._target(request.url)
        head = _request_head(request.method, target, request.headers, len(request.content))
        connection = await self._lend(target)
        try:
            connection.send(head, request.content, True, self._timeouts.first_byte)
            await connection.head()
        except BaseException:
            connection.abort()
            self._give_back(connection)
            raise
        return _Stream(self, connection)

    async def aclose(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for connections in self._idle.values():
            for connection in connections:
                connection.abort()
        self._idle.clear()

    # -- lending ---------------------------------------------------------------------------------------------

    async def _lend(self, target: _Target, deadline: float | None = None) -> Connection:
        """A connection to ``target``: an idle one at once, else one freed or opened within the connect timeout,
        or before ``deadline`` (loop time) when that comes sooner (then :class:`CallTimeout`)."""
        idle = self._idle.get(target.origin)
        loop = asyncio.get_running_loop()
        if idle and self._lent < self._limit:
            oldest = loop.time() - KEEPALIVE_SECONDS
            while idle:
                connection = idle.pop()
                if not connection.lost and connection.idle_since > oldest:
                    self._lent += 1
                    return connection
                connection.abort()
        timeout = limit = self._timeouts.connect
        if deadline is not None and deadline - loop.time() < timeout:
            limit = max(0.0, deadline - loop.time())
        try:
            async with asyncio.timeout(limit):
                while self._lent >= self._limit:
                    waiter = asyncio.get_running_loop().create_future()
                    self._waiters.append(waiter)
                    try:
                        await waiter
                    except BaseException:
                        if waiter.done() and not waiter.cancelled():
                            self._wake_one()  # woken but leaving: the turn passes on
                        else:
                            self._discard_waiter(waiter)
                        raise
                    idle = self._idle.get(target.origin)
                    if idle and self._lent < self._limit:
                        connection = idle.pop()
                        if not connection.lost:
                            self._lent += 1
                            return connection
                self._lent += 1
                try:
                    return await self._open(target)
                except BaseException:
                    self._lent -= 1
                    self._wake_one()
                    raise
        except (OSError, TimeoutError, TunnelRefused, TransportError) as exc:
            if isinstance(exc, TimeoutError) and limit < timeout:
                raise CallTimeout("the call took longer than its time limit, waiting for a connection") from exc
            raise _connect_error(exc, target, timeout) from exc

    async def _open(self, target: _Target) -> Connection:
        loop = asyncio.get_running_loop()
        connection = Connection(loop, target.origin, self._forget)
        proxy = target.proxy
        try:
            if proxy is None:
                await _connect(loop, connection, target.host, target.port, target.tls)
                return connection
            await _connect(loop, connection, proxy.host, proxy.port, proxy.tls)
            if target.connect is not None:
                await connection.tunnel(target.connect)
                assert connection.transport is not None
                transport = await loop.start_tls(connection.transport, connection, tls_context(),
                                                 server_hostname=target.host)
                if transport is None:
                    raise TransportError("the TLS handshake failed")
                connection.transport = transport
            return connection
        except BaseException:
            connection.abort()
            raise

    def _give_back(self, connection: Connection) -> None:
        """Ends a lent connection's call: kept for the next one when it can carry it, else closed."""
        self._lent -= 1
        if connection.finish() and not self._closed:
            connection.idle_since = asyncio.get_running_loop().time()
            origin_idle = self._idle.get(connection.origin)
            if origin_idle is None:
                origin_idle = self._idle[connection.origin] = []
            origin_idle.append(connection)
            if self._sweep is None:
                self._sweep = asyncio.get_running_loop().call_later(KEEPALIVE_SECONDS, self._sweep_idle)
        else:
            connection.abort()
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _discard_waiter(self, waiter: asyncio.Future[None]) -> None:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass

    def _forget(self, connection: Connection) -> None:
        """A connection closed: an idle one leaves the pool."""
        idle = self._idle.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)

    def _sweep_idle(self) -> None:
        self._sweep = None
        oldest = asyncio.get_running_loop().time() - KEEPALIVE_SECONDS
        remaining = False
        for connections in self._idle.values():
            for connection in [c for c in connections if c.idle_since <= oldest]:
                connections.remove(connection)
                connection.abort()
            remaining = remaining or bool(connections)
        if remaining and not self._closed:
            self._sweep = asyncio.get_running_loop().call_later(KEEPALIVE_SECONDS, self._sweep_idle)
