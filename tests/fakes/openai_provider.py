"""A fake OpenAI Chat Completions provider: a real HTTP server speaking OpenAI's wire format.

The upstream model id picks the behaviour (as in TensorZero's test provider):

- ``good``: answers "Hello from the fake provider." (streamed in 4 chunks).
- ``echo``: answers with the last user message's text.
- ``tool``: answers with a tool call to the first tool given (arguments ``{"city": "Paris"}``).
- ``slow``: waits ``slow_seconds`` before answering (first byte).
- ``error``: 400 with OpenAI error JSON (``invalid_request_error``).
- ``ratelimit``: 429 with ``Retry-After: 1``.
- ``flaky``: 500 on the first call of each distinct prompt, then good.
- ``down``: 503 every time.
- ``hang``: never answers (until the client goes away).
- ``cut``: streams two chunks, then breaks the connection.
- ``drip``: streams 50 chunks 50 ms apart (for cancellation tests).
- ``drip-<seconds>``: streams a chunk (``"tok "``) every 50 ms for that many seconds (a stream longer than a
  shutdown's grace).
- ``slow-<seconds>``: waits that many seconds before answering (e.g. ``slow-0.3``).
- ``stall``: streams two chunks, then goes silent until the client goes away.
- ``long``: writes as many tokens as the request's output cap allows (``max_completion_tokens`` or
  ``max_tokens``; 4,096 without one) and stops with finish_reason ``length``, reporting exactly that many
  completion tokens: a model that always uses all it is given.
- ``filter``: answers, then stops with finish_reason ``content_filter`` (output filtered).
- ``filtered``: 400 with code ``content_filter`` (the prompt was refused on content policy).
- ``toolong``: 400 with code ``context_length_exceeded``.
- ``ratelimit-once``: 429 with ``Retry-After: 1`` on the first call of each distinct prompt, then good.
- ``insufficient-quota``: 429 with code ``insufficient_quota`` (no retry will cure it).
- ``toggle``: 503 while :attr:`FakeOpenAI.toggle_down` is set, else good.
- ``cache``: good, with half of the prompt tokens reported as cached.
- ``garbage``: 200 with an HTML page instead of an answer (whole or streamed);
  ``garbage-events``: a stream whose events are not JSON; ``empty``: a stream of no bytes.
- ``usage-negative``, ``usage-huge``, ``usage-beyond``: good, but the usage reported is
  negative, above 2^40, or 50,000 completion tokens (beyond any small ``max_tokens``).
- ``leak-<status>``, ``leak-text-<status>``, ``leak-stream``: errors that quote the request's
  headers and query string (see :mod:`tests.fakes.leak`).

``tool`` answers in text once the conversation ends with a tool result.

OpenAI's legacy ``/completions`` is served too (``text_completion`` objects; ``good`` writes the same
sentence, ``echo`` the prompt, ``long`` as many tokens as ``max_tokens`` allows (16 without it, OpenAI's
default) with finish_reason ``length``, ``error`` refuses), and ``/moderations`` (one result per input,
flagged for violence when the text says "attack"; no usage, as OpenAI sends none).

Azure's URL shape is served too: ``/openai/deployments/<name>/chat/completions
?api-version=...`` with the ``api-key`` header (:attr:`FakeOpenAI.azure_api_key`);
the deployment name picks the behaviour. As Azure does, it refuses (400) ``max_completion_tokens``
before API version 2024-09-01-preview, and ``max_tokens`` to a deployment named like a reasoning or
GPT-5 model (``o1…``, ``o3…``, ``o4…``, ``gpt-5…``).

Every request is recorded (path, headers, parsed body) and so is every stream
that the client abandoned, so tests can assert what reached the provider. The chat
answers are counted by their id (``chatcmpl-fake…``, which the ledger keeps as a row's
``response_id``): :attr:`FakeOpenAI.begun` those whose answer started, :attr:`FakeOpenAI.served`
those whose last byte went out (when), so a fault test can match provider calls served with
ledger rows.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.fakes.leak import answer_leak, quote_request

#: What ``long`` writes when the request sets no output cap.
LONG_DEFAULT_TOKENS = 4096


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    query: str = ""
    #: time.monotonic() when the request arrived (to measure retry delays).
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeOpenAI:
    slow_seconds: float = 2.0
    azure_api_key: str = "azure-fake-key"
    toggle_down: bool = False
    requests: list[Recorded] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    #: Ids of the chat answers that started (status 200 sent), and of those sent whole (→ time.monotonic()).
    begun: set[str] = field(default_factory=set)
    served: dict[str, float] = field(default_factory=dict)
    #: The last user message of each answer begun (answer id → text), to tell which request it answered.
    prompts: dict[str, str] = field(default_factory=dict)
    _flaky_seen: set[str] = field(default_factory=set)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def calls(self, model: str) -> list[Recorded]:
        """The chat requests that asked for ``model`` (Azure: the deployment name)."""
        return [r for r in self.requests if _model_of(r.path, r.body) == model]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if scope["method"] == "GET" and path.endswith("/models"):
            await _json(send, 200, {"object": "list", "data": [{"id": "good", "object": "model", "created": 0,
                                                                 "owned_by": "fake"}]})
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = orjson.loads(raw) if raw else {}
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode()
        self.requests.append(Recorded(path, headers, body, query))
        if await _leak(_model_of(path, body), quote_request(headers, query), bool(body.get("stream")), send):
            return
        if "/openai/deployments/" in path:
            refusal = _azure_refusal(headers, query, self.azure_api_key) or _azure_output_field_refusal(
                _model_of(path, body), query, body)
            if refusal is not None:
                await _json(send, refusal[0], {"error": {"code": str(refusal[0]), "message": refusal[1]}})
                return
        if path.endswith("/embeddings"):
            await self._embeddings(body, send)
            return
        if path.endswith("/moderations"):
            await _json(send, 200, _moderation(body, next(self._ids)))
            return
        if path.endswith("/completions") and not path.endswith("/chat/completions"):
            await self._text(_model_of(path, body), body, send)
            return
        if not path.endswith("/chat/completions"):
            await _json(send, 404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})
            return
        await self._chat(_model_of(path, body), body, send, receive)

    async def _embeddings(self, body: dict[str, Any], send: Any) -> None:
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dims = int(body.get("dimensions") or 4)
        data = [{"object": "embedding", "index": i,
                 "embedding": [float(len(str(text)) % 7 + j) / 10 for j in range(dims)]}
                for i, text in enumerate(items)]
        tokens = sum(max(1, len(str(t)) // 4) for t in items)
        await _json(send, 200, {"object": "list", "data": data, "model": body.get("model"),
                                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _text(self, model: str, body: dict[str, Any], send: Any) -> None:
        """OpenAI's legacy completions (``text_completion``)."""
        if model == "error":
            await _json(send, 400, {"error": {"message": "The fake provider rejects this request.",
                                              "type": "invalid_request_error", "param": None, "code": "fake_error"}})
            return
        prompt = body.get("prompt")
        text_in = prompt if isinstance(prompt, str) else orjson.dumps(prompt).decode()
        cap = int(body.get("max_tokens") or 16)
        if model == "echo":
            text, finish, produced = text_in, "stop", max(1, len(text_in) // 4)
        elif model == "long":
            text, finish, produced = "tok " * cap, "length", cap
        else:
            text, finish, produced = " Hello from the fake provider.", "stop", 7
        prompt_tokens = max(1, len(text_in) // 4)
        await _json(send, 200, {
            "id": f"cmpl-fake{next(self._ids):06d}", "object": "text_completion", "created": int(time.time()),
            "model": model, "system_fingerprint": "fp_fake",
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": produced,
                      "total_tokens": prompt_tokens + produced}})

    async def _chat(self, model: str, body: dict[str, Any], send: Any, receive: Any) -> None:
        stream = bool(body.get("stream"))
        if model == "error":
            await _json(send, 400, {"error": {"message": "The fake provider rejects this request.",
                                              "type": "invalid_request_error", "param": None, "code": "fake_error"}})
            return
        if model == "ratelimit":
            await _json(send, 429, {"error": {"message": "Rate limit reached for fake.", "type": "requests",
                                              "code": "rate_limit_exceeded"}}, {"retry-after": "1"})
            return
        if model == "down" or (model == "toggle" and self.toggle_down):
            await _json(send, 503, {"error": {"message": "The fake provider is overloaded.", "type": "server_error"}})
            return
        if model == "filtered":
            await _json(send, 400, {"error": {
                "message": "The response was filtered due to the prompt triggering the content management policy.",
                "type": None, "param": "prompt", "code": "content_filter"}})
            return
        if model == "toolong":
            await _json(send, 400, {"error": {
                "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in "
                           "9000 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})
            return
        if model == "insufficient-quota":
            await _json(send, 429, {"error": {
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}})
            return
        if model == "ratelimit-once":
            marker = orjson.dumps(body.get("messages")).decode()
            if marker not in self._flaky_seen:
                self._flaky_seen.add(marker)
                await _json(send, 429, {"error": {"message": "Rate limit reached for fake.", "type": "requests",
                                                  "code": "rate_limit_exceeded"}}, {"retry-after": "1"})
                return
        if model == "flaky":
            marker = orjson.dumps(body.get("messages")).decode()
            if marker not in self._flaky_seen:
                self._flaky_seen.add(marker)
                await _json(send, 500, {"error": {"message": "transient failure", "type": "server_error"}})
                return
        if model in _MALFORMED:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/html" if model == "garbage" else b"text/event-stream")]})
            await send({"type": "http.response.body", "body": _MALFORMED[model]})
            return
        if model == "hang":
            await _wait_disconnect(receive)
            self.cancelled.append(model)
            return
        if model == "slow":
            await asyncio.sleep(self.slow_seconds)
        elif model.startswith("slow-"):
            await asyncio.sleep(float(model.removeprefix("slow-")))
        message, finish = _answer(model, body)
        prompt_tokens = max(1, len(orjson.dumps(body.get("messages"))) // 4)
        completion_tokens = max(1, len(str(message.get("content") or "")) // 4 + 1)
        if model == "long":
            completion_tokens = output_cap(body)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens,
                 "prompt_tokens_details": {"cached_tokens": prompt_tokens // 2 if model == "cache" else 0},
                 "completion_tokens_details": {"reasoning_tokens": 0}}
        usage.update(_FALSE_USAGE.get(model, {}))
        created = int(time.time())
        answer_id = f"chatcmpl-fake{next(self._ids):06d}"  # unique, as a provider's are
        if await _disconnected(receive):  # the caller gave up while the answer was being made
            self.cancelled.append(model)
            return
        self.begun.add(answer_id)
        self.prompts[answer_id] = _last_user_text(body)
        if not stream:
            await _json(send, 200, {
                "id": answer_id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": usage, "system_fingerprint": "fp_fake",
            })
            self.served[answer_id] = time.monotonic()
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        base = {"id": answer_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_fake"}
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if message.get("tool_calls"):
            call = message["tool_calls"][0]
            args = call["function"]["arguments"]
            deltas.append({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                           "function": {"name": call["function"]["name"], "arguments": ""}}]})
            half = len(args) // 2
            deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": args[:half]}}]})
            deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": args[half:]}}]})
        else:
            text = str(message.get("content") or "")
            pieces = 50 if model == "drip" else 4
            if model.startswith("drip-"):
                pieces = len(text) // len("tok ")
            step = max(1, len(text) // pieces + (1 if len(text) % pieces else 0))
            deltas.extend({"content": text[i:i + step]} for i in range(0, len(text), step))
        for i, delta in enumerate(deltas):
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}]}
            try:
                await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(chunk) + b"\n\n",
                            "more_body": True})
            except OSError:
                self.cancelled.append(model)
                return
            if model == "cut" and i == 1:
                raise ConnectionResetError("fake provider cut the stream")
            if model == "stall" and i == 1:
                await _wait_disconnect(receive)
                self.cancelled.append(model)
                return
            if model == "drip" or model.startswith("drip-"):
                await asyncio.sleep(0.05)
                if await _disconnected(receive):
                    self.cancelled.append(model)
                    return
        final = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish, "logprobs": None}]}
        tail = b"data: " + orjson.dumps(final) + b"\n\n"
        if (body.get("stream_options") or {}).get("include_usage"):
            tail += b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
        tail += b"data: [DONE]\n\n"
        try:
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        except OSError:
            self.cancelled.append(model)
            return
        self.served[answer_id] = time.monotonic()



