"""One keep-alive HTTP/1.1 connection to a provider: a request written, its answer parsed by llhttp.

A provider call is an HTTP/1.1 request whose body is in hand (a POST, or the GET of a probe) and whose answer is
read whole or piece by piece (a stream). :class:`Connection` is the asyncio protocol that carries one such call at
a time over a kept-alive socket: the request goes out in one ``writev``, and the answer is parsed by httptools'
binding of llhttp (Node.js's HTTP parser: status line, headers, ``Content-Length``, the chunked coding, keep-alive)
and decoded when the provider compressed it (gzip or deflate, the codings the pool asks for). The pool that opens,
lends and keeps these connections is :class:`switchboard_router.upstream_http.HttpPool`.

Why not a general-purpose client: for this narrow job one call through aiohttp cost about 140 µs of CPU beyond the
socket work (a task per request body, request and response objects, a timer reset per read) on the router's hot
path, four times what the same exchange costs on a bare protocol. Parsing, TLS and decompression stay with the
libraries made for them (llhttp, ``ssl``, ``zlib``); what is written here is the call's framing and its timing.

Timing: a call has one timer, armed when the request goes out, for the sooner of the end of its allowed silence (the
deployment's ``first_byte``) and its own deadline (a whole answer's time limit, when it has one). Each read only
notes the loop's time; when the timer fires it re-arms itself for the sooner of the two, or fails the call with
:class:`~switchboard_router.upstream_http.ReadTimeout` (silence) or
:class:`~switchboard_router.upstream_http.CallTimeout` (deadline). A stream drops it once its headers are in: the
stream pump times its reads itself.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Hashable
from typing import Any

import httptools

from switchboard_router.upstream_errors import CallTimeout, ReadTimeout, TransportError

#: Longest header line accepted from a provider, bytes (name and value).
MAX_HEADER_LINE = 16 * 1024
#: Most bytes of header lines accepted in one answer.
MAX_HEAD = 256 * 1024
#: Bytes of a stream read but not yet taken by its reader above which the socket stops being read.
_STREAM_HIGH_WATER = 1 << 20
#: ``zlib`` window bits that accept a gzip or a zlib header (``Content-Encoding: gzip`` or ``deflate``).
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS
#: The codings the pool asks for (``Accept-Encoding``), so the only ones an answer may use.
_DECODABLE = frozenset(("gzip", "x-gzip", "deflate"))


def _header_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _framing(raw: list[tuple[bytes, bytes]]) -> tuple[str | None, bool, bool]:
    """What the head says of the body's framing: its content coding (None: none named), whether it has a
    ``Content-Length``, and whether it is chunked. Names are compared by length first: most are none of these."""
    coding: str | None = None
    has_length = chunked = False
    for name, value in raw:
        size = len(name)
        if size == 16 and name.lower() == b"content-encoding":
            text = value.decode("latin-1")
            coding = text if coding is None else f"{coding}, {text}"
        elif size == 14 and name.lower() == b"content-length":
            has_length = True
        elif size == 17 and name.lower() == b"transfer-encoding" and value.find(b"chunked") >= 0:
            chunked = True
    return coding, has_length, chunked


class TunnelRefused(Exception):
    """The proxy answered a ``CONNECT`` with something other than 2xx."""

    def __init__(self, status_line: str) -> None:
        super().__init__(status_line)
        self.status_line = status_line


class Connection(asyncio.Protocol):
    """A socket to one origin carrying one call at a time; reusable once an answer was read to its end.

    :meth:`send` starts a call; :meth:`whole` then waits for the whole answer, or :meth:`head` for its status and
    headers and :meth:`next_piece` for each piece of its body. ``on_lost`` is told when the socket closes, so the
    pool forgets an idle connection the provider hung up.
    """

    __slots__ = (
        "_loop", "origin", "transport", "_on_lost", "_parser", "lost", "idle_since", "_active", "_stream", "_ended",
        "_error", "_informational", "status", "_raw_headers", "_headers", "_parts", "_buffered", "_waiter", "_silence",
        "_timer", "_deadline", "_last_data", "_keep_alive", "_head_bytes", "_decoder", "_until_close", "_head_seen",
        "_tunnel", "_reading_paused",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Hashable,
                 on_lost: Callable[[Connection], None]) -> None:
        self._loop = loop
        #: The pool's key for what this connection can carry (scheme, host, port, proxy).
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self._on_lost = on_lost
        self._parser = httptools.HttpResponseParser(self)
        self.lost = False
        #: Loop time at which the connection last went back to the pool.
        self.idle_since = 0.0
        self._active = False
        self._stream = False
        self._ended = False
        self._error: Exception | None = None
        self._informational = False
        self.status = 0
        #: The answer's header lines as they came; :attr:`headers` reads them as a dictionary when asked.
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._headers: dict[str, str] | None = None
        self._parts: list[bytes] = []
        self._buffered = 0
        #: The future the caller is waiting on: the whole answer, a stream's head, or a stream's next piece.
        self._waiter: asyncio.Future[Any] | None = None
        self._silence = 0.0
        #: The loop time by which the current call must have its answer; None: no limit of its own.
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        self._decoder: Any = None
        self._until_close = False
        self._keep_alive = False
        self._head_bytes = 0
        self._head_seen = False
        #: While a proxy tunnel is being opened: the bytes of the proxy's answer so far.
        self._tunnel: bytearray | None = None
        self._reading_paused = False

    # -- asyncio.Protocol -------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport: TCP or TLS

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel_data(data)
            return
        if not self._active:
            self.abort()  # bytes nobody asked for: the connection cannot be trusted with the next call
            return
        if self._timer is not None:
            self._last_data = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError("its answer was not valid HTTP"), exc)
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close: a half-closed provider has nothing more to say

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._cancel_timer()
        if self._tunnel is not None:
            self._settle(TransportError("the proxy closed the connection"))
        elif self._active and not self._ended:
            if self._until_close and self._head_seen:
                self.on_message_complete()  # its body ran to the end of the connection
            elif isinstance(exc, ConnectionResetError):
                self._fail(TransportError("the connection was reset"), exc)
            elif not self._head_seen:
                self._fail(TransportError("it closed the connection without an answer"), exc)
            else:
                self._fail(TransportError("its answer was cut off"), exc)
        self._on_lost(self)

    # -- llhttp callbacks ---------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._ended:  # bytes after the answer: nothing this connection says can be trusted any more
            self._keep_alive = False
            raise httptools.HttpParserError("bytes after the answer")

    @property
    def headers(self) -> dict[str, str]:
        """The answer's headers: lower-case names, the values of a repeated name joined by ", " (RFC 9110)."""
        headers = self._headers
        if headers is None:
            headers = self._headers = _header_dict(self._raw_headers)
        return headers

    def on_header(self, name: bytes, value: bytes) -> None:
        # Kept as they came: a provider's answer carries a score of headers (rate limits, ids, CDN's) and the
        # router reads three of them unless the answer is an error.
        line = len(name) + len(value)
        self._head_bytes += line
        if line > MAX_HEADER_LINE or self._head_bytes > MAX_HEAD:
            raise httptools.HttpParserError("header lines too long")
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue and the like: the answer follows
            self._informational = True
            return
        self.status = status
        self._head_seen = True
        coding, has_length, chunked = _framing(self._raw_headers)
        if coding is not None and coding.strip().lower() not in ("identity", ""):
            if coding.strip().lower() not in _DECODABLE:
                raise httptools.HttpParserError(f"content coding {coding!r} was not asked for")
            self._decoder = zlib.decompressobj(_GZIP_OR_ZLIB)
        self._keep_alive = self._parser.should_keep_alive()  # llhttp forgets it once the message is complete
        self._until_close = status not in (204, 304) and not has_length and not chunked
        if self._stream:
            self._cancel_timer()  # from here the stream pump times the reads
            self._wake(None)

    def on_body(self, body: bytes) -> None:
        if self._decoder is not None:
            try:
                body = self._decoder.decompress(body)
            except zlib.error as exc:
                raise httptools.HttpParserError(f"undecodable body: {exc}") from exc
            if not body:
                return
        self._parts.append(body)
        if self._stream:
            self._buffered += len(body)
            if self._buffered > _STREAM_HIGH_WATER and not self._reading_paused and self.transport is not None:
                self._reading_paused = True
                self.transport.pause_reading()
            self._wake(None)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            self._raw_headers, self._headers = [], None
            return
        if self._decoder is not None:
            rest = self._decoder.flush()
            if rest:
                self._parts.append(rest)
        self._ended = True
        self._cancel_timer()
        if self._stream:
            self._wake(None)
        else:
            self._wake(b"".join(self._parts))

    # -- calls ----------------------------------------------------------------------------------------------

    def send(self, head: bytes, body: bytes, stream: bool, silence: float | None,
             deadline: float | None = None) -> None:
        """Writes a request and readies the connection for its answer; ``silence`` arms the read timeout,
        ``deadline`` (loop time) the call's own limit."""
        assert self.transport is not None
        self._active, self._stream, self._ended, self._error = True, stream, False, None
        self.status, self._raw_headers, self._headers, self._parts, self._buffered = 0, [], None, [], 0
        self._decoder, self._until_close, self._head_seen, self._head_bytes = None, False, False, 0
        self._waiter = self._loop.create_future()
        self._deadline = deadline
        if silence is not None or deadline is not None:
            self._silence = silence if silence is not None else float("inf")
            self._last_data = now = self._loop.time()
            due = now + self._silence
            self._timer = self._loop.call_at(due if deadline is None or due < deadline else deadline,
                                             self._check_silence)
        if body:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head)

    async def whole(self) -> bytes:
        """The whole answer's body, decoded (status and headers are then on the connection)."""
        assert self._waiter is not None
        body: bytes = await self._waiter
        return body

    async def head(self) -> None:
        """Returns once a stream's status and headers are in."""
        if not self._head_seen:
            assert self._waiter is not None
            await self._waiter

    async def next_piece(self) -> bytes:
        """The stream's body read since the last call, waiting for some; ``b""`` once the answer has ended."""
        while True:
            if self._parts:
                parts, self._parts, self._buffered = self._parts, [], 0
                if self._reading_paused and self.transport is not None:
                    self._reading_paused = False
                    self.transport.resume_reading()
                return parts[0] if len(parts) == 1 else b"".join(parts)
            if self._error is not None:
                raise self._error
            if self._ended:
                return b""
            self._waiter = self._loop.create_future()
            await self._waiter

    def finish(self) -> bool:
        """Ends the call; True when the connection may carry another (the answer was read to its end and kept
        alive)."""
        self._active = False
        self._waiter = None
        self._cancel_timer()
        return self._ended and self._keep_alive and not self.lost and not self._until_close

    def abort(self) -> None:
        """Drops the socket at once (a call given up mid-answer; the provider sees the hang-up)."""
        self._keep_alive = False
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()

    # -- proxy tunnels -------------------------------------------------------------------------------------------

    async def tunnel(self, connect: bytes) -> None:
        """Sends a proxy its ``CONNECT`` and returns once it answered 2xx; raises :class:`TunnelRefused`."""
        assert self.transport is not None
        self._tunnel = bytearray()
        self._waiter = self._loop.create_future()
        self.transport.write(connect)
        status_line: str = await self._waiter
        if not status_line.split(" ", 2)[1:2] or not status_line.split(" ", 2)[1].startswith("2"):
            raise TunnelRefused(status_line)

    def _tunnel_data(self, data: bytes) -> None:
        assert self._tunnel is not None
        self._tunnel += data
        end = self._tunnel.find(b"\r\n\r\n")
        if end < 0:
            if len(self._tunnel) > MAX_HEADER_LINE:
                self._settle(TransportError("the proxy's answer was not valid HTTP"))
            return
        if end + 4 < len(self._tunnel):
            self._settle(TransportError("the proxy sent bytes after its answer to CONNECT"))
            return
        status_line = bytes(self._tunnel[:end]).split(b"\r\n", 1)[0].decode("latin-1")
        self._tunnel = None
        self._wake(status_line)

    def _settle(self, error: Exception) -> None:
        self._tunnel = None
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    # -- inside ------------------------------------------------------------------------------------------------

    def _wake(self, result: object) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(result)

    def _fail(self, error: Exception, cause: BaseException | None) -> None:
        error.__cause__ = cause
        self._error = error
        self._cancel_timer()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _check_silence(self) -> None:
        self._timer = None
        if self._ended or not self._active:
            return
        now, deadline = self._loop.time(), self._deadline
        if deadline is not None and now >= deadline:
            self._fail(CallTimeout("the call took longer than its time limit"), None)
            self.abort()
            return
        due = self._last_data + self._silence
        if due > now:
            self._timer = self._loop.call_at(due if deadline is None or due < deadline else deadline,
                                             self._check_silence)
            return
        self._fail(ReadTimeout(f"the provider sent nothing for {self._silence:g} s"), None)
        self.abort()

    def _cancel_timer(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()
