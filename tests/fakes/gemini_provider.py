"""A fake Google Gemini API: a real HTTP server on loopback speaking generateContent.

It answers ``POST /v1beta/models/{model}:generateContent`` with JSON and
``:streamGenerateContent?alt=sse`` with SSE (``data: {...}\\r\\n\\r\\n``, one
GenerateContentResponse per event, usage in each), checks the API key like
Gemini does, rejects what Gemini rejects (unknown schema keys, roles other than
user/model, function responses that answer no function call) and records every
request. The model name picks the behaviour:

- ``...good...`` (default): a text answer; usage with cached and thought tokens
- ``...tool...``: calls every declared function (parallel calls, the first with a thought
  signature); once function responses come back it answers in text
- ``gemini-3...``: additionally requires the first replayed function call of each model turn to carry a thought
  signature, as Gemini 3 does (400 "Function call is missing a thought_signature")
- ``...error...``: 400 INVALID_ARGUMENT; ``...toolong...``: 400 token limit; ``...ratelimit...``: 429
- ``...safety...``: the candidate is blocked (finishReason SAFETY); ``...blocked...``: the prompt is
- ``...streamerror...``: a stream that starts then carries an error object
- ``...slow...``: waits ``slow_delay`` seconds between stream events
- ``...cut...``: the stream ends before any finishReason
- ``leak-<status>``, ``leak-text-<status>``, ``leak-stream``: errors that quote the request's headers and
  query string (see :mod:`tests.fakes.leak`), before the API key is checked

Log probabilities as the API reference documents them: with ``generationConfig.responseLogprobs`` every
candidate that carries text also carries ``logprobsResult`` (``chosenCandidates``: ``{token, tokenId,
logProbability}`` per decoding step of that text; ``topCandidates``: per step, the ``logprobs`` most likely
tokens, most likely first; ``logProbabilitySum``) and ``avgLogprobs``; a whole answer's covers all its text.
``logprobs`` without ``responseLogprobs``, or outside [0, 20], is refused as Gemini refuses it.

Thinking budgets as Google documents them (ai.google.dev/gemini-api/docs/thinking): a model named
``gemini-2.5-pro…`` takes a ``thinkingBudget`` from 128 to 32,768 and refuses 0 (it always thinks),
``gemini-2.5-flash-lite…`` 0 or 512 to 24,576, ``gemini-2.5-flash…`` 0 to 24,576; -1 (dynamic) everywhere. A model
that cannot think (``gemini-1.…``, ``gemini-2.0-…`` other than a ``thinking`` model) refuses any ``thinkingConfig``.

Explicit context caching as Gemini does it: ``POST /v1beta/cachedContents`` makes an entry (model, ttl,
systemInstruction, tools, toolConfig, contents; refused below :attr:`FakeContextCaches.min_tokens`, counted
at a token per four bytes of JSON), and a generateContent naming it in ``cachedContent`` is answered as if
the entry's parts came first, with the entry's tokens reported as ``cachedContentTokenCount`` (and counted in
``promptTokenCount``). Such a request may not set systemInstruction, tools or toolConfig itself; an entry
that expired, or that another model's request names, is refused as Gemini refuses it.

In a test module, import ``fake_gemini_fixture`` and ``fake_gemini_server_fixture`` from
``tests.fakes.gemini_provider`` (with ``# noqa: F401``), then take a ``fake_gemini`` argument.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
import pytest

from switchboard_router.deployment import Deployment
from tests.fakes.leak import answer_leak, quote_request
from tests.fakes.server import FakeProviderServer

TEST_API_KEY = "AIzaFakeGeminiKeyForTests0123456789"

_PATH_RE = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<op>generateContent|streamGenerateContent)$")
_CACHES_PATH = "/v1beta/cachedContents"
#: The fields of Gemini's Schema object; anything else is "Unknown name" (400).
_SCHEMA_FIELDS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
        "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
        "propertyOrdering", "default", "items", "minimum", "maximum",
    }
)  # fmt: skip
_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]
#: The thought signature the fake puts on the first function call of an answer.
THOUGHT_SIGNATURE = "ZmFrZS10aG91Z2h0LXNpZ25hdHVyZQ=="
#: The thought signatures Google documents for a history that has none of Gemini's (it skips the check).
DUMMY_SIGNATURES = frozenset({"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"})


class GeminiRejection(Exception):
    """A request Gemini would refuse with 400 INVALID_ARGUMENT."""


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def _check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise GeminiRejection(f"Invalid value at '{where}': expected an object")
    for key in schema:
        if key not in _SCHEMA_FIELDS:
            raise GeminiRejection(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
            )
    if schema.get("type", "").upper() == "OBJECT" and "properties" in schema and not schema["properties"]:
        raise GeminiRejection(f"* {where}.properties: should be non-empty for OBJECT type")
    for name, sub in (schema.get("properties") or {}).items():
        _check_schema(sub, f"{where}.properties[{name}]")
    if "items" in schema:
        _check_schema(schema["items"], f"{where}.items")
    for i, sub in enumerate(schema.get("anyOf") or []):
        _check_schema(sub, f"{where}.any_of[{i}]")


def _validate(model: str, request: dict[str, Any]) -> None:
    contents = request.get("contents")
    if not contents:
        raise GeminiRejection("* GenerateContentRequest.contents: contents is not specified")
    for i, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            raise GeminiRejection(f"Please use a valid role: user, model. (contents[{i}])")
        if not content.get("parts"):
            raise GeminiRejection(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        previous = contents[i - 1] if i else {}
        called = [p["functionCall"]["name"] for p in previous.get("parts", []) if "functionCall" in p]
        answered = [p["functionResponse"]["name"] for p in content["parts"] if "functionResponse" in p]
        if answered and sorted(answered) != sorted(called):
            raise GeminiRejection(
                "Please ensure that the number of function response parts is equal to the number of function call "
                "parts of the function call turn."
            )
        if content["role"] == "model":
            _check_signatures(model, content["parts"], i)
    for t, tool in enumerate(request.get("tools") or []):
        for d, declaration in enumerate(tool.get("functionDeclarations") or []):
            if "parameters" in declaration:
                _check_schema(declaration["parameters"], f"tools[{t}].function_declarations[{d}].parameters")
    config = request.get("generationConfig") or {}
    schema = config.get("responseSchema")
    if schema is not None:
        _check_schema(schema, "generation_config.response_schema")
    if "logprobs" in config and not config.get("responseLogprobs"):
        raise GeminiRejection("logprobs is only valid if response_logprobs is true.")
    if not 0 <= config.get("logprobs", 0) <= 20:
        raise GeminiRejection("* GenerationConfig.logprobs: must be in the range of [0, 20].")
    if "thinkingConfig" in config and _NO_THINKING.match(model) and "thinking" not in model:
        raise GeminiRejection("Unable to submit request because thinking is not supported by this model.")
    _check_thinking_budget(model, (config.get("thinkingConfig") or {}).get("thinkingBudget"))


#: Models that cannot think (Gemini 1.x, and 2.0 but its experimental thinking models): any thinkingConfig, even a
#: budget of 0, is refused.
_NO_THINKING = re.compile(r"gemini-(1\.|2\.0-)")


#: Thinking budgets by model prefix (first match wins): (least when thinking, most, whether 0 turns thinking off).
_BUDGETS: tuple[tuple[str, int, int, bool], ...] = (
    ("gemini-2.5-flash-lite", 512, 24576, True), ("gemini-2.5-flash", 1, 24576, True),
    ("gemini-2.5-pro", 128, 32768, False))


def _check_thinking_budget(model: str, budget: Any) -> None:
    limits = next((entry[1:] for entry in _BUDGETS if model.split("@")[0].startswith(entry[0])), None)
    if budget is None or budget == -1 or limits is None:
        return
    least, most, can_stop = limits
    if budget == 0 and not can_stop:
        raise GeminiRejection("Budget 0 is invalid. This model only works in thinking mode.")
    if budget != 0 and not least <= budget <= most:
        raise GeminiRejection(f"The thinking budget {budget} is invalid. Please choose a value between {least} and "
                              f"{most}.")


def _check_signatures(model: str, parts: list[dict[str, Any]], i: int) -> None:
    """A signed part comes back with the signature Gemini gave it (or a documented dummy); Gemini 3 wants one on
    the first function call of each model turn."""
    for part in parts:
        signature = part.get("thoughtSignature")
        if signature is not None and signature != THOUGHT_SIGNATURE and signature not in DUMMY_SIGNATURES:
            raise GeminiRejection(f"Thought signature is not valid (contents[{i}]).")
    calls = [p for p in parts if "functionCall" in p]
    if model.startswith("gemini-3") and calls and not calls[0].get("thoughtSignature"):
        raise GeminiRejection(f"Function call is missing a thought_signature in functionCall parts (contents[{i}])")


def _sample_args(declaration: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for name, schema in ((declaration.get("parameters") or {}).get("properties") or {}).items():
        kind = str(schema.get("type", "string")).lower()
        args[name] = (
            schema["enum"][0]
            if schema.get("enum")
            else {"string": "Paris", "integer": 3, "number": 2.5}.get(kind, True)
        )
    return args


def _usage(prompt: int, candidates: int, **extra: int) -> dict[str, Any]:
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + extra.get("thoughtsTokenCount", 0),
        **extra,
    }


def _responses(model: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer as the series of GenerateContentResponse a stream sends (a whole answer merges them), with the
    log probabilities of its text when the request asks for them."""
    responses = _answer(model, request)
    config = request.get("generationConfig") or {}
    if config.get("responseLogprobs"):
        for response in responses:
            for candidate in response.get("candidates") or []:
                text = "".join(p.get("text", "") for p in (candidate.get("content") or {}).get("parts") or [])
                if text:
                    _add_logprobs(candidate, text, int(config.get("logprobs", 0)))
    return responses