async def _leak(model: str, said: str, stream: bool, send: Any) -> bool:
    """Answers the leaky behaviours (see :mod:`tests.fakes.leak`); False for any other model."""
    if model == "leak-stream" and stream:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        chunk = {"id": "chatcmpl-leak", "object": "chat.completion.chunk", "created": 0, "model": model,
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]}
        error = {"error": {"message": said, "type": "server_error", "code": None}}
        await send({"type": "http.response.body", "more_body": False,
                    "body": b"data: " + orjson.dumps(chunk) + b"\n\ndata: " + orjson.dumps(error) + b"\n\n"})
        return True
    return await answer_leak(model, said, send, lambda status, text: _json(
        send, status, {"error": {"message": text, "type": "invalid_request_error", "code": None}}))


#: What the malformed behaviours answer with status 200.
_MALFORMED = {
    "garbage": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    "garbage-events": b"data: this is not json\n\ndata: neither is this\n\n",
    "empty": b"",
}
#: The usage the false-usage behaviours report.
_FALSE_USAGE: dict[str, dict[str, int]] = {
    "usage-negative": {"prompt_tokens": -5, "completion_tokens": -100, "total_tokens": -105},
    "usage-huge": {"prompt_tokens": 10**13, "completion_tokens": 10**15, "total_tokens": 10**15 + 10**13},
    "usage-beyond": {"completion_tokens": 50_000},
}


