"""A fake Anthropic Messages API: a real HTTP server on loopback speaking Anthropic's wire format.

``POST /v1/messages`` answers whole or as an SSE stream (``"stream": true``).
The request's ``model`` picks the behaviour:

- ``good``: a text answer echoing the last user text;
- ``tool``: a ``tool_use`` block for every tool offered (parallel), or for one
  only when ``disable_parallel_tool_use`` is set or a tool is named;
  when the last user turn holds only ``tool_result`` blocks it answers in text;
- ``thinking``: a signed thinking block, then text;
- ``thinking-tool``: a signed thinking block, then a ``tool_use`` block for the first tool offered;
  when the last user turn holds only ``tool_result`` blocks, a signed thinking block and text;
- ``cache``: text, with usage reporting cache reads and writes;
- ``refusal`` / ``max`` / ``stop``: stop reasons ``refusal``, ``max_tokens``,
  ``stop_sequence`` (the first requested stop sequence);
- ``error`` (400 ``invalid_request_error``), ``error-<status>`` (that status),
  ``overloaded`` (529), ``ratelimit`` (429 with ``retry-after``), ``toolong``
  (400 "prompt is too long");
- ``spendlimit``: 429 whose ``details.error_code`` is ``enforced_spend_limit_reached``;
- ``stream-error``: a stream that sends an ``overloaded_error`` event mid-way;
- ``cut``: a stream whose connection is dropped mid-way (whole: a truncated body);
- ``truncated``: a stream that ends cleanly, but mid-way, without ``message_stop``;
- ``leak-<status>``, ``leak-text-<status>``, ``leak-stream``: errors that quote the request's
  headers (see :mod:`tests.fakes.leak`), before any check of the request.

Prompt caching works as Anthropic's does, for every model but ``cache`` (whose
usage is fixed): the prefix up to each ``cache_control`` mark (tools, then system,
then messages) is written to the fake's cache when it is at least
:attr:`FakeAnthropic.minimum_cache_tokens` long; a later request whose prefix up to
a mark (or up to one of the 20 blocks before a mark) was written reads it. Usage
then reports ``cache_read_input_tokens`` / ``cache_creation_input_tokens`` and the
rest as ``input_tokens``, one token for every 4 characters of a block's JSON.

Like the real API it checks what it is sent: ``x-api-key`` and
``anthropic-version`` headers, ``max_tokens``, role alternation rules Anthropic
enforces on tools (every ``tool_use`` answered by ``tool_result`` blocks at the
start of the very next user message), non-empty text blocks, sampling ranges.
With ``thinking`` enabled it checks, as Anthropic does, a model that thinks (not
Claude 3 or 3.5), a budget of at least 1,024 tokens below ``max_tokens``, that a final assistant turn with ``tool_use``
blocks starts with a thinking block, and that every thinking block carries the
signature this fake issued for its very text.
Every request is recorded in :attr:`FakeAnthropic.requests`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import orjson
import pytest

from tests.fakes.leak import answer_leak, quote_request
from tests.fakes.server import BackgroundServer

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: Claude's smallest thinking budget.
MIN_THINKING_BUDGET = 1024
#: Claude models that cannot think (before 3.7): they refuse ``thinking``.
_NO_THINKING = re.compile(r"claude-3-(5-)?(haiku|sonnet|opus)")
_BLOCK_TYPES = {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}
_ERROR_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    #: The usage the fake answered with (None when it answered an error).
    usage: dict[str, Any] | None = None
    #: time.monotonic() when the request arrived.
    at: float = dataclass_field(default_factory=time.monotonic)


class InvalidRequest(Exception):
    """What the real API would answer with a 400 (or the given status)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def error_body(status: int, message: str) -> bytes:
    error_type = _ERROR_STATUS.get(status, "api_error")
    return orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake"})