#: How the fake splits text into tokens: a word with the spaces before it, or a punctuation mark.
_TOKEN_RE = re.compile(r"\s*\w+|\s*[^\w\s]")


def _add_logprobs(candidate: dict[str, Any], text: str, top: int) -> None:
    chosen: list[dict[str, Any]] = []
    tops: list[dict[str, Any]] = []
    for token in _TOKEN_RE.findall(text):
        logprob = -round(0.01 * (len(token) + 1), 4)
        chosen.append({"token": token, "tokenId": zlib.crc32(token.encode()) % 256_000, "logProbability": logprob})
        alternatives = [chosen[-1], *({"token": f"{token}~{k}", "tokenId": 90_000 + k, "logProbability": logprob - k}
                                      for k in range(1, top))]
        tops.append({"candidates": alternatives[:top]})
    result: dict[str, Any] = {"chosenCandidates": chosen,
                              "logProbabilitySum": sum(c["logProbability"] for c in chosen)}
    if top:
        result["topCandidates"] = tops
    candidate["logprobsResult"] = result
    candidate["avgLogprobs"] = result["logProbabilitySum"] / len(chosen)


def _answer(model: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    meta = {"modelVersion": model, "responseId": "fakeResp01"}
    last = request["contents"][-1]
    function_responses = [p["functionResponse"] for p in last["parts"] if "functionResponse" in p]
    declarations = [d for tool in request.get("tools") or [] for d in tool.get("functionDeclarations") or []]

    def text_chunk(text: str, usage: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": usage, **meta}

    if "blocked" in model:
        return [
            {
                "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _SAFETY_RATINGS},
                "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
                **meta,
            }
        ]
    if "safety" in model:
        blocked = {"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": _SAFETY_RATINGS}]}
        return [text_chunk("I can", _usage(10, 2)), {**blocked, "usageMetadata": _usage(10, 2), **meta}]
    if "tool" in model and declarations and not function_responses:
        parts: list[dict[str, Any]] = []
        for i, declaration in enumerate(declarations):
            part: dict[str, Any] = {"functionCall": {"name": declaration["name"], "args": _sample_args(declaration)}}
            if i == 0:
                part["thoughtSignature"] = THOUGHT_SIGNATURE
            parts.append(part)
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        return [
            text_chunk("Checking.", _usage(30, 2)),
            {"candidates": [candidate], "usageMetadata": _usage(30, 14, thoughtsTokenCount=7), **meta},
        ]
    if function_responses:
        said = "; ".join(f"{r['name']}={orjson.dumps(r['response']).decode()}" for r in function_responses)
        return [text_chunk(f"The tools said: {said}", _usage(44, 12), "STOP")]
    usage = _usage(12, 6, cachedContentTokenCount=4, thoughtsTokenCount=5)
    return [
        text_chunk("Hello", _usage(12, 1)),
        text_chunk(" from fake", _usage(12, 3)),
        text_chunk(" Gemini.", usage, "STOP"),
    ]


