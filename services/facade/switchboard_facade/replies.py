"""Answers of the gateway's routes, sent as raw ASGI messages.

A :class:`Reply` (a whole body) or :class:`StreamReply` (SSE frames as they come)
holds its headers as the plain ``dict[str, str]`` the routes build, and turns
them into ASGI byte pairs once, when it is sent — no header objects in between.
Both are Starlette responses too, so a framework route can return them; the fast
lane (:mod:`switchboard_facade.fast_lane`) sends them itself, adding its CORS
headers to the same list.

A client that disconnects is noticed here, while its answer is made
(:func:`unless_client_leaves`) and while it is streamed (:func:`stream_frames`):
the work in progress is cancelled, which cancels the router's call.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Protocol, TypeVar

from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE

from switchboard_billing.client import CLIENT_CLOSED_REQUEST

T = TypeVar("T")
Pairs = list[tuple[bytes, bytes]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

JSON = b"application/json"
#: Starlette's media type for SSE (it adds the charset to every text/* type).
EVENT_STREAM = b"text/event-stream; charset=utf-8"


#: The ASGI scope extension under which the gateway's HTTP server (:mod:`switchboard_facade.http_edge`) hands the
#: application the request's :class:`ClientConnection`.
CONNECTION_EXTENSION = "switchboard.connection"

#: What a header name or value may not hold on the wire: the server's own checks of every header it writes, as
#: byte patterns (for the pairs the lane adds) and as text patterns (for the routes' headers).
_BAD_NAME_BYTES, _BAD_VALUE_BYTES = HEADER_RE, HEADER_VALUE_RE
_BAD_NAME_TEXT = re.compile(HEADER_RE.pattern.decode("latin-1"))
_BAD_VALUE_TEXT = re.compile(HEADER_VALUE_RE.pattern.decode("latin-1"))
#: Header names (text and bytes) already found lower-case and free of what the server refuses: the routes use a
#: few dozen names, so each is checked once, not in every answer. Bounded, in case names were made per request.
_GOOD_NAMES: set[str | bytes] = set()
_MOST_GOOD_NAMES = 4096


def names_writable(names: Iterable[str] | Iterable[bytes]) -> bool:
    """Whether every name is lower-case and holds nothing the server refuses in a header name."""
    return _GOOD_NAMES.issuperset(names) or all(_name_writable(name) for name in names)


def _name_writable(name: str | bytes) -> bool:
    if name in _GOOD_NAMES:
        return True
    if isinstance(name, str):
        writable = name.islower() and not _BAD_NAME_TEXT.search(name)
    else:
        writable = name.islower() and not _BAD_NAME_BYTES.search(name)
    if writable and len(_GOOD_NAMES) < _MOST_GOOD_NAMES:
        _GOOD_NAMES.add(name)
    return writable


def values_writable(values: Iterable[str]) -> bool:
    """Whether no value holds a character the server refuses in a header value (a control character other than
    tab). Printable text passes at once; anything else (a tab, a character above ASCII) gets the server's own
    pattern, so the verdict is the server's."""
    joined = " ".join(values)
    return joined.isprintable() or not _BAD_VALUE_TEXT.search(joined)


class ClientGone(Exception):
    """The client went away (before its whole body arrived, or before its answer): there is no one left to answer."""


