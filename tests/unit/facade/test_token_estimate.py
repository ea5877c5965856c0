"""The count_tokens estimate: text pieces, image sizes read from headers, tools."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from switchboard_facade.token_estimate import chat_prompt_tokens, image_tokens, text_tokens


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def data_url(media_type: str, raw: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(raw).decode()}"


@pytest.mark.parametrize(("text", "tokens"), [
    ("", 0),
    ("Hello, world! How are you?", 8),           # Hello , ␣world ! ␣How ␣are ␣you ?
    ("12345678", 3),                              # 123 456 78
    ("internationalization", 3),                 # 20 letters: one token per eight started
    ("你好世界", 4),                               # one token per CJK character
    ("a\n\n  b", 3),
])
def test_text_pieces(text: str, tokens: int) -> None:
    assert text_tokens(text) == tokens


@pytest.mark.parametrize(("media_type", "image"), [("image/png", png(300, 200)), ("image/gif", gif(300, 200)),
                                                   ("image/jpeg", jpeg(300, 200))])
def test_image_size_is_read_from_its_header(media_type: str, image: bytes) -> None:
    assert image_tokens(data_url(media_type, image)) == 80  # 300 × 200 / 750


def test_large_unreadable_and_remote_images_count_the_ceiling() -> None:
    assert image_tokens(data_url("image/png", png(4000, 3000))) == 1600
    assert image_tokens(data_url("image/webp", b"RIFF....WEBP")) == 1600
    assert image_tokens("https://example.com/cat.png") == 1600


def test_messages_tools_and_calls_all_count() -> None:
    base = {"messages": [{"role": "user", "content": "hi"}]}
    plain = chat_prompt_tokens(base)
    assert plain == 3 + 1 + 1
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    auto = chat_prompt_tokens({**base, "tools": [tool]})
    forced = chat_prompt_tokens({**base, "tools": [tool], "tool_choice": "required"})
    assert auto - forced == 346 - 313 and forced > plain + 313
    with_call = chat_prompt_tokens({"messages": [*base["messages"], {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]}]})
    assert with_call > plain + 3
    with_image = chat_prompt_tokens({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi"},
        {"type": "image_url", "image_url": {"url": data_url("image/gif", gif(75, 10))}}]}]})
    assert with_image == plain + 1