def check_thinking_budget(model: str, body: dict[str, Any]) -> None:
    """Anthropic's rules for ``thinking`` itself, when enabled: a model that thinks, a budget of at least 1,024 tokens
    below ``max_tokens`` (raises :class:`InvalidRequest`)."""
    if (body.get("thinking") or {}).get("type") != "enabled":
        return
    if _NO_THINKING.search(model):
        raise InvalidRequest(f"'{model}' does not support thinking.")
    budget = body["thinking"].get("budget_tokens")
    if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
        raise InvalidRequest("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    if budget >= body["max_tokens"]:
        raise InvalidRequest("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                             "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking")


def validate(headers: dict[str, str], body: Any) -> None:
    """Raises :class:`InvalidRequest` where the real Messages API refuses the request."""
    if not headers.get("x-api-key"):
        raise InvalidRequest("x-api-key header is required", 401)
    if not headers.get("anthropic-version"):
        raise InvalidRequest("anthropic-version: header is required")
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    for field in ("model", "max_tokens", "messages"):
        if field not in body:
            raise InvalidRequest(f"{field}: Field required")
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        raise InvalidRequest("max_tokens: must be a positive integer")
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        raise InvalidRequest("temperature: range: 0..1")
    for sequence in body.get("stop_sequences") or []:
        if not sequence.strip():
            raise InvalidRequest("stop_sequences: each stop sequence must contain non-whitespace")
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        for block in system:
            if block.get("type") != "text" or not block.get("text"):
                raise InvalidRequest("system: text content blocks must be non-empty")
    for tool in body.get("tools") or []:
        if not tool.get("name") or (tool.get("input_schema") or {}).get("type") != "object":
            raise InvalidRequest("tools: each tool needs a name and an input_schema of type object")
    validate_cache_marks(body)
    choice = body.get("tool_choice")
    if choice is not None:
        if choice.get("type") not in ("auto", "any", "tool", "none"):
            raise InvalidRequest("tool_choice.type: must be auto, any, tool or none")
        if choice["type"] == "none" and "disable_parallel_tool_use" in choice:
            raise InvalidRequest("tool_choice.disable_parallel_tool_use: Extra inputs are not permitted")
    _validate_messages(body["messages"])


#: Anthropic's limit on blocks with a ``cache_control`` in one request.
MAX_CACHE_MARKS = 4


def validate_cache_marks(body: dict[str, Any]) -> None:
    marked = [block for block in prompt_blocks(body) if "cache_control" in block]
    if len(marked) > MAX_CACHE_MARKS:
        raise InvalidRequest(f"A maximum of {MAX_CACHE_MARKS} blocks with cache_control may be provided. "
                             f"Found {len(marked)}.")
    for block in marked:
        mark = block["cache_control"]
        if not isinstance(mark, dict) or mark.get("type") != "ephemeral" or set(mark) - {"type", "ttl"}:
            raise InvalidRequest("cache_control: Input tag does not match the expected tag 'ephemeral'")
        if block.get("type") in ("thinking", "redacted_thinking"):
            raise InvalidRequest("Thinking blocks cannot be cached directly with cache_control")
        if block.get("type") == "text" and not block.get("text"):
            raise InvalidRequest("cache_control cannot be set for empty text blocks")


def prompt_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The prompt as Anthropic reads it for caching: tools, system blocks, then every message's blocks."""
    blocks: list[dict[str, Any]] = [tool for tool in body.get("tools") or [] if isinstance(tool, dict)]
    system = body.get("system")
    if isinstance(system, str):
        blocks.append({"type": "text", "text": system})
    elif isinstance(system, list):
        blocks.extend(system)
    for message in body.get("messages") or []:
        content = message.get("content")
        blocks.extend([{"type": "text", "text": content}] if isinstance(content, str) else content or [])
    return blocks


def _validate_messages(messages: list[dict[str, Any]]) -> None:
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    pending: list[str] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise InvalidRequest(f'messages.{i}.role: Input should be "user" or "assistant"')
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not blocks:
            raise InvalidRequest(f"messages.{i}: all messages must have non-empty content")
        for block in blocks:
            if block.get("type") not in _BLOCK_TYPES:
                raise InvalidRequest(f"messages.{i}.content: unknown block type {block.get('type')!r}")
            if block["type"] == "text" and not block.get("text"):
                raise InvalidRequest(f"messages.{i}: text content blocks must be non-empty")
            if block["type"] == "image" and (block.get("source") or {}).get("type") not in ("base64", "url"):
                raise InvalidRequest(f"messages.{i}: image source type must be base64 or url")
        if pending:
            leading = list(itertools.takewhile(lambda b: b.get("type") == "tool_result", blocks))
            answered = {block.get("tool_use_id") for block in leading}
            missing = [tool_id for tool_id in pending if tool_id not in answered]
            if role != "user" or missing:
                raise InvalidRequest(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(missing or pending)}. Each `tool_use` block must have a corresponding "
                    "`tool_result` block in the next message."
                )
        previous_ids = set(pending)
        for block in blocks:
            if block["type"] == "tool_result" and block.get("tool_use_id") not in previous_ids:
                raise InvalidRequest(
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding `tool_use` "
                    "block in the previous message."
                )
        pending = [block["id"] for block in blocks if block["type"] == "tool_use"] if role == "assistant" else []


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [block.get("text", "") for block in content if block.get("type") == "text"]
        if texts:
            return " ".join(texts)
    return ""


def _trailing_tool_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tool_result blocks of the last message when it is a user turn made of nothing else."""
    last = messages[-1] if messages else {}
    content = last.get("content")
    if last.get("role") != "user" or not isinstance(content, list) or not content:
        return []
    return content if all(block.get("type") == "tool_result" for block in content) else []


def _block_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content or [] if isinstance(b, dict))


def _sample_input(schema: dict[str, Any]) -> dict[str, Any]:
    samples = {"string": None, "integer": 42, "number": 1.5, "boolean": True, "array": [], "object": {}}
    out: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type", "string") if isinstance(prop, dict) else "string"
        value = samples.get(kind)
        out[name] = f"{name}-value" if value is None else value
    return out


class FakeAnthropic:
    """The fake server; :meth:`start` binds 127.0.0.1 on a free port in a background thread."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.url = ""
        self._runner: BackgroundServer | None = None
        self._ids = itertools.count(1)
        #: Prefixes written to the prompt cache (their JSON without marks).
        self.prompt_cache: set[bytes] = set()
        self.minimum_cache_tokens = 1024
        #: Seconds every answer waits before its first byte (to hold requests in flight together).
        self.delay_seconds = 0.0
        #: The signatures of the thinking blocks this fake wrote → their text (Anthropic verifies them).
        self.signatures: dict[str, str] = {"sig-fake==": "Let me think step by step."}

    def sign(self, thinking: str) -> dict[str, Any]:
        """A thinking block with a signature only this text has."""
        signature = "sig-" + hashlib.sha256(thinking.encode()).hexdigest()[:24]
        self.signatures[signature] = thinking
        return {"type": "thinking", "thinking": thinking, "signature": signature}

    def check_thinking(self, body: dict[str, Any]) -> None:
        """Anthropic's rules for the budget and for earlier thinking when ``thinking`` is on (raises
        :class:`InvalidRequest`)."""
        if (body.get("thinking") or {}).get("type") != "enabled":
            return
        check_thinking_budget(str(body.get("model")), body)
        messages = body["messages"]
        for i, message in enumerate(messages):
            content = message.get("content")
            for j, block in enumerate(content if isinstance(content, list) else []):
                if block.get("type") == "thinking" and self.signatures.get(block.get("signature")) != block.get(
                        "thinking"):
                    raise InvalidRequest(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
        last = next(((i, m) for i, m in reversed(list(enumerate(messages))) if m["role"] == "assistant"), None)
        if last is None or not isinstance(last[1]["content"], list):
            return
        i, blocks = last[0], last[1]["content"]
        if any(b.get("type") == "tool_use" for b in blocks) and blocks[0].get("type") not in (
                "thinking", "redacted_thinking"):
            raise InvalidRequest(
                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                f"`{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` message must start with "
                "a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend "
                "you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`.")

    # -- prompt cache ----------------------------------------------------------------------------

    def cache_usage(self, body: dict[str, Any]) -> dict[str, int]:
        """Input usage as Anthropic reports it: cache reads, cache writes and the rest."""
        blocks = [{k: v for k, v in block.items() if k != "cache_control"} for block in prompt_blocks(body)]
        sizes = [max(1, len(orjson.dumps(block)) // 4) for block in blocks]
        total = 10 + sum(sizes)
        marks = [i for i, block in enumerate(prompt_blocks(body)) if "cache_control" in block]

        def key(end: int) -> bytes:
            return orjson.dumps(blocks[: end + 1])

        def tokens(end: int) -> int:
            return sum(sizes[: end + 1])

        looked_at = sorted({end for mark in marks for end in range(max(0, mark - 20), mark + 1)}, reverse=True)
        read_end = next((end for end in looked_at if key(end) in self.prompt_cache), -1)
        read = tokens(read_end) if read_end >= 0 else 0
        written_end = read_end
        for mark in marks:
            if mark > read_end and tokens(mark) >= self.minimum_cache_tokens:
                self.prompt_cache.add(key(mark))
                written_end = mark
        written = tokens(written_end) - read if written_end > read_end else 0
        return {"input_tokens": total - read - written, "cache_read_input_tokens": read,
                "cache_creation_input_tokens": written}

    # -- answers ---------------------------------------------------------------------------------

    def message_for(self, body: dict[str, Any]) -> dict[str, Any]:
        """The whole message the model named in ``body`` answers with."""
        model = body["model"]
        serial = next(self._ids)
        prompt_words = len(orjson.dumps(body["messages"]).split())
        usage: dict[str, Any] = {
            "input_tokens": 10 + prompt_words,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        content: list[dict[str, Any]] = []
        stop_reason, stop_sequence = "end_turn", None
        results = _trailing_tool_results(body["messages"])
        if model == "tool" and results:
            said = "; ".join(_block_text(r.get("content")) for r in results)
            content.append({"type": "text", "text": f"The tool said: {said}"})
        elif model == "tool" and body.get("tools"):
            tools = body["tools"]
            choice = body.get("tool_choice") or {}
            if choice.get("type") == "tool":
                tools = [t for t in tools if t["name"] == choice.get("name")]
            if choice.get("disable_parallel_tool_use"):
                tools = tools[:1]
            content.append({"type": "text", "text": "Calling tools."})
            for n, tool in enumerate(tools):
                content.append(
                    {
                        "type": "tool_use",
                        "id": f"toolu_fake{serial:04d}{n}",
                        "name": tool["name"],
                        "input": _sample_input(tool.get("input_schema") or {}),
                    }
                )
            stop_reason = "tool_use"
        elif model == "thinking":
            content.append({"type": "thinking", "thinking": "Let me think step by step.", "signature": "sig-fake=="})
            content.append({"type": "text", "text": "The answer is 4."})
        elif model == "thinking-tool" and results:
            content.append(self.sign(f"The tool answered {_block_text(results[0].get('content'))!r}; I can reply."))
            content.append({"type": "text", "text": f"The tool said: {_block_text(results[0].get('content'))}"})
        elif model == "thinking-tool" and body.get("tools"):
            tool = body["tools"][0]
            content.append(self.sign(f"I should call {tool['name']} first."))
            content.append({"type": "tool_use", "id": f"toolu_fake{serial:04d}0", "name": tool["name"],
                            "input": _sample_input(tool.get("input_schema") or {})})
            stop_reason = "tool_use"
        elif model == "thinking-tool":
            content.append(self.sign("Nothing to call."))
            content.append({"type": "text", "text": "The answer is 4."})
        elif model == "refusal":
            content.append({"type": "text", "text": "I can't"})
            stop_reason = "refusal"
        elif model == "max":
            content.append({"type": "text", "text": "This answer was cut at max"})
            stop_reason = "max_tokens"
        elif model == "stop" and body.get("stop_sequences"):
            content.append({"type": "text", "text": "Counting: 1 2 3"})
            stop_reason, stop_sequence = "stop_sequence", body["stop_sequences"][0]
        else:
            content.append({"type": "text", "text": f"Hello! You said: {_last_user_text(body['messages'])}"})
        if model == "cache":
            usage.update(input_tokens=12, cache_read_input_tokens=1000, cache_creation_input_tokens=200)
        elif any("cache_control" in block for block in prompt_blocks(body)):
            usage.update(self.cache_usage(body))
        usage["output_tokens"] = 5 + sum(len(orjson.dumps(block)) // 8 for block in content)
        return {
            "id": f"msg_fake{serial:06d}",
            "type": "message",
            "role": "assistant",
            "model": f"claude-fake-{model}",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        }

    def stream_events(self, message: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The events Anthropic streams for ``message``, deltas split in small pieces."""
        start_usage = dict(message["usage"], output_tokens=1)
        yield {
            "type": "message_start",
            "message": dict(message, content=[], stop_reason=None, stop_sequence=None, usage=start_usage),
        }
        yield {"type": "ping"}
        for index, block in enumerate(message["content"]):
            kind = block["type"]
            if kind == "text":
                yield {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
                for piece in _pieces(block["text"], 3):
                    yield {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    }
            elif kind == "tool_use":
                start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                yield {"type": "content_block_start", "index": index, "content_block": start}
                yield {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": ""},
                }
                for piece in _pieces(orjson.dumps(block["input"]).decode(), 3):
                    yield {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    }
            elif kind == "redacted_thinking":
                yield {"type": "content_block_start", "index": index, "content_block": dict(block)}
            elif kind == "thinking":
                start = {"type": "thinking", "thinking": "", "signature": ""}
                yield {"type": "content_block_start", "index": index, "content_block": start}
                for piece in _pieces(block["thinking"], 2):
                    yield {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "thinking_delta", "thinking": piece},
                    }
                yield {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": block["signature"]},
                }
            yield {"type": "content_block_stop", "index": index}
        yield {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        }
        yield {"type": "message_stop"}

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        raw = b""
        while True:
            event = await receive()
            raw += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        self.requests.append(RecordedRequest(scope["method"], scope["path"], headers, body))
        said = quote_request(headers, scope.get("query_string", b"").decode())
        if isinstance(body, dict) and await answer_anthropic_leak(str(body.get("model")), said,
                                                                  bool(body.get("stream")), send):
            return
        if scope["method"] != "POST" or scope["path"] != "/v1/messages":
            await _respond(send, 404, error_body(404, f"{scope['method']} {scope['path']} not found"))
            return
        try:
            validate(headers, body)
            self.check_thinking(body)
        except InvalidRequest as exc:
            await _respond(send, exc.status, error_body(exc.status, str(exc)))
            return
        await self.answer(body, send, self.requests[-1])

    async def answer(self, body: dict[str, Any], send: Send, record: RecordedRequest) -> None:
        """Answers a valid Messages body (errors included) on the ASGI ``send``; used by the fake Vertex AI too."""
        model = body["model"]
        if model == "error":
            await _respond(send, 400, error_body(400, "messages.0.content: the fake was asked to fail"))
            return
        if model.startswith("error-"):
            status = int(model.removeprefix("error-"))
            await _respond(send, status, error_body(status, f"the fake was asked to answer {status}"))
            return
        if model == "overloaded":
            await _respond(send, 529, error_body(529, "Overloaded"))
            return
        if model == "ratelimit":
            message = "Number of request tokens has exceeded your per-minute rate limit"
            await _respond(send, 429, error_body(429, message), [(b"retry-after", b"7")])
            return
        if model == "spendlimit":
            payload = orjson.loads(error_body(429, "You have reached your specified API usage limits."))
            payload["error"]["details"] = {"error_code": "enforced_spend_limit_reached"}
            await _respond(send, 429, orjson.dumps(payload))
            return
        if model == "toolong":
            await _respond(send, 400, error_body(400, "prompt is too long: 212345 tokens > 200000 maximum"))
            return
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        message = self.message_for(body)
        record.usage = message["usage"]
        if not body.get("stream"):
            payload = orjson.dumps(message)
            if model == "cut":
                payload = payload[: len(payload) // 2]
            await _respond(send, 200, payload)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")],
            }
        )
        events = list(self.stream_events(message))
        if model == "stream-error":
            events = events[:4] + [{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}]
        if model == "truncated":
            events = events[:5]
        for n, event in enumerate(events):
            frame = b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
            if model == "cut" and n == 4:
                await send({"type": "http.response.body", "body": frame[: len(frame) // 2], "more_body": True})
                raise ConnectionAbortedError("the fake was asked to cut the stream")
            # Split frames so readers see events straddling network reads.
            middle = len(frame) // 2
            await send({"type": "http.response.body", "body": frame[:middle], "more_body": True})
            await send({"type": "http.response.body", "body": frame[middle:], "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeAnthropic:
        self._runner = BackgroundServer(self, lifespan="on", name="fake-anthropic").start()
        self.url = self._runner.url
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()


async def answer_anthropic_leak(model: str, said: str, stream: bool, send: Send) -> bool:
    """Answers the leaky behaviours (see :mod:`tests.fakes.leak`); False for any other model."""
    if model == "leak-stream" and stream:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8")]})
        start = {"type": "message_start", "message": {
            "id": "msg_leak", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1}}}
        error = {"type": "error", "error": {"type": "api_error", "message": said}}
        frames = b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n"
                          for e in (start, error))
        await send({"type": "http.response.body", "body": frames, "more_body": False})
        return True
    return await answer_leak(model, said, send, lambda status, text: _respond(send, status, error_body(status, text)))


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


async def _respond(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"request-id", b"req_fake")] + (extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A running fake Anthropic API on 127.0.0.1 (port chosen by the OS); ``.url`` is its base URL."""
    server = FakeAnthropic().start()
    try:
        yield server
    finally:
        server.stop()
