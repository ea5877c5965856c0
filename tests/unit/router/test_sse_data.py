"""The pass-through SSE decoder gives, for any byte split, the data the reference decoder gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from switchboard_router.providers.sse_data import SSEDataDecoder
from switchboard_translate.sse import SSEDecoder

STREAM = (
    b": comment\n"
    b"event: message_start\ndata: {\"a\": 1}\n\n"
    b"data: line one\ndata: line two\n\n"
    b"id: 7\r\ndata: crlf\r\ndata: crlf two\r\n\r\n"
    b"data: cr only\r\r"
    b"data:no space\n\n"
    b"data:  two spaces\n\n"
    b"data\n\n"
    b"data:\ndata:\n\n"
    b"event: ping\n\n"
    b"data : not data\n\n"
    b"data: h\xc3\xa9llo \xe2\x9c\x93\n\n"
    b"data: [DONE]\n\n"
)


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(set(cuts))
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]


def decoded(parts: list[bytes]) -> list[bytes]:
    decoder = SSEDataDecoder()
    out = []
    for part in parts:
        out.extend(decoder.feed(part))
    return out + decoder.close()


def reference(parts: list[bytes]) -> list[bytes]:
    decoder = SSEDecoder()
    events = []
    for part in parts:
        events.extend(decoder.feed(part))
    events.extend(decoder.close())
    return [e.data.encode() for e in events if e.data]


def test_whole_stream() -> None:
    assert [d for d in decoded([STREAM]) if d] == reference([STREAM])
    assert decoded([STREAM])[:3] == [b'{"a": 1}', b"line one\nline two", b"crlf\ncrlf two"]


def test_a_split_between_cr_and_lf_is_one_line_ending() -> None:
    stream = b"data: one\r\ndata: two\r\n\r\n"
    cut = stream.index(b"\n")
    assert decoded([stream[:cut], stream[cut:]]) == [b"one\ntwo"]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_reference_data(cuts: list[int]) -> None:
    parts = split(STREAM, cuts)
    assert [d for d in decoded(parts) if d] == reference(parts)


@given(st.lists(st.sampled_from([b"data: x", b"data:", b"data", b": c", b"event: e", b"id: 1", b"", b"data: \xc3\xa9"]),
                max_size=12),
       st.sampled_from([b"\n", b"\r\n", b"\r"]),
       st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_random_streams_with_any_line_ending_match_the_reference(lines: list[bytes], ending: bytes,
                                                                  cuts: list[int]) -> None:
    stream = b"".join(line + ending for line in lines) + ending
    parts = split(stream, [c for c in cuts if c <= len(stream)])
    assert [d for d in decoded(parts) if d] == reference(parts)


def test_a_final_event_without_a_blank_line_is_flushed_on_close() -> None:
    assert decoded([b"data: tail"]) == [b"tail"]
    assert decoded([b"data: tail\r"]) == [b"tail"]
