"""OpenAI ``chat.completion.chunk`` objects → Anthropic Messages stream events, for the facade.

Anthropic's stream is stricter than OpenAI's: ``message_start`` comes first,
content blocks are opened, filled and closed one at a time in index order,
and the stop reason and usage come at the end in ``message_delta``. OpenAI
chunks may start with a tool call, may send a tool call's arguments before its
id and name, and announce the end with ``finish_reason`` and (maybe) a usage
chunk. So this translator opens ``message_start`` on the first chunk whatever
it holds, buffers each tool call's argument fragments (by OpenAI index) until
its id and name are known, closes the open block before opening the next, and
ends the message only when :meth:`ChatStreamToAnthropic.close` is called.

Thinking arrives as ``reasoning_content`` text; a block's signature and
``redacted_thinking`` blocks arrive in ``thinking_blocks`` deltas. A signature
ends its thinking block: it is sent as the block's last ``signature_delta``
when the block closes, and thinking text after it opens the next block.

OpenAI sources send one tool call's arguments before the next call begins;
should a source interleave them, fragments for a call whose block was already
closed are still sent under that block's index, which the SDKs accumulate by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from switchboard_translate.anthropic.response_to_anthropic import thinking_blocks_of
from switchboard_translate.anthropic.stop_reasons import matched_stop_sequence, stop_reason_from_openai
from switchboard_translate.anthropic.tool_ids import tool_id_to_anthropic
from switchboard_translate.anthropic.usage import anthropic_usage_from_openai
from switchboard_translate.sse import encode_event


@dataclass(slots=True)
class _ToolCall:
    id: str = ""
    name: str = ""
    pending: list[str] = field(default_factory=list)
    #: Anthropic content-block index once the block is open.
    block: int | None = None


class ChatStreamToAnthropic:
    """Feeds on OpenAI chunk objects, yields Anthropic event objects (each with its ``type``)."""

    def __init__(self, *, model: str = "", message_id: str = "") -> None:
        self.model = model
        self.message_id = message_id
        self._started = False
        self._finished = False
        self._next_block = 0
        #: ("text" | "thinking" | "tool", block index, OpenAI tool index or -1) of the open block.
        self._open: tuple[str, int, int] | None = None
        self._tools: dict[int, _ToolCall] = {}
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        #: The signature of the open thinking block, sent when the block closes.
        self._signature = ""
        #: The stop sequence that ended the answer, when the source says which.
        self._stop_sequence: str | None = None

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """Events for one OpenAI chunk."""
        events: list[dict[str, Any]] = []
        self._start(chunk, events)
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                self._text_like("thinking", "thinking_delta", "thinking", delta["reasoning_content"], events)
            if isinstance(delta.get("thinking_blocks"), list):
                self._thinking_blocks(delta["thinking_blocks"], not delta.get("reasoning_content"), events)
            text = delta.get("content") or delta.get("refusal")
            if text:
                self._text_like("text", "text_delta", "text", text, events)
            for call in delta.get("tool_calls") or []:
                self._tool_delta(call, events)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
                self._stop_sequence = matched_stop_sequence(choice)
        return events

    def close(self, usage: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The closing events; ``usage`` (OpenAI usage object) overrides what the chunks reported."""
        if self._finished:
            return []
        events: list[dict[str, Any]] = []
        self._start({}, events)
        for index in sorted(self._tools):
            tool = self._tools[index]
            if tool.block is None:
                # Never got an id or a name: open it now with what is known, so no argument is lost.
                self._open_tool(index, tool, events)
        self._close_open(events)
        self._finished = True
        anthropic_usage = anthropic_usage_from_openai(usage or self._usage)
        matched = self._stop_sequence if self._finish_reason == "stop" else None
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason_from_openai(self._finish_reason, stop_sequence=matched),
                          "stop_sequence": matched},
                "usage": anthropic_usage,
            }
        )
        events.append({"type": "message_stop"})
        return events

    def interrupted(self, usage: dict[str, Any]) -> list[dict[str, Any]]:
        """The events that go before the ``error`` event of a stream that failed after it began.

        Anthropic's stream has one carrier of usage after ``message_start``: ``message_delta``, whose counts are
        cumulative, sent once the content blocks are closed. So the open block is closed and a ``message_delta``
        says what the answer consumed (``usage``, an OpenAI usage object: what was billed) with no stop reason,
        for the answer did not stop; no ``message_stop`` follows. Nothing when the message never started: the
        ``error`` event alone is then the whole stream, as Anthropic sends it.
        """
        if self._finished or not self._started:
            return []
        events: list[dict[str, Any]] = []
        self._close_open(events)
        self._finished = True
        events.append({"type": "message_delta", "delta": {"stop_reason": None, "stop_sequence": None},
                       "usage": anthropic_usage_from_openai(usage)})
        return events

    @staticmethod
    def error(message: str, error_type: str = "api_error") -> dict[str, Any]:
        """An ``error`` event, for a failure after the stream has begun."""
        return {"type": "error", "error": {"type": error_type, "message": message}}

    def _start(self, chunk: dict[str, Any], events: list[dict[str, Any]]) -> None:
        if self._started:
            return
        self._started = True
        self.message_id = self.message_id or chunk.get("id") or "msg_switchboard"
        self.model = self.model or chunk.get("model") or ""
        usage = anthropic_usage_from_openai(chunk.get("usage"))
        events.append(
            {
                "type": "message_start",
                "message": {
                    "id": self.message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            }
        )

    def _open_block(self, kind: str, block: dict[str, Any], tool_index: int, events: list[dict[str, Any]]) -> int:
        self._close_open(events)
        index = self._next_block
        self._next_block += 1
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        self._open = (kind, index, tool_index)
        return index

    def _close_open(self, events: list[dict[str, Any]]) -> None:
        if self._open is None:
            return
        if self._open[0] == "thinking" and self._signature:
            events.append({"type": "content_block_delta", "index": self._open[1],
                           "delta": {"type": "signature_delta", "signature": self._signature}})
            self._signature = ""
        events.append({"type": "content_block_stop", "index": self._open[1]})
        self._open = None

    def _text_like(self, kind: str, delta_type: str, field_name: str, text: str, events: list[dict[str, Any]]) -> None:
        if self._open is None or self._open[0] != kind or (kind == "thinking" and self._signature):
            start: dict[str, Any] = {"type": kind, field_name: ""}
            if kind == "thinking":
                start["signature"] = ""
            self._open_block(kind, start, -1, events)
        assert self._open is not None
        events.append(
            {"type": "content_block_delta", "index": self._open[1], "delta": {"type": delta_type, field_name: text}}
        )

    def _thinking_blocks(self, blocks: list[Any], with_text: bool, events: list[dict[str, Any]]) -> None:
        """Signatures and redacted blocks of a ``thinking_blocks`` delta; with ``with_text``, also the thinking
        text it carries (a delta with ``reasoning_content`` has its text there already)."""
        for block in blocks:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "redacted_thinking":
                self._open_block("redacted_thinking", {"type": "redacted_thinking", "data": block.get("data", "")},
                                 -1, events)
                self._close_open(events)
            elif block.get("type") == "thinking":
                text = block.get("thinking") if with_text else None
                signature = block.get("signature")
                if isinstance(text, str) and text:
                    self._text_like("thinking", "thinking_delta", "thinking", text, events)
                if isinstance(signature, str) and signature:
                    if self._open is None or self._open[0] != "thinking" or self._signature:
                        self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""}, -1, events)
                    self._signature = signature

    def _tool_delta(self, call: dict[str, Any], events: list[dict[str, Any]]) -> None:
        index = call.get("index", 0)
        tool = self._tools.setdefault(index, _ToolCall())
        if call.get("id"):
            tool.id = call["id"]
        function = call.get("function") or {}
        if function.get("name"):
            tool.name = function["name"]
        if function.get("arguments"):
            tool.pending.append(function["arguments"])
        if tool.block is None:
            if tool.id and tool.name:
                self._open_tool(index, tool, events)
            return
        self._flush_arguments(tool, events)

    def _open_tool(self, index: int, tool: _ToolCall, events: list[dict[str, Any]]) -> None:
        block = {
            "type": "tool_use",
            "id": tool_id_to_anthropic(tool.id or f"call_{index}"),
            "name": tool.name,
            "input": {},
        }
        tool.block = self._open_block("tool", block, index, events)
        self._flush_arguments(tool, events)

    def _flush_arguments(self, tool: _ToolCall, events: list[dict[str, Any]]) -> None:
        if not tool.pending or tool.block is None:
            return
        fragment = "".join(tool.pending)
        tool.pending.clear()
        events.append(
            {
                "type": "content_block_delta",
                "index": tool.block,
                "delta": {"type": "input_json_delta", "partial_json": fragment},
            }
        )