def _merge(responses: list[dict[str, Any]]) -> dict[str, Any]:
    """What generateContent returns for the same answer: parts concatenated, last metadata wins."""
    merged: dict[str, Any] = dict(responses[-1])
    if "candidates" not in merged:
        return merged
    parts: list[dict[str, Any]] = []
    for response in responses:
        for part in ((response.get("candidates") or [{}])[0].get("content") or {}).get("parts") or []:
            if "text" in part and parts and "text" in parts[-1]:
                parts[-1] = {"text": parts[-1]["text"] + part["text"]}
            else:
                parts.append(part)
    candidate = dict(merged["candidates"][0])
    if candidate.get("finishReason") in ("SAFETY",):
        candidate.pop("content", None)
    else:
        candidate["content"] = {"role": "model", "parts": parts}
    results = [c["logprobsResult"] for r in responses for c in r.get("candidates") or [] if "logprobsResult" in c]
    if results:
        whole: dict[str, Any] = {"chosenCandidates": [c for r in results for c in r["chosenCandidates"]],
                                 "logProbabilitySum": sum(r["logProbabilitySum"] for r in results)}
        if any("topCandidates" in r for r in results):
            whole["topCandidates"] = [t for r in results for t in r.get("topCandidates", [])]
        candidate["logprobsResult"] = whole
        candidate["avgLogprobs"] = whole["logProbabilitySum"] / len(whole["chosenCandidates"])
    merged["candidates"] = [candidate]
    return merged