#: The categories of OpenAI's omni-moderation models, in its order.
MODERATION_CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
                         "illicit/violent", "self-harm", "self-harm/instructions", "self-harm/intent", "sexual",
                         "sexual/minors", "violence", "violence/graphic")


def _moderation(body: dict[str, Any], number: int) -> dict[str, Any]:
    """OpenAI's moderation object: one result per input (a string, strings, or text and image parts)."""
    inputs = body.get("input")
    items = [inputs] if isinstance(inputs, str) else list(inputs or [])
    if items and all(isinstance(item, dict) for item in items):  # parts of one multi-modal input
        items = [" ".join(str(part.get("text") or "") for part in items)]
    results = []
    for item in items:
        violent = "attack" in str(item).lower()
        results.append({
            "flagged": violent,
            "categories": {name: violent and name == "violence" for name in MODERATION_CATEGORIES},
            "category_scores": {name: 0.91 if violent and name == "violence" else 0.0001
                                for name in MODERATION_CATEGORIES},
            "category_applied_input_types": {name: ["text"] for name in MODERATION_CATEGORIES},
        })
    return {"id": f"modr-fake{number:06d}", "model": body.get("model") or "omni-moderation-latest",
            "results": results}


def _model_of(path: str, body: dict[str, Any]) -> str:
    """The behaviour name: the body's model, or Azure's deployment name from the URL."""
    if "/deployments/" in path:
        return path.split("/deployments/")[1].split("/")[0]
    return str(body.get("model") or "")