def encode_anthropic_events(events: list[dict[str, Any]]) -> bytes:
    """Events framed as Anthropic frames them: ``event: <type>`` and one ``data:`` line each."""
    return b"".join(encode_event(event["type"], orjson.dumps(event)) for event in events)


def chat_completion_to_anthropic_events(
    completion: dict[str, Any], *, model: str | None = None
) -> list[dict[str, Any]]:
    """A whole ``chat.completion`` as the events of one Anthropic stream (for a non-streaming upstream)."""
    message = (completion.get("choices") or [{}])[0].get("message") or {}
    translator = ChatStreamToAnthropic(model=model or completion.get("model", ""), message_id=completion.get("id", ""))
    delta: dict[str, Any] = {"role": "assistant"}
    blocks = thinking_blocks_of(message)
    if any(block.get("signature") or block.get("type") == "redacted_thinking" for block in blocks):
        delta["thinking_blocks"] = blocks
    else:
        thinking = "".join(block.get("thinking", "") for block in blocks)
        if thinking:
            delta["reasoning_content"] = thinking
    if message.get("content"):
        delta["content"] = message["content"]
    if message.get("tool_calls"):
        delta["tool_calls"] = [dict(call, index=i) for i, call in enumerate(message["tool_calls"])]
    first = (completion.get("choices") or [{}])[0]
    ending = {"finish_reason": first.get("finish_reason")}
    if matched_stop_sequence(first):
        ending["stop_reason"] = first["stop_reason"]
    events = translator.feed({"choices": [{"index": 0, "delta": delta, **ending}]})
    return events + translator.close(completion.get("usage"))
