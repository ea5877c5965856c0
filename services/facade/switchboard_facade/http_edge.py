"""The connection-level limits of the facade's HTTP door, below the application.

uvicorn's httptools protocol reads a request head of any size (llhttp sets no
limit, and uvicorn's ``h11_max_incomplete_event_size`` applies only to h11),
arms no timer until the first answer is sent (a half-sent request holds its
connection for ever), and after an early answer — a 413, a 401 before the body
was read — goes on reading the rest of the body, however long, as part of the
same connection. uvicorn's ``limit_max_requests`` counts requests of the whole
server (it then exits), not of one connection. :func:`protocol_class` returns
uvicorn's protocol with those edges closed:

* a request head (request line and headers) larger than ``max_header_bytes``
  gets 431 as soon as that many bytes arrived without its end, before the
  application (and so authentication) sees anything;
* a request head must arrive within ``header_timeout`` of the connection's
  start (or of its first byte on a kept-alive connection): else 408 and close;
* a body may pause at most ``body_timeout`` between two pieces (while the
  application is reading it): else the connection closes, and the application
  sees the client gone;
* an idle kept-alive connection closes after ``idle_timeout`` (uvicorn's
  ``timeout_keep_alive``);
* a connection carries at most ``max_requests`` requests: the last answer says
  ``connection: close``;
* an answer sent before the whole body arrived ends the connection: the rest of
  a small declared body is read and dropped, a large or chunked one is not read
  beyond a short linger (so the client still gets the answer, not a reset).

It also offers the application the connection itself, beyond ASGI (a
:class:`switchboard_facade.replies.ClientConnection` in the scope's extensions):
a lost connection calls back the work of its request instead of a task per
request waiting on ``receive``, and a whole answer goes out in one write, its
headers checked at once rather than one by one.

This subclasses uvicorn's internal ``HttpToolsProtocol``: the facade's
package pins uvicorn to the minor versions it was checked against (tests in
``tests/e2e/test_edge_limits.py`` fail on a change of those internals).

Answers written here are JSON in the dialect of the path (see
:func:`switchboard_facade.errors.edge_error`), with an ``x-request-id``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from switchboard_facade.errors import edge_error
from switchboard_facade.replies import CONNECTION_EXTENSION
from switchboard_facade.settings import FacadeSettings

log = logging.getLogger(__name__)

#: The scope extension holding a weak reference to the request's own uvicorn cycle (the protocol's ``cycle`` is the
#: newest request's, which may be a pipelined one still waiting for this one's answer).
_CYCLE_EXTENSION = "switchboard.cycle"
#: The rest of a declared body left unread by an early answer is read and dropped, keeping the connection,
#: when it is at most this long; a longer or chunked rest ends the connection after a linger.
DRAIN_BYTES = 64 * 1024
#: How long, and how many bytes, a connection reads and drops after an early answer before it closes.
LINGER_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 5.0
    #: 0: no limit.
    max_requests: int = 1000
    #: Most bytes dropped while lingering after an early answer.
    linger_bytes: int = 20 * 1024 * 1024


def edge_limits(settings: FacadeSettings) -> EdgeLimits:
    return EdgeLimits(max_header_bytes=settings.http_max_header_bytes,
                      header_timeout=settings.http_header_timeout_seconds,
                      body_timeout=settings.http_body_timeout_seconds,
                      idle_timeout=settings.http_idle_timeout_seconds,
                      max_requests=settings.http_max_requests_per_connection,
                      linger_bytes=settings.max_body_bytes)


def protocol_class(limits: EdgeLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with ``limits`` applied (pass it as ``uvicorn.Config(http=...)``)."""

    class GuardedProtocol(_GuardedProtocol):
        edge = limits

    return GuardedProtocol


