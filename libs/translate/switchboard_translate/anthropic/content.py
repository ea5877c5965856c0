"""Content parts (OpenAI) and content blocks (Anthropic): text, images and files, both ways.

OpenAI sends images as ``image_url`` parts whose URL is either a ``data:`` URL
or a web address; Anthropic wants an ``image`` block with a ``base64`` or a
``url`` source. PDF files travel as OpenAI ``file`` parts and Anthropic
``document`` blocks. ``cache_control`` marks on parts are kept: they are how
OpenAI-dialect clients ask Anthropic to cache a prompt prefix.
"""

from __future__ import annotations

import base64
from typing import Any

from switchboard_translate.anthropic.errors import TranslationError


def split_data_url(url: str) -> tuple[str, str] | None:
    """``(media_type, base64 data)`` of a base64 ``data:`` URL, or None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise TranslationError("data: URLs must be base64-encoded (data:<media type>;base64,<data>)")
    return header[: -len(";base64")] or "application/octet-stream", data


def _with_cache_control(block: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    if part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def text_of(content: Any) -> str:
    """The text of an OpenAI ``content`` that may be a string, None or a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") in ("text", "refusal", None))


def part_to_block(part: dict[str, Any], *, where: str) -> dict[str, Any]:
    """One OpenAI content part as one Anthropic content block."""
    kind = part.get("type")
    if kind == "text":
        return _with_cache_control({"type": "text", "text": part.get("text", "")}, part)
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal", "")}
    if kind == "image_url":
        image = part.get("image_url") or {}
        url = image if isinstance(image, str) else image.get("url", "")
        inline = split_data_url(url)
        if inline is None:
            source: dict[str, Any] = {"type": "url", "url": url}
        else:
            source = {"type": "base64", "media_type": inline[0], "data": inline[1]}
        return _with_cache_control({"type": "image", "source": source}, part)
    if kind == "file":
        file = part.get("file") or {}
        file_data = file.get("file_data")
        if not file_data:
            raise TranslationError(f"{where}: file parts need inline file_data; file ids are not supported")
        inline = split_data_url(file_data)
        if inline is None:
            raise TranslationError(f"{where}: file_data must be a base64 data: URL")
        media_type, data = inline
        if media_type == "text/plain":
            source = {"type": "text", "media_type": "text/plain", "data": base64.b64decode(data).decode()}
        else:
            source = {"type": "base64", "media_type": media_type, "data": data}
        block: dict[str, Any] = {"type": "document", "source": source}
        if file.get("filename"):
            block["title"] = file["filename"]
        return _with_cache_control(block, part)
    raise TranslationError(f"{where}: content parts of type {kind!r} are not supported by Anthropic models")


def content_to_blocks(content: Any, *, where: str) -> list[dict[str, Any]]:
    """An OpenAI ``content`` (string, None or parts) as Anthropic blocks; empty text yields no block."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [part_to_block(part, where=where) for part in content]


def block_to_part(block: dict[str, Any]) -> dict[str, Any] | None:
    """One Anthropic user-content block as an OpenAI part (None for kinds OpenAI has no part for)."""
    kind = block.get("type")
    if kind == "text":
        text = block.get("text", "")
        if not isinstance(text, str):
            raise TranslationError("text blocks need a string 'text'")
        return _with_cache_control({"type": "text", "text": text}, block)
    source = block.get("source") or {}
    if kind in ("image", "document") and not isinstance(source, dict):
        raise TranslationError(f"a {kind} block's 'source' must be an object")
    if kind == "image":
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
        elif source.get("type") == "url":
            url = source.get("url", "")
        else:
            raise TranslationError(f"image sources of type {source.get('type')!r} are not supported")
        return _with_cache_control({"type": "image_url", "image_url": {"url": url}}, block)
    if kind == "document":
        if source.get("type") == "base64":
            file_data = f"data:{source.get('media_type', 'application/pdf')};base64,{source.get('data', '')}"
        elif source.get("type") == "text" and isinstance(source.get("data", ""), str):
            file_data = "data:text/plain;base64," + base64.b64encode(source.get("data", "").encode()).decode()
        else:
            raise TranslationError(f"document sources of type {source.get('type')!r} are not supported")
        file: dict[str, Any] = {"file_data": file_data}
        if block.get("title"):
            file["filename"] = block["title"]
        return _with_cache_control({"type": "file", "file": file}, block)
    raise TranslationError(f"content blocks of type {kind!r} are not supported here")
