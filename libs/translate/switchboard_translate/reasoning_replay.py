"""Claude's signed thinking, carried through a Responses client in a reasoning item's ``encrypted_content``.

With extended thinking, Anthropic accepts the turn after a tool call only when
the assistant turn that called the tool begins with the thinking blocks Claude
wrote, each with its ``signature`` (``redacted_thinking`` blocks with their
``data``); without them the gateway must turn thinking off for that turn (see
:mod:`.anthropic.request_to_anthropic`). Responses clients (Codex, the Agents
SDK with ``store: false``) keep a reasoning item as it came and send it back in
the next request's ``input``, as they do with OpenAI's own encrypted reasoning.
The gateway stores nothing, so the blocks themselves travel in the item's
``encrypted_content``: :data:`PREFIX` and the blocks' JSON in URL-safe base64.

The value is opaque to the client but not secret — the thinking text is in
the same item, and Anthropic verifies every signature — so it is encoded, not
encrypted. An ``encrypted_content`` not of this form (OpenAI's own, or
anything else) decodes to nothing, and its item is left out of the
conversation as before: no other model can replay it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

__all__ = ["PREFIX", "decode_thinking_blocks", "encode_thinking_blocks", "replayable_blocks"]

#: Marks an ``encrypted_content`` written by this module (and the version of its format).
PREFIX = "sbthink1."


def replayable_blocks(blocks: object) -> list[dict[str, Any]]:
    """The blocks of ``blocks`` Anthropic can take back: signed ``thinking`` and ``redacted_thinking``.

    A thinking block without a signature (a provider that signs nothing) has nothing to replay.
    """
    if not isinstance(blocks, list):
        return []
    kept: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "thinking" and isinstance(block.get("thinking"), str) and _text(block.get("signature")):
            kept.append({"type": "thinking", "thinking": block["thinking"], "signature": block["signature"]})
        elif kind == "redacted_thinking" and _text(block.get("data")):
            kept.append({"type": "redacted_thinking", "data": block["data"]})
    return kept


def encode_thinking_blocks(blocks: object) -> str | None:
    """The ``encrypted_content`` carrying ``blocks``, or None when none of them can be replayed."""
    kept = replayable_blocks(blocks)
    if not kept:
        return None
    return PREFIX + base64.urlsafe_b64encode(orjson.dumps(kept)).decode("ascii")


def decode_thinking_blocks(value: object) -> list[dict[str, Any]]:
    """The thinking blocks an ``encrypted_content`` of this gateway carries; empty for any other value."""
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return []
    try:
        blocks = orjson.loads(base64.urlsafe_b64decode(value[len(PREFIX):]))
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        return []
    kept = replayable_blocks(blocks)
    return kept if isinstance(blocks, list) and len(kept) == len(blocks) else []


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value)
