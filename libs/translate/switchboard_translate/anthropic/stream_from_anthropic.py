"""Anthropic Messages stream events → OpenAI ``chat.completion.chunk`` objects.

Anthropic streams a message as ``message_start``, then per content block a
``content_block_start``, deltas and a ``content_block_stop``, then
``message_delta`` (stop reason, cumulative usage) and ``message_stop``, with
``ping`` and ``error`` events anywhere. OpenAI streams deltas of one choice;
tool calls are keyed by their position among the message's tool calls, so
each ``tool_use`` block is given the next tool-call index when it starts and
its ``input_json_delta`` fragments become argument deltas under that index.

Thinking text becomes ``reasoning_content``. What a client must send back for
Anthropic to accept a later tool-use turn, a thinking block's ``signature``
and a ``redacted_thinking`` block's ``data``, travels in ``thinking_blocks``
deltas (as in a whole answer, and as LiteLLM streams them): a signature as
``{"type": "thinking", "thinking": "", "signature": ...}``, a redacted block
whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from switchboard_translate.anthropic.stop_reasons import finish_reason_from_anthropic
from switchboard_translate.anthropic.usage import merge_anthropic_usage, openai_usage_from_anthropic


@dataclass(slots=True)
class StreamFailure:
    """An ``error`` event inside the stream, or a stream that ended before ``message_stop``."""

    type: str
    message: str


class AnthropicStreamToChat:
    """Turns one Anthropic message stream's decoded events into OpenAI chunk objects.

    ``usage`` (OpenAI usage object) is set from ``message_start`` on and kept
    current, so it is there even when the client did not ask for the usage
    chunk; the chunk itself (``choices: []``) is emitted only when
    ``include_usage`` is true.
    """

    def __init__(self, *, model: str = "", include_usage: bool = False, created: int | None = None) -> None:
        self.model = model
        self.include_usage = include_usage
        self.created = created if created is not None else int(time.time())
        self.id = ""
        self.usage: dict[str, Any] | None = None
        self.failure: StreamFailure | None = None
        self.finished = False
        self._anthropic_usage: dict[str, Any] = {}
        #: Content-block index → tool-call index, for tool_use blocks.
        self._tool_index: dict[int, int] = {}
        self._finish_reason: str | None = None

    def event(self, kind: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Chunks for one event; ``kind`` is the event's type (its SSE name or its data's ``type``)."""
        kind = data.get("type") or kind
        handler = getattr(self, "_on_" + kind, None)
        return handler(data) if handler is not None else []

    def close(self) -> list[dict[str, Any]]:
        """Called when the byte stream ends: records a failure if the message never finished."""
        if not self.finished and self.failure is None:
            self.failure = StreamFailure("stream_cut", "the Anthropic stream ended before message_stop")
        return []

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }

    def _set_usage(self, update: dict[str, Any]) -> None:
        self._anthropic_usage = merge_anthropic_usage(self._anthropic_usage, update)
        self.usage = openai_usage_from_anthropic(self._anthropic_usage)

    def _on_message_start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        message = data.get("message") or {}
        self.id = message.get("id", "")
        self.model = self.model or message.get("model", "")
        self._set_usage(message.get("usage") or {})
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_content_block_start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        block = data.get("content_block") or {}
        kind = block.get("type")
        if kind == "tool_use":
            tool_index = len(self._tool_index)
            self._tool_index[data.get("index", 0)] = tool_index
            call = {
                "index": tool_index,
                "id": block.get("id", ""),
                "type": "function",
                "function": {"name": block.get("name", ""), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        if kind == "redacted_thinking":
            return [self._chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": block.get("data", "")}]})]
        return []

    def _on_content_block_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": delta.get("text", "")})]
        if kind == "input_json_delta":
            fragment = delta.get("partial_json", "")
            tool_index = self._tool_index.get(data.get("index", 0))
            if not fragment or tool_index is None:
                return []
            return [self._chunk({"tool_calls": [{"index": tool_index, "function": {"arguments": fragment}}]})]
        if kind == "thinking_delta":
            return [self._chunk({"reasoning_content": delta.get("thinking", "")})]
        if kind == "signature_delta" and delta.get("signature"):
            signed = {"type": "thinking", "thinking": "", "signature": delta["signature"]}
            return [self._chunk({"thinking_blocks": [signed]})]
        return []

    def _on_message_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        if data.get("usage"):
            self._set_usage(data["usage"])
        delta = data.get("delta") or {}
        stop_reason = delta.get("stop_reason")
        if stop_reason is None:
            return []
        self._finish_reason = finish_reason_from_anthropic(stop_reason)
        chunk = self._chunk({}, self._finish_reason)
        if stop_reason == "stop_sequence" and delta.get("stop_sequence"):
            chunk["choices"][0]["stop_reason"] = delta["stop_sequence"]  # the matched sequence (see stop_reasons)
        return [chunk]

    def _on_message_stop(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        self.finished = True
        if not self.include_usage or self.usage is None:
            return []
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = self.usage
        return [chunk]

    def _on_error(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        error = data.get("error") or {}
        self.failure = StreamFailure(error.get("type", "api_error"), error.get("message", "Anthropic stream error"))
        return []
