"""The ``application/vnd.amazon.eventstream`` binary framing that Bedrock streams use.

A message is::

    total length (u32) | headers length (u32) | prelude CRC32 (u32)
    headers ...        | payload ...           | message CRC32 (u32)

all big-endian; the prelude CRC covers the first 8 bytes and the message CRC
everything before it. Network reads never align with messages, so the decoder
buffers and yields whole messages only; a CRC mismatch means the stream is
corrupt and cannot be resynchronised, so it raises.

The encoder exists for the fake Bedrock server and for tests: the same module
owns both directions of the format so they cannot drift apart.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass

_PRELUDE = struct.Struct(">III")
_PRELUDE_LEN = 12
_CRC_LEN = 4
#: Messages larger than this are rejected as corrupt rather than buffered (the format caps at 16 MiB).
MAX_MESSAGE_LENGTH = 16 * 1024 * 1024

# Header value type tags.
_BOOL_TRUE = 0
_BOOL_FALSE = 1
_BYTE = 2
_SHORT = 3
_INT = 4
_LONG = 5
_BYTES = 6
_STRING = 7
_TIMESTAMP = 8
_UUID = 9

HeaderValue = bool | int | bytes | str | uuid.UUID


class EventStreamError(ValueError):
    """The byte stream is not a valid event stream (bad length or CRC)."""


@dataclass(slots=True)
class EventStreamMessage:
    headers: dict[str, HeaderValue]
    payload: bytes

    def header(self, name: str) -> str:
        """A string header, or "" when absent."""
        value = self.headers.get(name)
        return value if isinstance(value, str) else ""


class EventStreamDecoder:
    """Feed bytes as they arrive, get whole messages back."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet form a whole message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[EventStreamMessage]:
        self._buf += data
        messages: list[EventStreamMessage] = []
        while len(self._buf) >= _PRELUDE_LEN:
            total, headers_len, prelude_crc = _PRELUDE.unpack_from(self._buf, 0)
            if zlib.crc32(memoryview(self._buf)[:8]) != prelude_crc:
                raise EventStreamError("event stream prelude CRC mismatch")
            if total > MAX_MESSAGE_LENGTH or total < _PRELUDE_LEN + headers_len + _CRC_LEN:
                raise EventStreamError(f"event stream message length {total} is invalid")
            if len(self._buf) < total:
                break
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            (message_crc,) = struct.unpack_from(">I", frame, total - _CRC_LEN)
            if zlib.crc32(frame[: total - _CRC_LEN]) != message_crc:
                raise EventStreamError("event stream message CRC mismatch")
            headers_end = _PRELUDE_LEN + headers_len
            headers = _decode_headers(frame[_PRELUDE_LEN:headers_end])
            messages.append(EventStreamMessage(headers, frame[headers_end : total - _CRC_LEN]))
        return messages


def _decode_headers(raw: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos, end = 0, len(raw)
    try:
        while pos < end:
            name_len = raw[pos]
            name = raw[pos + 1 : pos + 1 + name_len].decode("utf-8")
            pos += 1 + name_len
            kind = raw[pos]
            pos += 1
            value: HeaderValue
            if kind == _BOOL_TRUE:
                value = True
            elif kind == _BOOL_FALSE:
                value = False
            elif kind == _BYTE:
                (value,) = struct.unpack_from(">b", raw, pos)
                pos += 1
            elif kind == _SHORT:
                (value,) = struct.unpack_from(">h", raw, pos)
                pos += 2
            elif kind == _INT:
                (value,) = struct.unpack_from(">i", raw, pos)
                pos += 4
            elif kind in (_LONG, _TIMESTAMP):
                (value,) = struct.unpack_from(">q", raw, pos)
                pos += 8
            elif kind in (_BYTES, _STRING):
                (length,) = struct.unpack_from(">H", raw, pos)
                blob = raw[pos + 2 : pos + 2 + length]
                if len(blob) != length:
                    raise EventStreamError("event stream header value truncated")
                value = blob.decode("utf-8") if kind == _STRING else blob
                pos += 2 + length
            elif kind == _UUID:
                value = uuid.UUID(bytes=raw[pos : pos + 16])
                pos += 16
            else:
                raise EventStreamError(f"unknown event stream header type {kind}")
            headers[name] = value
    except (struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, EventStreamError):
            raise
        raise EventStreamError(f"malformed event stream headers: {exc}") from exc
    return headers


def _encode_header(name: str, value: HeaderValue) -> bytes:
    raw_name = name.encode("utf-8")
    head = bytes([len(raw_name)]) + raw_name
    if isinstance(value, bool):
        return head + bytes([_BOOL_TRUE if value else _BOOL_FALSE])
    if isinstance(value, int):
        return head + bytes([_LONG]) + struct.pack(">q", value)
    if isinstance(value, str):
        blob = value.encode("utf-8")
        return head + bytes([_STRING]) + struct.pack(">H", len(blob)) + blob
    if isinstance(value, uuid.UUID):
        return head + bytes([_UUID]) + value.bytes
    return head + bytes([_BYTES]) + struct.pack(">H", len(value)) + value


def encode_message(headers: dict[str, HeaderValue], payload: bytes) -> bytes:
    """One framed message with both CRCs."""
    raw_headers = b"".join(_encode_header(name, value) for name, value in headers.items())
    total = _PRELUDE_LEN + len(raw_headers) + len(payload) + _CRC_LEN
    prelude = struct.pack(">II", total, len(raw_headers))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw_headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def encode_event(event_type: str, payload: bytes) -> bytes:
    """An ``event`` message as AWS services send them (JSON payload)."""
    return encode_message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}, payload
    )


def encode_exception(exception_type: str, payload: bytes) -> bytes:
    """An ``exception`` message (a modelled error inside the stream)."""
    return encode_message(
        {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"},
        payload,
    )
