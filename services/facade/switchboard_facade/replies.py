"""Answers of the gateway's routes, sent as raw ASGI messages.

A :class:`Reply` (a whole body) or :class:`StreamReply` (SSE frames as they come)
holds its headers as the plain ``dict[str, str]`` the routes build, and turns
them into ASGI byte pairs once, when it is sent — no header objects in between.
Both are Starlette responses too, so a framework route can return them; the fast
lane (:mod:`switchboard_facade.fast_lane`) sends them itself, adding its CORS
headers to the same list.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from starlette.responses import Response

Pairs = list[tuple[bytes, bytes]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

JSON = b"application/json"
#: Starlette's media type for SSE (it adds the charset to every text/* type).
EVENT_STREAM = b"text/event-stream; charset=utf-8"


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
        await self.send_to(send)
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


async def stream_frames(frames: AsyncIterator[bytes], send: Send, receive: Receive | None,
                        on_first_frame: Callable[[], None] | None = None) -> None:
    """Sends each frame as a body chunk, then the end; stops quietly when the client disconnects."""
    task = asyncio.current_task()
    gone = False

    async def watch() -> None:
        nonlocal gone
        assert receive is not None and task is not None
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.get_running_loop().create_task(watch()) if receive is not None else None
    try:
        async for frame in frames:
            if frame:
                if on_first_frame is not None:
                    on_first_frame()
                    on_first_frame = None
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not gone or task is None:
            raise
        task.uncancel()  # the client left: the stream's end is ours to absorb, not the server's
    finally:
        if watcher is not None:
            watcher.cancel()
        aclose = getattr(frames, "aclose", None)
        if aclose is not None:
            await aclose()
