"""The router's one HTTP seam to providers: a pooled client per deployment, and the failures it reports.

Every provider call goes through an :class:`UpstreamPool`. The production pool
(:class:`HttpPool`) is an aiohttp session with its own keep-alive connection
pool: little work per call. It keeps no cookies, never follows redirects and
never raises on an HTTP error status: the caller reads the status and lets the
provider's adapter interpret the body.

Failures leave this module as three exception types, so that callers classify
them without knowing the client library:

* :class:`ConnectTimeout` — no connection within the deployment's ``connect``
  timeout (waiting for a free pooled connection included);
* :class:`ReadTimeout` — connected, but the provider fell silent for longer than
  the deployment's ``first_byte`` timeout (whole answers, and streams until their
  headers are in; after that the stream pump times its reads itself, see
  :mod:`switchboard_router.streaming`);
* :class:`TransportError` — the connection could not be made or broke off.

The class names appear in the error messages clients see ("did not answer within
its connect timeout (ConnectTimeout)").

The pool honours the usual environment for proxies and CA certificates (see
:mod:`switchboard_router.upstream_env`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from yarl import URL

from switchboard_router.deployment import Timeouts
from switchboard_router.providers.base import UpstreamRequest
from switchboard_router.upstream_env import EnvironmentProxies, tls_context

log = logging.getLogger(__name__)

#: Seconds an idle pooled connection is kept open for the next call.
KEEPALIVE_SECONDS = 60.0
#: Seconds a resolved host name is reused before it is looked up again.
DNS_CACHE_SECONDS = 60
#: Aborted TLS connections must be closed by hand on these Pythons (CPython issue 118960).
_NEEDS_CLEANUP_CLOSED = sys.version_info < (3, 12, 8) or (3, 13, 0) <= sys.version_info < (3, 13, 1)


#: What a URL may hold as it is (RFC 3986 unreserved and reserved characters, and percent-escapes).
_ENCODED_URL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%")
#: Longest header line accepted from a provider, bytes.
_MAX_HEADER_LINE = 16 * 1024
#: Distinct URLs a pool remembers the parsed form of (a deployment uses a handful).
_URL_CACHE_SIZE = 64


def upstream_url(url: str) -> URL:
    """``url`` as it goes out: byte for byte when already encoded, else with what needs it percent-encoded.

    Adapters encode what they put in a URL (a Bedrock model id's ``:`` as ``%3A``), and
    a signed request (SigV4) must reach the provider exactly as signed: re-normalising
    the escapes would break the signature.
    """
    return URL(url, encoded=True) if _ENCODED_URL_CHARS.issuperset(url) else URL(url)


class TransportError(Exception):
    """The provider could not be reached, or the connection broke off mid-answer.

    Its text is a short reason a client may read ("the connection was refused"); the HTTP client's own message —
    host names, addresses, proxy and TLS details of the operator's network — is only logged."""


class ConnectTimeout(Exception):
    """No connection to the provider within the deployment's connect timeout."""


class ReadTimeout(Exception):
    """The provider went silent for longer than the deployment's first_byte timeout."""


def seam_error(exc: BaseException) -> Exception:
    """The seam's name for a failure of the HTTP client."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeout(str(exc))
    if isinstance(exc, TimeoutError):
        return ReadTimeout(str(exc))
    reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), "the connection failed")
    log.info("provider connection failed", extra={"reason": reason, "error": repr(exc)})
    return TransportError(reason)


#: What a client is told about a transport failure, most specific class first.
_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (aiohttp.ClientConnectorDNSError, "its host name could not be resolved"),
    (aiohttp.ClientConnectorCertificateError, "its TLS certificate was not accepted"),
    (aiohttp.ClientSSLError, "the TLS handshake failed"),
    (aiohttp.ClientProxyConnectionError, "the proxy could not be reached"),
    (aiohttp.ClientConnectorError, "the connection was refused or could not be opened"),
    (aiohttp.ServerDisconnectedError, "it closed the connection without an answer"),
    (aiohttp.ClientPayloadError, "its answer was cut off"),
    (ConnectionResetError, "the connection was reset"),
)


#: What the HTTP client raises when a call fails (timeouts included: they are OSErrors).
CLIENT_ERRORS = (aiohttp.ClientError, OSError)


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
    #: The response headers as received (a multi-dict for aiohttp); read through :meth:`headers`.
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

    async def fetch(self, request: UpstreamRequest) -> Answer:
        """Sends ``request`` and reads the whole answer."""
        ...

    async def open_stream(self, request: UpstreamRequest) -> UpstreamStream:
        """Sends ``request`` and returns once the answer's headers have arrived."""
        ...

    async def aclose(self) -> None:
        ...


#: Builds the pool of one deployment from its timeouts and the connection limit.
PoolFactory = Callable[[Timeouts, int], UpstreamPool]


class _AiohttpStream:
    __slots__ = ("_response", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status

    def headers(self) -> dict[str, str]:
        return lowercase_headers(self._response.headers)

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except CLIENT_ERRORS as exc:
            raise seam_error(exc) from exc

    async def next_chunk(self) -> bytes:
        try:
            return await self._response.content.readany()
        except CLIENT_ERRORS as exc:
            raise seam_error(exc) from exc

    def close(self) -> None:
        self._response.close()


class HttpPool:
    """A deployment's pooled aiohttp session.

    Calls get aiohttp's own timeouts: ``connect`` (pool wait plus TCP and TLS
    set-up) and ``first_byte`` as the longest silence while reading; the
    deployment's ``total`` bounds the call from outside. A stream keeps the
    ``first_byte`` silence limit only until its headers are in: from then on the
    stream pump times every read itself, and a timer per TCP read would be work
    for nothing.
    """

    def __init__(self, timeouts: Timeouts, max_connections: int) -> None:
        connector = aiohttp.TCPConnector(
            ssl=tls_context(),
            limit=max_connections,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ttl_dns_cache=DNS_CACHE_SECONDS,
            enable_cleanup_closed=_NEEDS_CLEANUP_CLOSED,
            timeout_ceil_threshold=float("inf"),
        )
        self._proxies = EnvironmentProxies()
        self._urls: dict[str, URL] = {}
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            # With bytes and no Content-Type of the adapter's, aiohttp would add application/octet-stream.
            skip_auto_headers=("Content-Type",),
            raise_for_status=False,
            auto_decompress=True,
            # A header line may be as long as the whole head the router's former client allowed.
            max_line_size=_MAX_HEADER_LINE, max_field_size=_MAX_HEADER_LINE,
            timeout=aiohttp.ClientTimeout(total=None, connect=timeouts.connect, sock_read=timeouts.first_byte,
                                          ceil_threshold=float("inf")),
        )

    def _send(self, request: UpstreamRequest) -> Any:
        """The request going out (awaitable), through the environment's proxy if it names one."""
        url = self._urls.get(request.url)
        if url is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            url = self._urls[request.url] = upstream_url(request.url)
        route = self._proxies.route(request.url)
        if route is None:
            return self._session.request(request.method, url, headers=request.headers,
                                         data=request.content or None, allow_redirects=False)
        return self._session.request(request.method, url, headers={**request.headers, **route.headers},
                                     data=request.content or None, allow_redirects=False, **route.options)

    async def fetch(self, request: UpstreamRequest) -> Answer:
        try:
            response = await self._send(request)
            body = await response.read()  # closes the connection on any failure, cancellation included
        except CLIENT_ERRORS as exc:
            raise seam_error(exc) from exc
        return Answer(response.status, body, response.headers)

    async def open_stream(self, request: UpstreamRequest) -> UpstreamStream:
        try:
            response = await self._send(request)
        except CLIENT_ERRORS as exc:
            raise seam_error(exc) from exc
        connection = response.connection
        if connection is not None and connection.protocol is not None:
            connection.protocol.read_timeout = None
            connection.protocol.start_timeout()  # with no limit: drops the timer the headers started
        return _AiohttpStream(response)

    async def aclose(self) -> None:
        await self._session.close()