class _GuardedProtocol(HttpToolsProtocol):
    edge: EdgeLimits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Bytes the current request head may still take; None while its body is read or it is being answered.
        self._head_left: int | None = self.edge.max_header_bytes
        #: Whether any byte of the current request head has arrived.
        self._head_started = False
        self._requests = 0
        self._declared_length: int | None = None
        self._body_seen = 0
        #: The connection's one timer, the loop time it fires at, and the timeout running ("": none) and its end.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._timer_kind = ""
        self._deadline = 0.0
        #: Bytes dropped so far while lingering after an answer that ends the connection; -1: not lingering.
        self._lingering = -1
        #: What the work of this connection's requests asked to be told when the connection is lost.
        self._on_lost: list[Callable[[], None]] = []

    # -- the connection, as the application sees it (switchboard_facade.replies.ClientConnection) ----------------

    def on_lost(self, callback: Callable[[], None]) -> None:
        self._on_lost.append(callback)

    def forget(self, callback: Callable[[], None]) -> None:
        try:
            self._on_lost.remove(callback)
        except ValueError:
            pass  # already called

    def answer_at_once(self, scope: Mapping[str, Any], status: int, header_lines: bytes,
                       body: bytes | memoryview) -> bool:
        # What uvicorn's cycle does for an ``http.response.start`` and a whole ``http.response.body``, but with the
        # headers checked already (Reply.header_lines) and one write. Anything else goes through its ``send``.
        cycle = self._unstarted(scope)
        if cycle is None:
            return False
        cycle.chunked_encoding = False
        cycle.expected_content_length = 0
        cycle.transport.writelines((*self._head(cycle, status), header_lines, b"\r\n", body))
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            cycle.transport.close()
        cycle.on_response()
        return True

    def start_at_once(self, scope: Mapping[str, Any], status: int, header_lines: bytes) -> bool:
        # What uvicorn's cycle does for the ``http.response.start`` of an answer without a length (chunked), with the
        # headers checked already; its body goes through uvicorn's ``send``, which frames the chunks.
        cycle = self._unstarted(scope)
        if cycle is None:
            return False
        cycle.chunked_encoding = True
        cycle.expected_content_length = 0
        cycle.transport.writelines((*self._head(cycle, status), header_lines, b"transfer-encoding: chunked\r\n\r\n"))
        return True

    @staticmethod
    def _unstarted(scope: Mapping[str, Any]) -> RequestResponseCycle | None:
        """The request's own uvicorn cycle, when its answer may be started here; marked started."""
        cycle_ref = scope["extensions"].get(_CYCLE_EXTENSION)
        cycle: RequestResponseCycle | None = cycle_ref() if cycle_ref is not None else None
        if (cycle is None or cycle.response_started or cycle.disconnected or cycle.access_log
                or cycle.flow.write_paused or scope["method"] == "HEAD"):
            return None
        cycle.response_started = True
        cycle.waiting_for_100_continue = False
        return cycle

    @staticmethod
    def _head(cycle: RequestResponseCycle, status: int) -> list[bytes]:
        """The status line and the server's own header lines (date; close when the connection ends with this)."""
        lines = [STATUS_LINE[status], *[b"%s: %s\r\n" % pair for pair in cycle.default_headers]]
        if not cycle.keep_alive:
            lines.append(b"connection: close\r\n")
        return lines

    # -- timers ---------------------------------------------------------------------------------

    # A request starts, stops and restarts timeouts several times (head, body, idle); the loop's timer is moved only
    # when it would fire too late, and one that fires early starts over for what is left: a request costs no timer
    # of the loop's, where one per timeout cost a handle and a cancellation each (about 2 us).

    def _arm(self, kind: str, seconds: float) -> None:
        self._timer_kind = kind
        self._deadline = deadline = self.loop.time() + seconds
        if self._timer is None or self._timer_at > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._expired)

    def _disarm(self) -> None:
        self._timer_kind = ""  # the timer, when it fires, finds nothing to do

    def _stop_timer(self) -> None:
        self._timer_kind = ""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        kind = self._timer_kind
        if not kind:
            return
        if self.loop.time() < self._deadline:  # restarted since it was set: it ends later
            self._timer_at = self._deadline
            self._timer = self.loop.call_at(self._deadline, self._expired)
            return
        self._timer_kind = ""
        if self.transport.is_closing():
            return
        if kind == "body" and self.flow.read_paused:
            # The application is not reading (yet): not the client's delay.
            self._arm("body", self.edge.body_timeout)
            return
        if kind == "head" and self._answering():
            # A pipelined request's head is late while an earlier answer is still being sent: let that finish.
            self._arm("head", self.edge.header_timeout)
            return
        if kind == "head" and self._head_started:
            log.info("request head not received in time: closing the connection",
                     extra={"client": _client(self.client), "timeout_seconds": self.edge.header_timeout})
            self._answer_and_close(408, "The request's headers did not arrive in time "
                                        f"({self.edge.header_timeout:g} s); send the whole request at once.",
                                   "request_timeout")
            return
        if kind == "body":
            log.info("request body stalled: closing the connection",
                     extra={"client": _client(self.client), "timeout_seconds": self.edge.body_timeout})
        self.transport.close()

    def _answering(self) -> bool:
        """Whether an answer has started and not ended (nothing else may be written now)."""
        cycle = self.cycle
        return cycle is not None and cycle.response_started and not cycle.response_complete

    # -- uvicorn's protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn's protocols get a Transport
        super().connection_made(transport)
        self._arm("head", self.edge.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        callbacks, self._on_lost = self._on_lost, []
        super().connection_lost(exc)
        for callback in callbacks:
            callback()

    def data_received(self, data: bytes) -> None:
        if self._lingering >= 0:
            self._lingering += len(data)
            if self._lingering > self.edge.linger_bytes:
                self.transport.close()
            return
        left = self._head_left
        if left is None:
            super().data_received(data)
            return
        if not self._head_started:
            self._head_started = True
            if self._timer_kind != "head":
                self._arm("head", self.edge.header_timeout)
        if len(data) <= left:
            self._head_left = left - len(data)
            super().data_received(data)
            return
        # The head may end within the first ``left`` bytes: parse those, then decide.
        self._head_left = 0
        super().data_received(data[:left])
        if self._head_left is not None:
            if not self.transport.is_closing():
                self._reject_head()
            return
        self.data_received(data[left:])

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._declared_length = None
        self._body_seen = 0

    def on_headers_complete(self) -> None:
        self._head_left = None
        self._disarm()
        for name, value in self.headers:
            if name == b"content-length" and value.isdigit():
                self._declared_length = int(value)
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # a new request's cycle (a pipelined one's waits its turn)
            # The cycle by a weak reference: the cycle holds the scope, and a strong one would make the two a
            # reference cycle for the garbage collector to find, with all they hold, after every request.
            extensions: dict[str, Any] = {CONNECTION_EXTENSION: self, _CYCLE_EXTENSION: weakref.ref(cycle)}
            self.scope["extensions"] = extensions
        self._requests += 1
        if self.edge.max_requests and self._requests >= self.edge.max_requests and self.cycle is not None:
            self.cycle.keep_alive = False
        self._arm("body", self.edge.body_timeout)

    def on_body(self, body: bytes) -> None:
        self._body_seen += len(body)
        if self._timer_kind == "body":
            self._arm("body", self.edge.body_timeout)
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._timer_kind == "body":
            self._disarm()
        self._head_left = self.edge.max_header_bytes
        self._head_started = False
        answered = self.cycle is not None and self.cycle.response_complete
        super().on_message_complete()
        if answered and not self.pipeline:
            # The rest of an early-answered body was dropped: the connection is idle again.
            self._arm("idle", self.edge.idle_timeout)

    def on_response_complete(self) -> None:
        cycle = self.cycle
        if (cycle is not None and cycle.more_body and cycle.response_complete and not self.pipeline
                and not self.transport.is_closing()):
            rest = None if self._declared_length is None else self._declared_length - self._body_seen
            if rest is None or rest > DRAIN_BYTES:
                self.server_state.total_requests += 1
                self._linger()
                return
        # uvicorn's own, with its keep-alive timeout (the idle timeout) on the connection's one timer.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._arm("idle", self.edge.idle_timeout)

    def _unset_keepalive_if_required(self) -> None:
        # uvicorn's data_received: a kept-alive connection's next request has begun.
        if self._timer_kind == "idle":
            self._disarm()

    # -- answers of the edge itself -------------------------------------------------------------

    def _linger(self) -> None:
        """Answered before the body ended: stop parsing, read and drop what still comes for a moment, close."""
        self._disarm()
        self._lingering = 0
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _reject_head(self) -> None:
        log.info("request head too large", extra={"client": _client(self.client),
                                                   "limit_bytes": self.edge.max_header_bytes})
        self._answer_and_close(431, f"The request's headers are larger than this gateway accepts "
                                    f"({self.edge.max_header_bytes} bytes). Send fewer or shorter headers, or "
                                    "ask the operator to raise SWITCHBOARD_HTTP_MAX_HEADER_BYTES.",
                               "request_headers_too_large")

    def _answer_and_close(self, status: int, message: str, code: str) -> None:
        if self._answering():
            self.transport.close()  # an earlier request's answer is on the wire: no room for this one
            return
        path = getattr(self, "url", b"").split(b"?", 1)[0].decode("latin-1")
        body, headers = edge_error(path, status, message, code)
        self._disarm()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        head += [b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self._lingering = 0
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def _client(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else ""
