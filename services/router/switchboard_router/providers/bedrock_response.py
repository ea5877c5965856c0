"""Bedrock Converse answers → OpenAI chat.completion / chat.completion.chunk JSON, and Bedrock errors.

ConverseStream sends typed events (messageStart, contentBlockStart/Delta/Stop,
messageStop, metadata) in the binary event-stream framing; modelled errors
arrive as ``exception`` messages inside the stream, after a 200.

Reasoning (``reasoningContent`` blocks, Claude's extended thinking) comes back as
the Anthropic translation answers it: its text as ``reasoning_content``, and
what a client must send back for a later tool-use turn — a signed block's
signature, a redacted block's encrypted data — in ``thinking_blocks``, shaped
as Anthropic's (``{"type": "thinking", "thinking", "signature"}``,
``{"type": "redacted_thinking", "data"}``); streamed, a signature or a redacted
block comes as a ``thinking_blocks`` delta of its own.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from switchboard_router.providers.base import CompletionResult, StreamOptions, TokenUsage, UpstreamError
from switchboard_router.providers.bedrock_eventstream import EventStreamDecoder, EventStreamError, EventStreamMessage
from switchboard_router.providers.openai_shapes import ChunkEmitter, openai_usage

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

#: HTTP status of each modelled exception, for those sent inside a stream.
_EXCEPTION_STATUS = {
    "throttlingexception": 429,
    "servicequotaexceededexception": 429,
    "modelnotreadyexception": 429,
    "internalserverexception": 500,
    "serviceunavailableexception": 503,
    "modelstreamerrorexception": 424,
    "modeltimeoutexception": 408,
    "validationexception": 400,
    "accessdeniedexception": 403,
    "resourcenotfoundexception": 404,
}

_CONTEXT_MARKERS = ("too long", "too many input tokens", "context length", "context window", "maximum context")


def map_stop_reason(stop_reason: str | None) -> str:
    return _STOP_REASONS.get(stop_reason or "end_turn", "stop")


def usage_from_bedrock(usage: dict[str, Any]) -> TokenUsage:
    """Bedrock's inputTokens exclude cache reads and writes; OpenAI's prompt count includes them."""
    cache_read = int(usage.get("cacheReadInputTokens") or 0)
    cache_write = int(usage.get("cacheWriteInputTokens") or 0)
    return TokenUsage(
        prompt_tokens=int(usage.get("inputTokens") or 0) + cache_read + cache_write,
        completion_tokens=int(usage.get("outputTokens") or 0),
        cached_prompt_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def parse_converse(body: bytes, model: str) -> CompletionResult:
    """A Converse answer as an OpenAI chat.completion."""
    answer = orjson.loads(body)
    message = (answer.get("output") or {}).get("message") or {}
    text_parts: list[str] = []
    reasoning_parts: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        if "text" in block:
            text_parts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            tool_calls.append(
                {
                    "id": use.get("toolUseId", ""),
                    "type": "function",
                    "function": {"name": use.get("name", ""), "arguments": orjson.dumps(use.get("input")).decode()},
                }
            )
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"] or {}
            text = reasoning.get("reasoningText") or {}
            reasoning_parts.append(text.get("text", ""))
            thinking = thinking_block(reasoning)
            if thinking is not None:
                thinking_blocks.append(thinking)
    out_message: dict[str, Any] = {"role": "assistant", "content": "".join(text_parts) or None}
    if tool_calls:
        out_message["tool_calls"] = tool_calls
    if reasoning_parts:
        out_message["reasoning_content"] = "".join(reasoning_parts)
    if thinking_blocks:
        out_message["thinking_blocks"] = thinking_blocks
    finish = map_stop_reason(answer.get("stopReason"))
    if tool_calls and finish == "stop":
        finish = "tool_calls"
    usage = usage_from_bedrock(answer.get("usage") or {})
    completion = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": out_message, "finish_reason": finish, "logprobs": None}],
        "usage": openai_usage(usage),
    }
    return CompletionResult(body=completion, usage=usage)


def thinking_block(reasoning: dict[str, Any]) -> dict[str, Any] | None:
    """A whole ``reasoningContent`` block in Anthropic's shape, or None when it carries nothing to send back
    (reasoning text without a signature)."""
    if reasoning.get("redactedContent"):
        return {"type": "redacted_thinking", "data": reasoning["redactedContent"]}
    text = reasoning.get("reasoningText") or {}
    if text.get("signature"):
        return {"type": "thinking", "thinking": text.get("text", ""), "signature": text["signature"]}
    return None


def converse_error(status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
    """Normalises an error answer: the type is in ``x-amzn-errortype``, the text in ``{"message"}``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    error_type = lowered.get("x-amzn-errortype", "").split(":", 1)[0]
    message = ""
    try:
        parsed = orjson.loads(body) if body else {}
        if isinstance(parsed, dict):
            message = str(parsed.get("message") or parsed.get("Message") or "")
            error_type = error_type or str(parsed.get("__type", "")).rsplit("#", 1)[-1]
    except orjson.JSONDecodeError:
        message = body.decode("utf-8", "replace")[:500]
    return _upstream_error(status, error_type, message, lowered.get("retry-after"))