class ClientConnection(Protocol):
    """The client's connection as the gateway's own server offers it to the application, beyond ASGI.

    ASGI tells an application that its client left only through ``receive``, which takes a task waiting on it
    for every request; the server knows it when the connection is lost, and calls back instead. It also writes
    a whole answer's head and body at once when asked, where ASGI's two messages would cost two writes.
    """

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Calls ``callback`` (once) if the connection is lost before :meth:`forget` is called with it."""

    def forget(self, callback: Callable[[], None]) -> None:
        """Drops a callback given to :meth:`on_lost` (the answer is done); one already called is not there."""

    def answer_at_once(self, scope: Mapping[str, Any], status: int, header_lines: bytes,
                       body: bytes | memoryview) -> bool:
        """Writes the request's whole answer in one write, as ASGI's two messages would have: its status line, the
        server's own headers, ``header_lines`` (``name: value\\r\\n`` lines that state the body's length, from
        :meth:`Reply.header_lines`) and ``body``. False when the server cannot now (the answer has begun, the
        client left, the connection's writes are paused): the caller then sends the answer through ASGI."""

    def start_at_once(self, scope: Mapping[str, Any], status: int, header_lines: bytes) -> bool:
        """Writes a streamed answer's head (as :meth:`answer_at_once` does, the body's length unsaid: chunked);
        its body then goes through ASGI's ``http.response.body`` messages. False as for :meth:`answer_at_once`."""


def client_connection(scope: Mapping[str, Any]) -> ClientConnection | None:
    """The request's :class:`ClientConnection`, when the server offers one."""
    extensions = scope.get("extensions")
    return extensions.get(CONNECTION_EXTENSION) if extensions else None


def _pairs(headers: Mapping[str, str]) -> Pairs:
    """Header names are lower-case where the routes build them (the server lower-cases them on the wire anyway)."""
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class Reply(Response):
    """A whole answer: status, headers and body."""

    def __init__(self, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None,
                 content_type: bytes = JSON) -> None:
        self.status_code = status
        self.body = body
        self.header_map: Mapping[str, str] = headers if headers is not None else {}
        self.content_type = content_type
        self.background = None
        #: What the answer need not wait for (a request's release of its admission and hold): run once it is
        #: written, or could not be, by whoever sends it; never in a thread, unlike Starlette's ``background``.
        self.then: Callable[[], None] | None = None

    def run_then(self) -> None:
        then, self.then = self.then, None
        if then is not None:
            then()

    def header_lines(self, extra: Pairs | tuple[tuple[bytes, bytes], ...] = ()) -> bytes | None:
        """The answer's header lines as :meth:`start` lists them (the route's own, the body's length and type, then
        ``extra``), checked as the server checks each header it writes, but all at once; None when a name is not
        lower-case or a header cannot go on the wire as it is (:meth:`start`'s message then meets the server's
        refusal, which says which)."""
        headers = self.header_map
        if not (names_writable(headers) and values_writable(headers.values())):
            return None
        if extra and not (names_writable([name for name, _ in extra])
                          and values_writable((b" ".join([value for _, value in extra]).decode("latin-1"),))):
            return None
        try:
            own = "".join([f"{name}: {value}\r\n" for name, value in headers.items()]).encode("latin-1")
        except UnicodeEncodeError:
            return None
        return b"".join((own, self._length_line(), b"content-type: %s\r\n" % self.content_type,
                         *[b"%s: %s\r\n" % pair for pair in extra]))

    def _length_line(self) -> bytes:
        return b"content-length: %d\r\n" % len(self.body)

    def start(self, extra: Pairs | tuple[tuple[bytes, bytes], ...] = ()) -> dict[str, Any]:
        """The ``http.response.start`` message, with ``extra`` headers after the route's own."""
        pairs = _pairs(self.header_map)
        pairs.append((b"content-length", b"%d" % len(self.body)))
        pairs.append((b"content-type", self.content_type))
        pairs.extend(extra)
        return {"type": "http.response.start", "status": self.status_code, "headers": pairs}

    @property
    def raw_headers(self) -> Pairs:  # type: ignore[override]  # Starlette's attribute, computed here on first use
        """The headers as Starlette's ``Response.raw_headers`` has them (for ``.headers``)."""
        cached: Pairs | None = self.__dict__.get("_raw")
        if cached is None:
            cached = self.__dict__["_raw"] = self.start()["headers"]
        return cached

    async def send_to(self, send: Send, extra: Pairs | tuple[tuple[bytes, bytes], ...] = ()) -> None:
        await send(self.start(extra))
        await send({"type": "http.response.body", "body": self.body})

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        try:
            await self.send_to(send)
        finally:
            self.run_then()
        if self.background is not None:
            await self.background()


class StreamReply(Reply):
    """A streamed answer: headers now, then each frame as ``frames`` yields it.

    While it streams, a disconnect of the client cancels the iteration (as Starlette's
    ``StreamingResponse`` does), so the route's generator sees the cancellation where it
    waits — typically on the upstream call, which its ``finally`` then cancels.
    """

    def __init__(self, frames: AsyncIterator[bytes], headers: Mapping[str, str] | None = None,
                 content_type: bytes = EVENT_STREAM) -> None:
        super().__init__(b"", 200, headers, content_type)
        self.frames = frames

    def _length_line(self) -> bytes:
        return b""  # a stream's length is not known: the server frames it in chunks

    def start(self, extra: Pairs | tuple[tuple[bytes, bytes], ...] = ()) -> dict[str, Any]:
        pairs = _pairs(self.header_map)
        pairs.append((b"content-type", self.content_type))
        pairs.extend(extra)
        return {"type": "http.response.start", "status": self.status_code, "headers": pairs}

    async def send_to(self, send: Send, extra: Pairs | tuple[tuple[bytes, bytes], ...] = (),
                      receive: Receive | None = None, on_first_frame: Callable[[], None] | None = None) -> None:
        await send(self.start(extra))
        await stream_frames(self.frames, send, receive, on_first_frame)

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        await self.send_to(send, receive=receive)
        if self.background is not None:
            await self.background()


class _ClientWatch:
    """Cancels the current task when the client disconnects, so that the work it waits on stops now.

    The server's :class:`ClientConnection` calls back when the connection is lost; another server is watched by a
    task of its own waiting on ``receive`` (once the request's body is read, the next message is
    ``http.disconnect``). The cancellation it causes is told from any other by :meth:`absorb`.
    """

    __slots__ = ("task", "gone", "absorbed", "watcher", "connection")

    def __init__(self, receive: Receive, connection: ClientConnection | None) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.gone = False
        self.absorbed = False
        self.connection = connection
        self.watcher: asyncio.Task[None] | None = None
        if connection is not None:
            # A bound method made for each call (equal ones, so forget finds it): one kept on the watch would
            # make the watch, its task and all they hold a reference cycle, left to the garbage collector.
            connection.on_lost(self._lost)
        else:
            self.watcher = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._lost()

    def _lost(self) -> None:
        self.gone = True
        self.task.cancel()

    def absorb(self) -> bool:
        """In an ``except CancelledError``: whether the client's leaving caused it (then it is taken back, and the
        task goes on to record what happened), else it is someone else's and must propagate."""
        if not self.gone or self.absorbed:
            return False
        self.absorbed = True
        self.task.uncancel()
        return True

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
        elif self.connection is not None:
            self.connection.forget(self._lost)
        if self.gone and not self.absorbed:  # the work ended anyway: its cancellation is not left pending
            self.absorbed = True
            self.task.uncancel()


async def unless_client_leaves(work: Awaitable[T], receive: Receive, connection: ClientConnection | None = None) -> T:
    """``work``'s result, or :class:`ClientGone` when the client disconnects first (``work`` is cancelled where
    it waits, typically on the router, whose call is cancelled with it: see :mod:`switchboard_facade.flow`).

    Servers tell an application of a disconnect only when it reads (``receive``), and a route waiting on a
    slow provider reads nothing: without this, a request whose client left would run to its end and be
    recorded as a success nobody received. ``connection`` (see :func:`client_connection`) tells it without a task.
    """
    watch = _ClientWatch(receive, connection)
    try:
        return await work
    except asyncio.CancelledError:
        if not watch.absorb():
            raise
        raise ClientGone from None
    finally:
        watch.stop()


def client_closed(request_id: str) -> Reply:
    """The answer recorded for a request whose client left before it (status 499, "client closed request", as
    nginx logs it). The server drops it, there being no connection left; the access log and metrics keep it."""
    return Reply(b"", CLIENT_CLOSED_REQUEST, {"x-request-id": request_id})


async def stream_frames(frames: AsyncIterator[bytes], send: Send, receive: Receive | None,
                        on_first_frame: Callable[[], None] | None = None,
                        connection: ClientConnection | None = None) -> None:
    """Sends each frame as a body chunk, then the end; stops quietly when the client disconnects."""
    watch = _ClientWatch(receive, connection) if receive is not None else None
    try:
        async for frame in frames:
            if frame:
                if on_first_frame is not None:
                    on_first_frame()
                    on_first_frame = None
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if watch is None or not watch.absorb():
            raise
        # the client left: the stream's end is ours to absorb, not the server's
    finally:
        if watch is not None:
            watch.stop()
        aclose = getattr(frames, "aclose", None)
        if aclose is not None:
            await aclose()
