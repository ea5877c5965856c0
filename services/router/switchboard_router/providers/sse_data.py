"""The ``data`` of each server-sent event, as bytes: the decoder of streams relayed as they are.

It follows the rules of :class:`switchboard_translate.sse.SSEDecoder` (any byte
split; ``\\n``, ``\\r\\n`` and ``\\r`` line endings; comments; multi-line data
joined with ``\\n``; one space after the colon dropped) but keeps only what a
pass-through needs, the data, and never decodes a line to text: an OpenAI
stream's chunks go on to the client as the bytes the provider sent, and the
per-event work is a handful of bytes operations instead of a dozen Python steps
per line.
"""

from __future__ import annotations


class SSEDataDecoder:
    """Feed bytes, get the data of each complete event (events without data give nothing)."""

    __slots__ = ("_buf", "_data")

    def __init__(self) -> None:
        #: Bytes after the last complete line (line endings already turned into ``\n``).
        self._buf = b""
        #: The data lines of the event being read.
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf + chunk if self._buf else chunk
        held = b""
        if b"\r" in buf:
            if buf[-1:] == b"\r":  # may be the first half of \r\n: decide once the next byte is in
                buf, held = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = buf.rfind(b"\n")
        if end == -1:
            self._buf = buf + held
            return []
        self._buf = buf[end + 1:] + held
        return self._lines(buf[:end].split(b"\n"))

    def close(self) -> list[bytes]:
        """The data of a final event that was not followed by a blank line."""
        rest, self._buf = self._buf.removesuffix(b"\r"), b""
        return self._lines([rest, b""] if rest else [b""])

    def _lines(self, lines: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    out.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data = []
            elif line[:5] == b"data:":
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line == b"data":
                data.append(b"")
            # Comments, event names, ids and unknown fields: nothing a pass-through uses.
        self._data = data
        return out
