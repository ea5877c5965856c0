"""Gemini ``GenerateContentResponse`` → OpenAI chat.completion / chat.completion.chunk JSON.

A streamed answer is a series of whole GenerateContentResponse objects (one
per SSE event), so the same part translation serves both shapes. Gemini has
no tool call ids: ids are synthesised as ``call_<n>`` in answer order, the
same for a whole answer and for a stream, unless Gemini sent its own. A
function call's thought signature rides along in the OpenAI tool call as
``extra_content.google.thought_signature`` (the field Google's own
OpenAI-compatible endpoint uses) so that it comes back on the next turn. Log
probabilities, when asked for, come with the text they belong to
(:mod:`switchboard_router.providers.gemini_logprobs`).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from switchboard_router.providers.base import CompletionResult, StreamOptions, TokenUsage, UpstreamError
from switchboard_router.providers.gemini_logprobs import logprobs_content, openai_logprobs
from switchboard_router.providers.openai_shapes import ChunkEmitter, openai_usage
from switchboard_translate.reasoning_replay import with_call_signature
from switchboard_translate.sse import SSEDecoder

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
}


def map_finish_reason(reason: str) -> str:
    """Anything unlisted (LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL, ...) ends the answer as a plain stop."""
    return _FINISH_REASONS.get(reason, "stop")


def usage_from_gemini(metadata: dict[str, Any]) -> TokenUsage:
    """promptTokenCount already includes cached tokens; candidatesTokenCount excludes thoughts."""
    thoughts = int(metadata.get("thoughtsTokenCount") or 0)
    return TokenUsage(
        prompt_tokens=int(metadata.get("promptTokenCount") or 0) + int(metadata.get("toolUsePromptTokenCount") or 0),
        completion_tokens=int(metadata.get("candidatesTokenCount") or 0) + thoughts,
        cached_prompt_tokens=int(metadata.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


@dataclass(slots=True)
class _Delta:
    """What one GenerateContentResponse adds to the answer."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    #: OpenAI finish reason, when this response ends the answer.
    finish: str | None = None
    #: OpenAI ``logprobs.content`` of the text's tokens; None when the candidate carries none.
    logprobs: list[dict[str, Any]] | None = None


def _read(response: dict[str, Any], first_call_index: int) -> _Delta:
    delta = _Delta()
    candidates = response.get("candidates") or []
    if not candidates:
        if (response.get("promptFeedback") or {}).get("blockReason"):
            delta.finish = "content_filter"
        return delta
    candidate = candidates[0]
    for part in (candidate.get("content") or {}).get("parts") or []:
        if "text" in part:
            if part.get("thought"):
                delta.reasoning += part["text"]
            else:
                delta.text += part["text"]
        elif "functionCall" in part:
            call = part["functionCall"]
            index = first_call_index + len(delta.tool_calls)
            tool_call: dict[str, Any] = {
                "id": call.get("id") or f"call_{index}",
                "type": "function",
                "function": {"name": call.get("name", ""), "arguments": orjson.dumps(call.get("args") or {}).decode()},
            }
            if part.get("thoughtSignature"):
                with_call_signature(tool_call, part["thoughtSignature"])
            delta.tool_calls.append(tool_call)
    reason = candidate.get("finishReason")
    if reason:
        delta.finish = map_finish_reason(reason)
    delta.logprobs = logprobs_content(candidate)
    return delta


def _completion_id(response: dict[str, Any]) -> str:
    response_id = response.get("responseId")
    return f"chatcmpl-{response_id}" if response_id else f"chatcmpl-{uuid.uuid4().hex}"


def parse_generate_content(body: bytes, model: str) -> CompletionResult:
    response = orjson.loads(body)
    delta = _read(response, 0)
    finish = delta.finish or "stop"
    if delta.tool_calls and finish == "stop":
        finish = "tool_calls"
    message: dict[str, Any] = {"role": "assistant", "content": delta.text or (None if delta.tool_calls else "")}
    if delta.tool_calls:
        message["tool_calls"] = delta.tool_calls
    if delta.reasoning:
        message["reasoning_content"] = delta.reasoning
    usage = usage_from_gemini(response.get("usageMetadata") or {})
    completion = {
        "id": _completion_id(response),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish,
                     "logprobs": openai_logprobs(delta.logprobs)}],
        "usage": openai_usage(usage),
    }
    return CompletionResult(body=completion, usage=usage)


