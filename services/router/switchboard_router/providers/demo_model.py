"""The demo model: deterministic answers computed from the request, in OpenAI's wire format.

What :mod:`switchboard_router.providers.demo` serves. No network, no weights: the
same request always gets the same answer. The answer quotes the last user message
(or the last tool result), calls a tool when tools are offered, fills a JSON
schema when one is asked for, honours ``max_tokens`` (``finish_reason: length``)
and counts tokens with its own tokenizer — a word or a punctuation mark is one
token — so that usage, limits, budgets and the ledger move exactly as they would
on a hosted model. Embeddings are unit vectors seeded by the text.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from switchboard_router.providers.openai_shapes import plain_text

#: One token of the demo tokenizer: a word or one punctuation mark, with the white space before it.
_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])")
#: Tokens every message costs on top of its text (role and framing), as OpenAI's chat format does.
MESSAGE_OVERHEAD = 4
#: Words of the user's message quoted in an answer.
QUOTE_WORDS = 24
#: Size of an embedding unless the request asks for ``dimensions``.
EMBEDDING_DIMENSIONS = 256
#: What the answer says after the quote.
SIGN_OFF = ("This is the Switchboard demo model: it answers offline and deterministically, and is priced like a "
            "real model so that keys, limits, budgets and usage can be tried. Export a provider key (for example "
            "OPENAI_API_KEY) and restart the gateway to talk to a real model.")


class DemoRequestError(ValueError):
    """The request is one a real provider would refuse with a 400."""


def tokens(text: str) -> list[str]:
    """The demo tokenizer: pieces whose concatenation is ``text`` without trailing white space."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return len(tokens(text))


def prompt_tokens(body: dict[str, Any]) -> int:
    """Tokens of the messages (text, tool calls) and of the tool definitions."""
    total = 3
    for message in body.get("messages") or ():
        total += MESSAGE_OVERHEAD + count_tokens(plain_text(message.get("content")))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            total += count_tokens(str(function.get("name") or "")) + count_tokens(str(function.get("arguments") or ""))
    if body.get("tools"):
        total += count_tokens(orjson.dumps(body["tools"]).decode())
    return total


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class Answer:
    """One choice of a demo answer, before it is framed as a whole completion or a stream."""

    content: str | None
    tool_call: ToolCall | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def _quote(text: str) -> str:
    words = text.split()
    if len(words) <= QUOTE_WORDS:
        return " ".join(words)
    return " ".join(words[:QUOTE_WORDS]) + f" … ({len(words)} words)"