def _upstream_error(status: int, error_type: str, message: str, retry_after: str | None = None) -> UpstreamError:
    key = error_type.lower()
    if key in ("throttlingexception", "servicequotaexceededexception") and status < 500:
        status = 429
    lowered_message = message.lower()
    seconds: float | None = None
    if retry_after:
        try:
            seconds = float(retry_after)
        except ValueError:
            seconds = None
    return UpstreamError(
        status=status,
        message=message or f"Bedrock returned HTTP {status} {error_type}".strip(),
        type=error_type or "upstream_error",
        code=error_type,
        retry_after=seconds,
        context_window_exceeded=key == "validationexception" and any(m in lowered_message for m in _CONTEXT_MARKERS),
    )


class BedrockStreamTranslator(ChunkEmitter):
    """ConverseStream event-stream bytes → OpenAI chat.completion.chunk JSON."""

    def __init__(self, model: str, options: StreamOptions) -> None:
        self.usage: TokenUsage | None = None
        self.error: UpstreamError | None = None
        self._model = model
        self._options = options
        self._decoder = EventStreamDecoder()
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._created = int(time.time())
        self._sent_role = False
        self._finished = False
        #: Bedrock content block index → OpenAI tool call index.
        self._tool_index: dict[int, int] = {}

    def feed(self, data: bytes) -> list[bytes]:
        if self.error is not None:
            return []
        try:
            messages = self._decoder.feed(data)
        except EventStreamError as exc:
            self.error = UpstreamError(502, f"Bedrock stream is corrupt: {exc}", code="bad_event_stream")
            return []
        chunks: list[bytes] = []
        for message in messages:
            self._on_message(message, chunks)
            if self.error is not None:
                break
        return chunks

    def close(self) -> list[bytes]:
        if self.error is None and (self._decoder.pending or not self._finished):
            self.error = UpstreamError(502, "Bedrock stream ended before the message was complete", code="stream_cut")
        elif self.error is None and self.usage is None:
            # A complete answer whose metadata event never came: billing must estimate.
            self.usage = TokenUsage(reported_by_provider=False)
        return []

    def _on_message(self, message: EventStreamMessage, chunks: list[bytes]) -> None:
        kind = message.header(":message-type")
        if kind == "exception":
            exception_type = message.header(":exception-type")
            text = _payload_message(message.payload)
            status = _EXCEPTION_STATUS.get(exception_type.lower(), 500)
            self.error = _upstream_error(status, exception_type[:1].upper() + exception_type[1:], text)
            return
        if kind == "error":
            code = message.header(":error-code")
            self.error = _upstream_error(500, code, message.header(":error-message"))
            return
        try:
            event = orjson.loads(message.payload) if message.payload else {}
        except orjson.JSONDecodeError:
            self.error = UpstreamError(502, "Bedrock sent a stream event that is not JSON", code="bad_event_stream")
            return
        event_type = message.header(":event-type")
        if event_type == "messageStart":
            self._ensure_role(chunks)
        elif event_type == "contentBlockStart":
            start = (event.get("start") or {}).get("toolUse")
            if start:
                index: int | None  # the tool call's index in the answer; None for a block that is not one
                index = len(self._tool_index)
                self._tool_index[int(event.get("contentBlockIndex", 0))] = index
                call = {
                    "index": index,
                    "id": start.get("toolUseId", ""),
                    "type": "function",
                    "function": {"name": start.get("name", ""), "arguments": ""},
                }
                self._emit(chunks, {"tool_calls": [call]})
        elif event_type == "contentBlockDelta":
            delta = event.get("delta") or {}
            if "text" in delta:
                self._emit(chunks, {"content": delta["text"]})
            elif "toolUse" in delta:
                index = self._tool_index.get(int(event.get("contentBlockIndex", 0)))
                if index is not None:
                    arguments = (delta["toolUse"] or {}).get("input", "")
                    self._emit(chunks, {"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})
            elif "reasoningContent" in delta:
                reasoning = delta["reasoningContent"] or {}
                if reasoning.get("text"):
                    self._emit(chunks, {"reasoning_content": reasoning["text"]})
                elif reasoning.get("signature"):
                    signed = {"type": "thinking", "thinking": "", "signature": reasoning["signature"]}
                    self._emit(chunks, {"thinking_blocks": [signed]})
                elif reasoning.get("redactedContent"):
                    redacted = {"type": "redacted_thinking", "data": reasoning["redactedContent"]}
                    self._emit(chunks, {"thinking_blocks": [redacted]})
        elif event_type == "messageStop":
            finish = map_stop_reason(event.get("stopReason"))
            if self._tool_index and finish == "stop":
                finish = "tool_calls"
            self._ensure_role(chunks)
            chunks.append(self._chunk({}, finish))
            self._finished = True
        elif event_type == "metadata":
            self.usage = usage_from_bedrock(event.get("usage") or {})
            if self._options.include_usage:
                chunk = self._base()
                chunk["choices"] = []
                chunk["usage"] = openai_usage(self.usage)
                chunks.append(orjson.dumps(chunk))



def _payload_message(payload: bytes) -> str:
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.decode("utf-8", "replace")
    if isinstance(parsed, dict):
        return str(parsed.get("message") or parsed.get("Message") or "")
    return ""