def _error_body(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def _failure_for(model: str) -> tuple[int, dict[str, Any]] | None:
    if "ratelimit" in model:
        retry = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
        return 429, _error_body(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", retry)
    if "toolong" in model:
        message = "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
        return 400, _error_body(400, "INVALID_ARGUMENT", message)
    if "error" in model and "streamerror" not in model:
        return 400, _error_body(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
    return None


def count_tokens(value: Any) -> int:
    """The fake's token count: one per four bytes of JSON."""
    return len(orjson.dumps(value)) // 4


#: The generateContent fields that an entry holds and a request naming it may not set.
_IN_ENTRY = ("systemInstruction", "tools", "toolConfig")


@dataclass(slots=True)
class CachedEntry:
    name: str
    model: str
    head: dict[str, Any]
    contents: list[dict[str, Any]]
    tokens: int
    expires: float
    #: generateContent calls that read it.
    reads: int = 0


@dataclass(slots=True)
class FakeContextCaches:
    """The ``cachedContents`` entries of one fake server."""

    #: Gemini's minimum entry size (2.5 Flash's).
    min_tokens: int = 1024
    entries: dict[str, CachedEntry] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def create(self, request: dict[str, Any], model_prefix: str) -> tuple[int, dict[str, Any]]:
        """Makes an entry; the status and JSON Gemini answers."""
        model = request.get("model")
        if not isinstance(model, str) or not model.startswith(model_prefix):
            return 400, _error_body(400, "INVALID_ARGUMENT", f"* CachedContent.model: {model!r} is not a model name "
                                                             f"({model_prefix}...)")
        ttl = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(request.get("ttl", "3600s")))
        if ttl is None:
            return 400, _error_body(400, "INVALID_ARGUMENT", "Invalid value at 'cached_content.ttl'")
        head = {key: request[key] for key in _IN_ENTRY if key in request}
        contents = request.get("contents") or []
        tokens = count_tokens(head) + sum(count_tokens(c) for c in contents)
        if tokens < self.min_tokens:
            return 400, _error_body(400, "INVALID_ARGUMENT", f"Cached content is too small. total_token_count="
                                                             f"{tokens}, min_total_token_count={self.min_tokens}")
        name = f"cachedContents/fake{next(self._ids):06d}"
        expires = time.time() + float(ttl[1])
        self.entries[name] = CachedEntry(name, model, head, contents, tokens, expires)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        return 200, {"name": name, "model": model, "displayName": request.get("displayName", ""),
                     "createTime": stamp, "updateTime": stamp, "expireTime": stamp,
                     "usageMetadata": {"totalTokenCount": tokens}}

    def expand(self, model_name: str, request: dict[str, Any]) -> tuple[dict[str, Any], CachedEntry | None]:
        """The request as the model sees it (the entry's parts first), and the entry read; GeminiRejection or
        LookupError (403) for what Gemini refuses."""
        name = request.get("cachedContent")
        if not name:
            return request, None
        if any(key in request for key in _IN_ENTRY):
            raise GeminiRejection("CachedContent can not be used with GenerateContent request setting "
                                  "system_instruction, tools or tool_config.\n\nProposed fix: move those values "
                                  "to CachedContent from GenerateContent request.")
        entry = self.entries.get(name)
        if entry is None or entry.expires <= time.time():
            raise LookupError(f"CachedContent not found (or permission denied): {name}")
        if entry.model != model_name:
            raise GeminiRejection(f"Model used by GenerateContent request ({model_name}) and CachedContent "
                                  f"({entry.model}) has to be the same.")
        entry.reads += 1
        expanded = {**entry.head, **{k: v for k, v in request.items() if k != "cachedContent"}}
        expanded["contents"] = [*entry.contents, *request.get("contents", [])]
        return expanded, entry


def _with_cache_usage(responses: list[dict[str, Any]], entry: CachedEntry, request: dict[str, Any]) -> None:
    """Reports the entry's tokens as cached, counted in the prompt with the request's own."""
    prompt = entry.tokens + sum(count_tokens(c) for c in request.get("contents", []))
    for response in responses:
        usage = response.get("usageMetadata")
        if usage:
            completion = usage.get("candidatesTokenCount", 0) + usage.get("thoughtsTokenCount", 0)
            usage.update(promptTokenCount=prompt, cachedContentTokenCount=entry.tokens,
                         totalTokenCount=prompt + completion)


class FakeGemini(FakeProviderServer):
    """The server; start() before use, stop() after (the fixture does both)."""

    server_name = "fake-gemini"

    def __init__(self, *, slow_delay: float = 0.2) -> None:
        self.slow_delay = self.default_slow_delay = slow_delay
        self.api_keys = {TEST_API_KEY}
        self.requests: list[RecordedRequest] = []
        self.caches = FakeContextCaches()
        #: How many of the next generateContent calls to answer 503 UNAVAILABLE (the model overloaded).
        self.overloaded_calls = 0

    def reset(self) -> None:
        super().reset()
        self.caches = FakeContextCaches()
        self.overloaded_calls = 0

    def deployment(self, model: str, *, api_key: str = TEST_API_KEY, **extra: Any) -> Deployment:
        return Deployment(
            id=f"gemini/{model}", public_model="gemini-test", provider="gemini", model=model,
            api_base=self.base_url, api_key=api_key, extra=extra,
        )  # fmt: skip

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("ascii"))
        self.requests.append(RecordedRequest(scope["method"], scope["path"], query, headers, body))

        if scope["path"] == _CACHES_PATH and scope["method"] == "POST":
            await self._create_cache(send, headers, query, body)
            return
        match = _PATH_RE.match(scope["path"])
        if scope["method"] != "POST" or match is None:
            await _send_json(send, 404, _error_body(404, "NOT_FOUND", f"{scope['path']} is not found."))
            return
        said = quote_request(headers, scope.get("query_string", b"").decode())
        if await answer_gemini_leak(unquote(match["model"]), said, match["op"] == "streamGenerateContent", send):
            return
        key = headers.get("x-goog-api-key") or (query.get("key") or [""])[0]
        if key not in self.api_keys:
            await _send_json(
                send, 400, _error_body(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
            )
            return
        model = unquote(match["model"])
        try:
            sent = orjson.loads(body)
            request, entry = self.caches.expand(f"models/{model}", sent)
            _validate(model, request)
        except (orjson.JSONDecodeError, GeminiRejection, KeyError, TypeError, AttributeError) as exc:
            await _send_json(send, 400, _error_body(400, "INVALID_ARGUMENT", str(exc) or "Invalid JSON payload"))
            return
        except LookupError as exc:
            await _send_json(send, 403, _error_body(403, "PERMISSION_DENIED", str(exc)))
            return
        failure = _failure_for(model)
        if failure is None and self.overloaded_calls:
            self.overloaded_calls -= 1
            failure = 503, _error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        if failure is not None:
            await _send_json(send, *failure)
            return
        responses = _responses(model, request)
        if entry is not None:
            _with_cache_usage(responses, entry, sent)
        if match["op"] == "generateContent":
            await _send_json(send, 200, _merge(responses))
        elif (query.get("alt") or [""])[0] == "sse":
            await self._send_sse(send, model, responses)
        else:
            await _send_json(send, 200, responses)

    async def _create_cache(self, send: Any, headers: dict[str, str], query: dict[str, list[str]],
                            body: bytes) -> None:
        key = headers.get("x-goog-api-key") or (query.get("key") or [""])[0]
        if key not in self.api_keys:
            await _send_json(
                send, 400, _error_body(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
            )
            return
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            await _send_json(send, 400, _error_body(400, "INVALID_ARGUMENT", "Invalid JSON payload"))
            return
        await _send_json(send, *self.caches.create(request, "models/"))

    async def _send_sse(self, send: Any, model: str, responses: list[dict[str, Any]]) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"x-content-type-options", b"nosniff")],
            }
        )
        payloads = [orjson.dumps(r) for r in responses]
        if "streamerror" in model:
            error = _error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
            payloads = [*payloads[:1], orjson.dumps(error)]
        if "cut" in model:
            payloads = payloads[:2]
        for payload in payloads:
            if "slow" in model:
                await asyncio.sleep(self.slow_delay)
            await send({"type": "http.response.body", "body": b"data: " + payload + b"\r\n\r\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_json(send: Any, status: int, payload: Any) -> None:
    body = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json; charset=UTF-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(name="fake_gemini_server", scope="module")
def fake_gemini_server_fixture() -> Iterator[FakeGemini]:
    """One running fake Gemini shared by a test module (starting a server costs ~0.2 s)."""
    server = FakeGemini()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="fake_gemini")
def fake_gemini_fixture(fake_gemini_server: FakeGemini) -> FakeGemini:
    """The module's fake Gemini, with no recorded requests and default behaviour settings."""
    fake_gemini_server.reset()
    return fake_gemini_server


async def answer_gemini_leak(model: str, said: str, stream: bool, send: Any) -> bool:
    """Answers the leaky behaviours (see :mod:`tests.fakes.leak`) as Gemini would; False for any other model."""
    if model == "leak-stream" and stream:
        first = _responses("gemini-good", {"contents": [{"role": "user", "parts": [{"text": "x"}]}]})[0]
        error = _error_body(500, "INTERNAL", said)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        frames = b"".join(b"data: " + orjson.dumps(p) + b"\r\n\r\n" for p in (first, error))
        await send({"type": "http.response.body", "body": frames, "more_body": False})
        return True
    return await answer_leak(model, said, send, lambda status, text: _send_json(
        send, status, _error_body(status, "INVALID_ARGUMENT", text)))