def _azure_refusal(headers: dict[str, str], query: str, api_key: str) -> tuple[int, str] | None:
    """What Azure OpenAI answers a request without its api-version or a valid api-key."""
    if "api-version=" not in query:
        return 404, "Resource not found"
    if headers.get("api-key") != api_key:
        return 401, ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                     "valid key for an active subscription and use a correct regional API endpoint for your resource.")
    return None


#: Azure deployment names (as the fake reads them) of models that refuse ``max_tokens``: o-series, GPT-5.
_AZURE_REASONING = ("o1", "o3", "o4", "gpt-5")


def _azure_output_field_refusal(deployment: str, query: str, body: dict[str, Any]) -> tuple[int, str] | None:
    """What Azure answers an output cap its API version or model does not take: ``max_completion_tokens``
    before API version 2024-09-01-preview, ``max_tokens`` to a reasoning or GPT-5 model."""
    version = next((p[len("api-version="):] for p in query.split("&") if p.startswith("api-version=")), "")
    if "max_completion_tokens" in body and version[:10] < "2024-09-01":
        return 400, "Unrecognized request argument supplied: max_completion_tokens"
    if "max_tokens" in body and deployment.startswith(_AZURE_REASONING):
        return 400, ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                     "Use 'max_completion_tokens' instead.")
    return None


def _answer(model: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    messages = body.get("messages") or []
    if model == "tool" and messages and messages[-1].get("role") == "tool":
        result = messages[-1].get("content")
        if isinstance(result, list):
            result = "".join(p.get("text", "") for p in result if isinstance(p, dict))
        return {"role": "assistant", "content": f"The tool said: {result}", "refusal": None}, "stop"
    if model == "filter":
        return {"role": "assistant", "content": "I can", "refusal": None}, "content_filter"
    if model == "tool" and body.get("tools"):
        tool = body["tools"][0]
        name = tool.get("function", {}).get("name") or tool.get("name")
        return ({"role": "assistant", "content": None, "refusal": None,
                 "tool_calls": [{"id": "call_fake_1", "type": "function",
                                 "function": {"name": name, "arguments": '{"city": "Paris"}'}}]}, "tool_calls")
    if model == "echo":
        last = next((m for m in reversed(body.get("messages") or []) if m.get("role") == "user"), {})
        content = last.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return {"role": "assistant", "content": str(content or ""), "refusal": None}, "stop"
    if model == "drip":
        return {"role": "assistant", "content": "x" * 200, "refusal": None}, "stop"
    if model.startswith("drip-"):
        return {"role": "assistant", "content": "tok " * int(float(model.removeprefix("drip-")) * 20),
                "refusal": None}, "stop"
    if model == "long":
        return {"role": "assistant", "content": "tok " * output_cap(body), "refusal": None}, "length"
    return {"role": "assistant", "content": "Hello from the fake provider.", "refusal": None}, "stop"


def _last_user_text(body: dict[str, Any]) -> str:
    last = next((m for m in reversed(body.get("messages") or []) if m.get("role") == "user"), {})
    content = last.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "")


def output_cap(body: dict[str, Any]) -> int:
    """The output tokens the request allows (what ``long`` writes)."""
    return int(body.get("max_completion_tokens") or body.get("max_tokens") or LONG_DEFAULT_TOKENS)


async def _json(send: Any, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    raw = orjson.dumps(payload)
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


async def _wait_disconnect(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _disconnected(receive: Any) -> bool:
    try:
        message = await asyncio.wait_for(receive(), 0.001)
    except TimeoutError:
        return False
    return bool(message["type"] == "http.disconnect")
