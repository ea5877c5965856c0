"""An offline estimate of a chat prompt's token count, for ``POST /v1/messages/count_tokens``.

The gateway fronts models of many vendors whose tokenizers are not all public
(Anthropic's is not), and it cannot download BPE tables at run time; so this
is a documented estimate, not any model's tokenizer:

- text is split the way BPE pre-tokenizers split it (letter runs with their
  leading space, digit groups of up to three, punctuation runs, whitespace
  runs); a letter run counts one token per eight characters started, a
  punctuation run one per three, a digit group or whitespace run one, and
  every character outside Latin, Greek and Cyrillic scripts (CJK, emoji...)
  one token each;
- every message adds 3 tokens of framing, plus its role;
- an image counts as Anthropic documents (width × height / 750, at most
  1,600) when its size can be read from an inline PNG, GIF or JPEG header,
  otherwise 1,600; a document counts its text, or one token per three bytes
  of an inline file;
- tool definitions count as their JSON text, plus the tool-use system prompt
  Anthropic adds when tools are offered (346 tokens with ``tool_choice`` auto
  or none, 313 with any or a named tool).

It runs on the canonical (OpenAI chat) body, so it serves any dialect.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from typing import Any

import orjson

_PIECES = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d{1,3}| ?[^\s\w]+|_+|\s+", re.UNICODE)
_MESSAGE_FRAMING = 3
_IMAGE_MAX = 1600
_TOOL_PROMPT_AUTO = 346
_TOOL_PROMPT_FORCED = 313


def text_tokens(text: str) -> int:
    """Estimated tokens of one string."""
    total = 0
    for match in _PIECES.finditer(text):
        piece = match.group()
        wide = sum(1 for ch in piece if ord(ch) > 0x2FF and not 0x370 <= ord(ch) <= 0x52F)
        narrow = len(piece) - wide
        if piece[-1].isalpha():
            total += wide + (-(-narrow // 8) if narrow else 0)
        elif piece.isspace() or piece.strip().isdigit():
            total += 1
        else:
            total += wide + -(-narrow // 3)
    return total


def chat_prompt_tokens(body: dict[str, Any]) -> int:
    """Estimated input tokens of a canonical chat body: messages, images, documents and tools."""
    total = 0
    for message in body.get("messages") or []:
        total += _MESSAGE_FRAMING + text_tokens(str(message.get("role", "")))
        total += _content_tokens(message.get("content"))
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            total += text_tokens(str(function.get("name", ""))) + text_tokens(str(function.get("arguments", "")))
        if isinstance(message.get("reasoning_content"), str):
            total += text_tokens(message["reasoning_content"])
    tools = body.get("tools") or []
    if tools:
        forced = body.get("tool_choice") == "required" or isinstance(body.get("tool_choice"), dict)
        total += _TOOL_PROMPT_FORCED if forced else _TOOL_PROMPT_AUTO
        for tool in tools:
            total += text_tokens(orjson.dumps(tool.get("function", tool)).decode())
    return total


def _content_tokens(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return text_tokens(content)
    total = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            total += text_tokens(str(part.get("text", "")))
        elif kind == "image_url":
            image = part.get("image_url") or {}
            total += image_tokens(image if isinstance(image, str) else str(image.get("url", "")))
        elif kind == "file":
            total += _file_tokens(str((part.get("file") or {}).get("file_data", "")))
    return total


def image_tokens(url: str) -> int:
    """Anthropic's documented image cost when the size is readable from an inline image, else its ceiling."""
    size = _image_size(_data_url_bytes(url, 64 * 1024)) if url.startswith("data:") else None
    if size is None:
        return _IMAGE_MAX
    width, height = size
    return max(1, min(_IMAGE_MAX, -(-width * height // 750)))


def _file_tokens(file_data: str) -> int:
    if file_data.startswith("data:text/"):
        return text_tokens(_data_url_bytes(file_data).decode("utf-8", "replace"))
    _, _, encoded = file_data.partition(",")
    return max(1, len(encoded) * 3 // 4 // 3)


def _data_url_bytes(url: str, limit: int | None = None) -> bytes:
    _, _, encoded = url.partition(",")
    if limit is not None:
        encoded = encoded[: limit // 3 * 4]
    try:
        return base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError):
        return b""


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF or JPEG header, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walks JPEG segments to the first start-of-frame marker, which holds the size."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None
