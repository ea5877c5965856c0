"""The SSE decoder accepts any byte split and every line ending the specification allows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from switchboard_translate.sse import DONE, SSEDecoder, encode_data, encode_event

STREAM = (
    b": comment\n"
    b"event: message_start\ndata: {\"a\": 1}\n\n"
    b"data: line one\ndata: line two\n\n"
    b"id: 7\r\ndata: crlf\r\n\r\n"
    b"data: cr only\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [("message_start", '{"a": 1}', None), ("message", "line one\nline two", None),
            ("message", "crlf", "7"), ("message", "cr only", "7"), ("message", "[DONE]", "7")]


def decode(parts: list[bytes]) -> list[tuple[str, str, str | None]]:
    decoder = SSEDecoder()
    events = []
    for part in parts:
        events.extend(decoder.feed(part))
    events.extend(decoder.close())
    return [(e.event, e.data, e.id) for e in events]


def test_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    parts = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert decode(parts) == EXPECTED


def test_final_event_without_blank_line_is_flushed_on_close() -> None:
    assert decode([b"data: tail"]) == [("message", "tail", None)]


def test_utf8_split_inside_a_character() -> None:
    payload = "data: héllo ✓\n\n".encode()
    cut = payload.index("✓".encode()) + 1
    assert decode([payload[:cut], payload[cut:]]) == [("message", "héllo ✓", None)]


def test_encoders() -> None:
    assert encode_data(b'{"x":1}') == b'data: {"x":1}\n\n'
    assert encode_event("ping", b"{}") == b"event: ping\ndata: {}\n\n"
    assert DONE == b"data: [DONE]\n\n"
