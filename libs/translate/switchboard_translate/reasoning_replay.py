"""What a model needs back on the next turn, carried through a Responses client in a reasoning item's
``encrypted_content``.

Two providers refuse, or answer worse, a tool turn whose history lost what they
signed:

- Claude, with extended thinking, takes the turn after a tool call only when
  the assistant turn that called the tool begins with the thinking blocks it
  wrote, each with its ``signature`` (``redacted_thinking`` blocks with their
  ``data``); without them the gateway must turn thinking off for that turn
  (see :mod:`.anthropic.request_to_anthropic`).
- Gemini signs its function calls (``thoughtSignature``; in chat, the tool
  call's ``extra_content.google.thought_signature``, the field of Google's own
  OpenAI-compatible endpoint). Gemini 3 refuses a replayed call without its
  signature, so the gateway sends Google's documented placeholder then, and
  the model loses the reasoning it had.

Responses clients (Codex, the Agents SDK with ``store: false``) keep a
reasoning item as it came and send it back in the next request's ``input``,
as they do with OpenAI's own encrypted reasoning; a ``function_call`` item has
no field for a signature. The gateway stores nothing, so both travel in a
reasoning item's ``encrypted_content``: :data:`PREFIX` and a JSON list in
URL-safe base64 of Claude's blocks and of ``{"type": "thought_signature",
"call_id", "signature"}`` entries, one per signed call. A Gemini tool call
comes back after a reasoning item carrying its signature (one of its own when
the answer had no thinking text).

The value is opaque to the client but not secret — the thinking text is in
the same item, and the providers verify every signature — so it is encoded,
not encrypted. An ``encrypted_content`` not of this form (OpenAI's own, or
anything else) decodes to nothing, and its item is left out of the
conversation as before: no other model can replay it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["PREFIX", "Replay", "call_signature", "decode_replay", "encode_replay", "replayable_blocks",
           "with_call_signature"]

#: Marks an ``encrypted_content`` written by this module (and the version of its format).
PREFIX = "sbthink1."
_SIGNATURE_ENTRY = "thought_signature"


@dataclass(frozen=True, slots=True)
class Replay:
    """What one reasoning item carries for the next turn."""

    #: Claude's signed thinking blocks, for the assistant turn the item begins.
    thinking_blocks: list[dict[str, Any]] = field(default_factory=list)
    #: Gemini's thought signatures, by the call id of the function call each goes with.
    thought_signatures: dict[str, str] = field(default_factory=dict)


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


def call_signature(call: object) -> str | None:
    """The thought signature a chat tool call carries (``extra_content.google.thought_signature``), or None."""
    extra = call.get("extra_content") if isinstance(call, dict) else None
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if _text(signature) else None


def with_call_signature(call: dict[str, Any], signature: str) -> dict[str, Any]:
    """The chat tool call ``call`` carrying ``signature`` where Gemini's translation reads it (changed in place)."""
    call["extra_content"] = {"google": {"thought_signature": signature}}
    return call


def encode_replay(blocks: object, signatures: Mapping[str, str] | None = None) -> str | None:
    """The ``encrypted_content`` carrying ``blocks`` and the ``signatures`` of calls (call id → signature), or None
    when there is nothing to replay."""
    entries: list[dict[str, Any]] = replayable_blocks(blocks)
    entries += [{"type": _SIGNATURE_ENTRY, "call_id": call_id, "signature": signature}
                for call_id, signature in (signatures or {}).items() if _text(call_id) and _text(signature)]
    if not entries:
        return None
    return PREFIX + base64.urlsafe_b64encode(orjson.dumps(entries)).decode("ascii")


def decode_replay(value: object) -> Replay:
    """What an ``encrypted_content`` of this gateway carries; nothing for any other value (or one altered)."""
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return Replay()
    try:
        entries = orjson.loads(base64.urlsafe_b64decode(value[len(PREFIX):]))
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        return Replay()
    if not isinstance(entries, list):
        return Replay()
    signed = [e for e in entries if isinstance(e, dict) and e.get("type") == _SIGNATURE_ENTRY
              and _text(e.get("call_id")) and _text(e.get("signature"))]
    blocks = replayable_blocks([e for e in entries if not (isinstance(e, dict) and e.get("type") == _SIGNATURE_ENTRY)])
    if len(blocks) + len(signed) != len(entries):
        return Replay()
    return Replay(blocks, {e["call_id"]: e["signature"] for e in signed})


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value)