def gemini_error(status: int, payload: Any, retry_after_header: str | None = None) -> UpstreamError:
    """Normalises ``{"error": {"code", "message", "status", "details"}}`` (also inside a one-item list)."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return UpstreamError(status=status, message=f"Gemini returned HTTP {status}")
    message = str(error.get("message") or f"Gemini returned HTTP {status}")
    grpc_status = str(error.get("status") or "")
    retry_after: float | None = None
    for detail in error.get("details") or []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            with contextlib.suppress(ValueError):
                retry_after = float(delay[:-1])
    if retry_after is None and retry_after_header:
        try:
            retry_after = float(retry_after_header)
        except ValueError:
            retry_after = None
    lowered = message.lower()
    return UpstreamError(
        status=int(error.get("code") or status),
        message=message,
        type=grpc_status or "upstream_error",
        code=grpc_status,
        retry_after=retry_after,
        context_window_exceeded=grpc_status == "INVALID_ARGUMENT"
        and ("exceeds the maximum number of tokens" in lowered or "input token count" in lowered),
    )


class GeminiStreamTranslator(ChunkEmitter):
    """``streamGenerateContent?alt=sse`` bytes → OpenAI chat.completion.chunk JSON."""

    def __init__(self, model: str, options: StreamOptions) -> None:
        self.usage: TokenUsage | None = None
        self.error: UpstreamError | None = None
        self._model = model
        self._options = options
        self._sse = SSEDecoder()
        self._id = ""
        self._created = int(time.time())
        self._sent_role = False
        self._tool_calls = 0
        self._finished = False

    def feed(self, data: bytes) -> list[bytes]:
        chunks: list[bytes] = []
        for event in self._sse.feed(data):
            self._on_data(event.data, chunks)
        return chunks

    def close(self) -> list[bytes]:
        chunks: list[bytes] = []
        for event in self._sse.close():
            self._on_data(event.data, chunks)
        if self.error is not None:
            return chunks
        if not self._finished:
            self.error = UpstreamError(502, "Gemini stream ended before the answer was complete", code="stream_cut")
            return chunks
        if self.usage is None:
            self.usage = TokenUsage(reported_by_provider=False)
        if self._options.include_usage:
            chunk = self._base()
            chunk["choices"] = []
            chunk["usage"] = openai_usage(self.usage)
            chunks.append(orjson.dumps(chunk))
        return chunks

    def _on_data(self, data: str, chunks: list[bytes]) -> None:
        if self.error is not None or (self._finished and not data.strip()):
            return
        try:
            response = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.error = UpstreamError(502, "Gemini sent a stream event that is not JSON", code="bad_stream")
            return
        if isinstance(response, dict) and "error" in response:
            self.error = gemini_error(500, response)
            return
        if not self._id:
            self._id = _completion_id(response)
        if response.get("usageMetadata"):
            self.usage = usage_from_gemini(response["usageMetadata"])
        delta = _read(response, self._tool_calls)
        if self._finished:
            return
        if delta.reasoning:
            self._emit(chunks, {"reasoning_content": delta.reasoning})
        if delta.text or delta.logprobs:
            self._emit(chunks, {"content": delta.text}, openai_logprobs(delta.logprobs))
        if delta.tool_calls:
            calls = [{"index": self._tool_calls + i, **call} for i, call in enumerate(delta.tool_calls)]
            self._tool_calls += len(calls)
            self._emit(chunks, {"tool_calls": calls})
        if delta.finish:
            finish = "tool_calls" if self._tool_calls and delta.finish == "stop" else delta.finish
            self._ensure_role(chunks)
            chunks.append(self._chunk({}, finish))
            self._finished = True
