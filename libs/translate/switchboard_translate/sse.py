"""Server-sent events: an incremental decoder and the encoder used at the edge.

The decoder accepts arbitrary byte splits (network reads never align with
events) and handles ``\\n``, ``\\r\\n`` and ``\\r`` line endings, comments and
multi-line ``data:`` fields, as the WHATWG EventSource specification says.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    event: str
    data: str
    id: str | None = None


class SSEDecoder:
    """Feed bytes, get complete events."""

    __slots__ = ("_buf", "_event", "_data", "_id")

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        events: list[SSEEvent] = []
        start = 0
        n = len(buf)
        while start < n:
            nl = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, nl if nl != -1 else n)
            if cr != -1:
                end = cr
                # A lone \r at the very end may be the first half of \r\n: wait for more.
                if cr + 1 == n:
                    break
                nxt = cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
            elif nl != -1:
                end, nxt = nl, nl + 1
            else:
                break
            self._line(buf[start:end].decode("utf-8"), events)
            start = nxt
        self._buf = buf[start:]
        return events

    def close(self) -> list[SSEEvent]:
        """Flushes a final event that was not followed by a blank line."""
        events: list[SSEEvent] = []
        if self._buf:
            self._line(self._buf.decode("utf-8"), events)
            self._buf = b""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            if self._data or self._event:
                events.append(SSEEvent(self._event or "message", "\n".join(self._data), self._id))
            self._event, self._data = "", []
            return
        if line[0] == ":":
            return
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            self._id = value


def encode_data(payload: bytes) -> bytes:
    """One ``data:`` event, as OpenAI frames stream chunks."""
    return b"data: " + payload + b"\n\n"


def encode_event(event: str, payload: bytes) -> bytes:
    """One named event, as Anthropic and the Responses API frame stream events."""
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


DONE = b"data: [DONE]\n\n"