def _fill(schema: Any, text: str, depth: int = 0) -> Any:
    """A value that satisfies a (simple) JSON schema, its strings taken from ``text``."""
    if not isinstance(schema, dict) or depth > 8:
        return text
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _fill(schema[key][0], text, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        names = schema.get("required") or list(properties)
        return {name: _fill(properties.get(name), text, depth + 1) for name in names}
    if kind == "array":
        return [_fill(schema["items"], text, depth + 1)] if isinstance(schema.get("items"), dict) else []
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text


def _chosen_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function the answer calls: the one ``tool_choice`` names, else the first offered."""
    tools: list[dict[str, Any]] = [t["function"] for t in body.get("tools") or ()
                                   if isinstance(t, dict) and t.get("function")]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        return next((t for t in tools if t.get("name") == wanted), tools[0])
    return tools[0]


def _output_limit(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def answer(body: dict[str, Any]) -> Answer:
    """The demo model's answer to a Chat Completions body."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise DemoRequestError("'messages' must be a non-empty list of messages")
    used = prompt_tokens(body)
    last = messages[-1]
    user_text = next((plain_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    tool = _chosen_tool(body) if last.get("role") != "tool" else None
    if tool is not None:
        arguments = orjson.dumps(_fill(tool.get("parameters") or {}, _quote(user_text))).decode()
        digest = hashlib.sha256(f"{tool.get('name')}:{arguments}".encode()).hexdigest()[:24]
        call = ToolCall(f"call_demo_{digest}", str(tool.get("name") or ""), arguments)
        return Answer(None, call, "tool_calls", used, count_tokens(call.name) + count_tokens(arguments))
    if last.get("role") == "tool":
        text = f'The tool answered: "{_quote(plain_text(last.get("content")))}". {SIGN_OFF}'
    else:
        text = f'You said: "{_quote(user_text)}". {SIGN_OFF}'
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        text = orjson.dumps(_fill((response_format.get("json_schema") or {}).get("schema") or {}, text)).decode()
    elif response_format.get("type") == "json_object":
        text = orjson.dumps({"answer": text}).decode()
    pieces = tokens(text)
    limit = _output_limit(body)
    finish = "stop"
    if limit is not None and len(pieces) > limit:
        pieces, finish = pieces[:limit], "length"
    return Answer("".join(pieces), None, finish, used, len(pieces))


def completion_id(body: dict[str, Any]) -> str:
    """A stable id per request body (the same request, the same answer, the same id)."""
    return "chatcmpl-demo-" + hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]


def usage(result: Answer) -> dict[str, Any]:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}


def chat_completion(body: dict[str, Any], created: int) -> dict[str, Any]:
    """The whole answer: a ``chat.completion`` object."""
    result = answer(body)
    message: dict[str, Any] = {"role": "assistant", "content": result.content, "refusal": None}
    if result.tool_call is not None:
        call = result.tool_call
        message["tool_calls"] = [{"id": call.id, "type": "function",
                                  "function": {"name": call.name, "arguments": call.arguments}}]
    return {"id": completion_id(body), "object": "chat.completion", "created": created,
            "model": str(body.get("model") or "demo"),
            "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason, "logprobs": None}],
            "usage": usage(result)}


def chat_chunks(body: dict[str, Any], created: int) -> Iterator[dict[str, Any]]:
    """The streamed answer: ``chat.completion.chunk`` objects, a token (or an argument piece) each,
    then the finish and — when ``stream_options.include_usage`` asks for it — the usage chunk."""
    result = answer(body)
    frame = {"id": completion_id(body), "object": "chat.completion.chunk", "created": created,
             "model": str(body.get("model") or "demo")}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**frame, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    yield chunk({"role": "assistant", "content": "" if result.tool_call is None else None})
    if result.tool_call is not None:
        call = result.tool_call
        yield chunk({"tool_calls": [{"index": 0, "id": call.id, "type": "function",
                                     "function": {"name": call.name, "arguments": ""}}]})
        for piece in tokens(call.arguments):
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    else:
        for piece in tokens(result.content or ""):
            yield chunk({"content": piece})
    yield chunk({}, result.finish_reason)
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {**frame, "choices": [], "usage": usage(result)}


def _inputs(raw: Any) -> list[str]:
    """An embeddings ``input`` as texts (token arrays are embedded as their numbers)."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        return [" ".join(map(str, raw))]
    if isinstance(raw, list) and raw and all(isinstance(x, (str, list)) for x in raw):
        return [x if isinstance(x, str) else " ".join(map(str, x)) for x in raw]
    raise DemoRequestError("'input' must be a string, a list of strings or a list of token arrays")


def _vector(text: str, dimensions: int) -> list[float]:
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI ``/embeddings`` answer: one unit vector per input, the same text always the same vector."""
    texts = _inputs(body.get("input"))
    dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= 4096:
        raise DemoRequestError("'dimensions' must be a whole number from 1 to 4096")
    data = []
    for index, text in enumerate(texts):
        vector = _vector(text, dimensions)
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    used = sum(count_tokens(t) for t in texts)
    return {"object": "list", "data": data, "model": str(body.get("model") or "demo"),
            "usage": {"prompt_tokens": used, "total_tokens": used}}
