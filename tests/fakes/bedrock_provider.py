"""A fake AWS Bedrock Runtime: a real HTTP server on loopback speaking Converse / ConverseStream.

It checks SigV4 the way AWS does (recomputes the signature with botocore from
the known test secret) or accepts the test Bedrock API key as a bearer token,
answers Converse with JSON and ConverseStream with real event-stream frames
(both CRCs), and records every request. The model id picks the behaviour:

- ``...good...`` (default): a text answer with usage including cache tokens
- ``...tool...``: calls the first declared tool; once a tool result is sent back it answers in text
- ``...error...``: 400 ValidationException; ``...toolong...``: 400 "Input is too long"
- ``...throttle...``: 429 ThrottlingException
- ``...exception...``: a stream that starts then carries a throttlingException event
- ``...safety...``: the guardrail intervenes (stopReason guardrail_intervened)
- ``...slow...``: waits ``slow_delay`` seconds between stream events
- ``...cut...``: the stream stops in the middle of a frame
- ``leak-<status>``, ``leak-text-<status>``, ``leak-stream``: errors that quote the request's headers
  (see :mod:`tests.fakes.leak`), before the signature is checked

It refuses what Converse refuses: unknown keys, malformed turns, more than four cache points, and a structured
output (``outputConfig.textFormat``) that is not a JSON schema sent as a string.

Claude's extended thinking works as on Bedrock: a model whose id names ``claude`` takes
``additionalModelRequestFields: {"thinking": {"type": "enabled", "budget_tokens": N}}`` (any other model refuses the
key), checked as Claude checks it (a budget of at least 1,024 below ``maxTokens``, no temperature, a top_p of at least
0.95, no forced tool choice, and a last assistant turn that calls tools must begin with the reasoning block it was
answered with, its signature intact). Such an answer begins with a ``reasoningContent`` block (``reasoningText`` with
its text and a signature; streamed as text deltas, then a signature delta); a model whose id also names ``redacted``
adds a ``redactedContent`` block.

In a test module, import ``fake_bedrock_fixture`` and ``fake_bedrock_server_fixture`` from
``tests.fakes.bedrock_provider`` (with ``# noqa: F401``), then take a ``fake_bedrock`` argument.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from switchboard_router.deployment import Deployment
from switchboard_router.providers.bedrock_eventstream import encode_event, encode_exception
from tests.fakes.leak import answer_leak, quote_request
from tests.fakes.server import FakeProviderServer

TEST_REGION = "eu-west-1"
TEST_ACCESS_KEY_ID = "AKIAFAKEBEDROCKTEST1"
TEST_SECRET_ACCESS_KEY = "fake/secret/for+bedrock/tests/0123456789"
TEST_SESSION_TOKEN = "fake-session-token"
TEST_API_KEY = "bedrock-api-key-fake-1234"

_AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
_PATH_RE = re.compile(r"^/model/(?P<model>[^/]+)/(?P<op>converse|converse-stream)$")


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    raw_path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def verify_sigv4(
    method: str, url: str, headers: dict[str, str], body: bytes, *, secrets: dict[str, str], region: str
) -> str | None:
    """Why the request's SigV4 signature is wrong, or None when it is right."""
    match = _AUTH_RE.fullmatch(headers.get("authorization", ""))
    if match is None:
        return "Authorization header is not a well-formed AWS4-HMAC-SHA256 signature"
    if match["service"] != "bedrock" or match["region"] != region:
        return f"credential scope {match['region']}/{match['service']} is not {region}/bedrock"
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(match["date"]):
        return "X-Amz-Date does not match the credential scope date"
    secret = secrets.get(match["key"])
    if secret is None:
        return "The security token included in the request is invalid."
    signed = match["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return "host and x-amz-date must be signed"
    missing = [name for name in signed if name not in headers]
    if missing:
        return f"signed headers missing from the request: {missing}"
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in signed})
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(match["key"], secret, headers.get("x-amz-security-token")), "bedrock", region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if expected != match["signature"]:
        return "The request signature we calculated does not match the signature you provided."
    return None


def _sample_value(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "string":
        return "Paris"
    if kind in ("integer", "number"):
        return 3
    if kind == "boolean":
        return True
    if kind == "array":
        return [_sample_value(schema.get("items") or {"type": "string"})]
    if kind == "object":
        return {k: _sample_value(v) for k, v in (schema.get("properties") or {}).items()}
    return None


class FakeBedrock(FakeProviderServer):
    """The server; start() before use, stop() after (the fixture does both)."""

    server_name = "fake-bedrock"

    def __init__(self, *, region: str = TEST_REGION, slow_delay: float = 0.2) -> None:
        self.region = region
        self.slow_delay = self.default_slow_delay = slow_delay
        self.secrets = {TEST_ACCESS_KEY_ID: TEST_SECRET_ACCESS_KEY}
        self.api_keys = {TEST_API_KEY}
        self.requests: list[RecordedRequest] = []

    def deployment(self, model: str, *, auth: str = "sigv4", session_token: bool = False) -> Deployment:
        """A deployment pointing at this server, signed (``sigv4``) or with the API key (``api_key``)."""
        extra: dict[str, Any] = {"aws_region": self.region}
        api_key = None
        if auth == "sigv4":
            extra["aws_access_key_id"] = TEST_ACCESS_KEY_ID
            extra["aws_secret_access_key"] = TEST_SECRET_ACCESS_KEY
            if session_token:
                extra["aws_session_token"] = TEST_SESSION_TOKEN
        else:
            api_key = TEST_API_KEY
        return Deployment(
            id=f"bedrock/{model}",
            public_model="claude-test",
            provider="bedrock",
            model=model,
            api_base=self.base_url,
            api_key=api_key,
            extra=extra,
        )

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw_path = scope["raw_path"].decode("ascii")
        self.requests.append(RecordedRequest(scope["method"], scope["path"], raw_path, headers, body))

        match = _PATH_RE.match(raw_path)
        if scope["method"] != "POST" or match is None:
            await _send_error(send, 404, "UnknownOperationException", "Unknown operation")
            return
        said = quote_request(headers, scope.get("query_string", b"").decode())
        if await self._leak(unquote(match["model"]), said, match["op"] == "converse-stream", send):
            return
        denial = self._check_auth(scope, headers, raw_path, body)
        if denial is not None:
            await _send_error(send, 403, *denial)
            return
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            await _send_error(send, 400, "SerializationException", "Request body is not JSON")
            return
        model = unquote(match["model"])
        problem = _validation_problem(request) or _thinking_problem(model, request)
        if problem is not None:
            await _send_error(send, 400, "ValidationException", problem)
            return
        failure = _failure_for(model)
        if failure is not None:
            await _send_error(send, *failure)
            return
        events = _answer_events(model, request)
        if match["op"] == "converse":
            await _send_json(send, 200, _converse_body(events))
        else:
            await self._send_stream(send, model, events)

    async def _leak(self, model: str, said: str, stream: bool, send: Any) -> bool:
        """Answers the leaky behaviours (see :mod:`tests.fakes.leak`); False for any other model."""
        if model == "leak-stream" and stream:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/vnd.amazon.eventstream")]})
            frames = encode_event("messageStart", b'{"role":"assistant"}') + encode_exception(
                "internalServerException", orjson.dumps({"message": said}))
            await send({"type": "http.response.body", "body": frames, "more_body": False})
            return True
        return await answer_leak(model, said, send, lambda status, text: _send_error(
            send, status, "AccessDeniedException" if status in (401, 403) else "ValidationException", text))

    def _check_auth(
        self, scope: dict[str, Any], headers: dict[str, str], raw_path: str, body: bytes
    ) -> tuple[str, str] | None:
        authorization = headers.get("authorization", "")
        if authorization.startswith("Bearer "):
            if authorization[7:] in self.api_keys:
                return None
            return ("UnrecognizedClientException", "Invalid API key")
        query = scope.get("query_string", b"").decode("ascii")
        url = f"http://{headers.get('host', '')}{raw_path}" + (f"?{query}" if query else "")
        problem = verify_sigv4(scope["method"], url, headers, body, secrets=self.secrets, region=self.region)
        if problem is None:
            return None
        return ("InvalidSignatureException" if "signature" in problem else "UnrecognizedClientException", problem)

    async def _send_stream(self, send: Any, model: str, events: list[tuple[str, dict[str, Any]]]) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/vnd.amazon.eventstream"), (b"x-amzn-requestid", b"fake")],
            }
        )
        frames = [
            encode_event(name, orjson.dumps({**payload, "p": "abcdefghij"[: len(name) % 10]}))
            for name, payload in events
        ]
        if "exception" in model:
            frames = [
                *frames[:2],
                encode_exception(
                    "throttlingException", b'{"message":"Too many tokens, please wait before trying again."}'
                ),
            ]
        if "cut" in model:
            cut_frame = frames[3]
            frames = [*frames[:3], cut_frame[: len(cut_frame) // 2]]
        for frame in frames:
            if "slow" in model:
                await asyncio.sleep(self.slow_delay)
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


_REQUEST_KEYS = frozenset(
    {"messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
     "additionalModelResponseFieldPaths", "promptVariables", "requestMetadata", "performanceConfig", "outputConfig"}
)  # fmt: skip
_INFERENCE_KEYS = frozenset({"maxTokens", "temperature", "topP", "stopSequences"})
_BLOCK_KEYS = frozenset({"text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "cachePoint",
                         "reasoningContent"})  # fmt: skip


#: Cache checkpoints Bedrock takes in one request (for Claude models).
MAX_CACHE_POINTS = 4


def _validation_problem(request: dict[str, Any]) -> str | None:
    """What Bedrock would say about a malformed Converse request, or None."""
    unknown = set(request) - _REQUEST_KEYS
    if unknown:
        return f"Malformed input request: extraneous key [{min(unknown)}] is not permitted"
    unknown = set(request.get("inferenceConfig") or {}) - _INFERENCE_KEYS
    if unknown:
        return f"Malformed input request: extraneous key [{min(unknown)}] is not permitted"
    if "outputConfig" in request:
        problem = _output_config_problem(request["outputConfig"])
        if problem:
            return problem
    messages = request.get("messages") or []
    if not messages:
        return "Malformed input request: messages is empty"
    uses_tools = False
    for i, message in enumerate(messages):
        expected = "user" if i % 2 == 0 else "assistant"
        if message.get("role") != expected:
            return (
                "A conversation must start with a user message and alternate between user and assistant roles. "
                "Try again with a conversation that alternates."
            )
        content = message.get("content") or []
        if not content:
            return f"The content field in the Message object at messages.{i} is empty."
        for j, block in enumerate(content):
            if len(block) != 1 or next(iter(block)) not in _BLOCK_KEYS:
                return f"Malformed input request: messages.{i}.content.{j} is not a valid ContentBlock"
            if "text" in block and not block["text"].strip():
                return f"The text field in the ContentBlock object at messages.{i}.content.{j} is blank."
        uses_tools = uses_tools or any("toolUse" in b or "toolResult" in b for b in content)
        results = [b["toolResult"]["toolUseId"] for b in content if "toolResult" in b]
        if results:
            previous = messages[i - 1]["content"] if i else []
            uses = [b["toolUse"]["toolUseId"] for b in previous if "toolUse" in b]
            if sorted(results) != sorted(uses):
                return f"Expected toolResult blocks at messages.{i}.content for the following Ids: {', '.join(uses)}"
    if uses_tools and not request.get("toolConfig"):
        return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
    blocks = [*(request.get("system") or []), *((request.get("toolConfig") or {}).get("tools") or []),
              *(b for m in messages for b in m.get("content") or [])]
    cache_points = sum(1 for block in blocks if "cachePoint" in block)
    if cache_points > MAX_CACHE_POINTS:
        return f"The request has {cache_points} cache points; the maximum is {MAX_CACHE_POINTS}."
    return None


#: Claude's smallest thinking budget, and the top_p it takes at least with thinking on.
MIN_THINKING_BUDGET, MIN_TOP_P_WITH_THINKING = 1024, 0.95
#: What Claude thinks, when asked to.
THOUGHT = "The user wants a short answer. Let me think it through."


def thought_signature(text: str) -> str:
    """The signature the fake gives a reasoning text, and checks when the text is sent back."""
    return base64.b64encode(hashlib.sha256(b"fake-bedrock:" + text.encode()).digest()).decode()


def _thinking_problem(model: str, request: dict[str, Any]) -> str | None:
    """What Claude on Bedrock says of a request whose extended thinking is malformed, or None."""
    fields = request.get("additionalModelRequestFields")
    for i, message in enumerate(request.get("messages") or []):
        for block in message.get("content") or []:
            reasoning = block.get("reasoningContent")
            text = (reasoning or {}).get("reasoningText") if isinstance(reasoning, dict) else None
            if isinstance(text, dict) and text.get("signature") != thought_signature(str(text.get("text"))):
                return f"messages.{i}.content: Invalid `signature` in `thinking` block"
    if fields is None:
        return None
    if "claude" not in model:
        return f"Malformed input request: #: extraneous key [{min(fields)}] is not permitted"
    thinking = fields.get("thinking")
    if set(fields) != {"thinking"} or not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return "additionalModelRequestFields: only thinking {type: enabled, budget_tokens} is known to this fake"
    budget = thinking.get("budget_tokens")
    inference = request.get("inferenceConfig") or {}
    if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
        return "thinking.budget_tokens: Input should be greater than or equal to 1024"
    if not isinstance(inference.get("maxTokens"), int) or inference["maxTokens"] <= budget:
        return "`max_tokens` must be greater than `thinking.budget_tokens`"
    if "temperature" in inference:
        return "`temperature` may only be set to 1 when thinking is enabled"
    if inference.get("topP", 1) < MIN_TOP_P_WITH_THINKING:
        return "`top_p` must be greater than or equal to 0.95 when thinking is enabled"
    if {"any", "tool"} & set((request.get("toolConfig") or {}).get("toolChoice") or {}):
        return "Thinking may not be enabled when tool_choice forces tool use."
    turns = [m for m in request.get("messages") or [] if m.get("role") == "assistant"]
    last = turns[-1]["content"] if turns else []
    if any("toolUse" in b for b in last) and "reasoningContent" not in last[0]:
        return ("Expected `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a final "
                "`assistant` message must start with a thinking block")
    return None


def _output_config_problem(config: Any) -> str | None:
    """What Bedrock says of an ``outputConfig`` that is not ``{"textFormat": {"type": "json_schema", "structure":
    {"jsonSchema": {"schema": "<a JSON object, as a string>", "name"?, "description"?}}}}``, or None."""
    text_format = config.get("textFormat") if isinstance(config, dict) else None
    if not isinstance(text_format, dict) or text_format.get("type") != "json_schema":
        return "Malformed input request: outputConfig.textFormat.type must be json_schema"
    definition = (text_format.get("structure") or {}).get("jsonSchema")
    if not isinstance(definition, dict) or set(definition) - {"schema", "name", "description"}:
        return "Malformed input request: outputConfig.textFormat.structure.jsonSchema is not a JsonSchemaDefinition"
    try:
        schema = orjson.loads(definition["schema"]) if isinstance(definition.get("schema"), str) else None
    except orjson.JSONDecodeError:
        schema = None
    if not isinstance(schema, dict):
        return "The JSON schema in outputConfig.textFormat.structure.jsonSchema.schema is not valid."
    return None


def _failure_for(model: str) -> tuple[int, str, str] | None:
    if "throttle" in model:
        return (429, "ThrottlingException", "Too many requests, please wait before trying again.")
    if "toolong" in model:
        return (400, "ValidationException", "Input is too long for requested model.")
    if "error" in model:
        return (400, "ValidationException", "The provided model identifier is invalid.")
    return None


def _last_tool_result(request: dict[str, Any]) -> str | None:
    last = request["messages"][-1]
    for block in last.get("content") or []:
        if "toolResult" in block:
            return "".join(c.get("text", "") for c in block["toolResult"].get("content") or [])
    return None


def _answer_events(model: str, request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The answer as ConverseStream events; Converse is the same answer folded into one body."""
    usage = {"inputTokens": 21, "outputTokens": 9, "totalTokens": 30}
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    tools = ((request.get("toolConfig") or {}).get("tools")) or []
    tool_result = _last_tool_result(request)
    if "tool" in model and tools and tool_result is None:
        spec = tools[0]["toolSpec"]
        arguments = orjson.dumps(_sample_value(spec["inputSchema"]["json"])).decode()
        half = len(arguments) // 2
        events += [
            ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me check."}}),
            ("contentBlockStop", {"contentBlockIndex": 0}),
            (
                "contentBlockStart",
                {
                    "contentBlockIndex": 1,
                    "start": {"toolUse": {"toolUseId": "tooluse_fakeAbc123", "name": spec["name"]}},
                },
            ),
            ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": arguments[:half]}}}),
            ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": arguments[half:]}}}),
            ("contentBlockStop", {"contentBlockIndex": 1}),
            ("messageStop", {"stopReason": "tool_use"}),
        ]
    else:
        if "safety" in model:
            pieces, stop = ["Sorry, the model cannot answer", " this question."], "guardrail_intervened"
        elif tool_result is not None:
            pieces, stop = ["The tool said: ", tool_result], "end_turn"
        else:
            pieces, stop = ["Hello", " from", " fake", " Bedrock."], "end_turn"
            usage.update(cacheReadInputTokens=4, cacheWriteInputTokens=2)
        events += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}) for p in pieces]
        events += [("contentBlockStop", {"contentBlockIndex": 0}), ("messageStop", {"stopReason": stop})]
    events.append(("metadata", {"usage": usage, "metrics": {"latencyMs": 12}}))
    if "thinking" in (request.get("additionalModelRequestFields") or {}):
        events = _with_reasoning(events, redacted="redacted" in model)
    return events


def _with_reasoning(events: list[tuple[str, dict[str, Any]]], *, redacted: bool) -> list[tuple[str, dict[str, Any]]]:
    """The answer led by Claude's reasoning: a signed reasoning block (and a redacted one), the rest after them."""
    reasoning: list[tuple[str, dict[str, Any]]] = [
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": THOUGHT[:20]}}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": THOUGHT[20:]}}}),
        ("contentBlockDelta",
         {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": thought_signature(THOUGHT)}}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
    ]
    if redacted:
        data = base64.b64encode(b"encrypted thoughts").decode()
        reasoning += [("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"reasoningContent": {
            "redactedContent": data}}}), ("contentBlockStop", {"contentBlockIndex": 1})]
    shift = 2 if redacted else 1
    later = [(name, {**payload, "contentBlockIndex": payload["contentBlockIndex"] + shift}
              if "contentBlockIndex" in payload else payload) for name, payload in events[1:]]
    return [events[0], *reasoning, *later]


def _converse_body(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    blocks: dict[int, dict[str, Any]] = {}
    partial_inputs: dict[int, str] = {}
    answer: dict[str, Any] = {}
    for name, payload in events:
        index = payload.get("contentBlockIndex", 0)
        if name == "contentBlockStart":
            blocks[index] = {"toolUse": {**payload["start"]["toolUse"]}}
            partial_inputs[index] = ""
        elif name == "contentBlockDelta":
            delta = payload["delta"]
            if "text" in delta:
                block = blocks.setdefault(index, {"text": ""})
                block["text"] += delta["text"]
            elif "reasoningContent" in delta:
                part = delta["reasoningContent"]
                if "redactedContent" in part:
                    blocks[index] = {"reasoningContent": {"redactedContent": part["redactedContent"]}}
                else:
                    text = blocks.setdefault(index, {"reasoningContent": {"reasoningText": {"text": ""}}})
                    text = text["reasoningContent"]["reasoningText"]
                    text["text"] += part.get("text", "")
                    if "signature" in part:
                        text["signature"] = part["signature"]
            else:
                partial_inputs[index] += delta["toolUse"]["input"]
        elif name == "messageStop":
            answer["stopReason"] = payload["stopReason"]
        elif name == "metadata":
            answer.update(payload)
    for index, raw in partial_inputs.items():
        blocks[index]["toolUse"]["input"] = orjson.loads(raw)
    content = [blocks[i] for i in sorted(blocks)]
    return {"output": {"message": {"role": "assistant", "content": content}}, **answer}


async def _send_json(send: Any, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Any, status: int, error_type: str, message: str) -> None:
    errortype = f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/".encode()
    await _send_json(send, status, {"message": message}, [(b"x-amzn-errortype", errortype)])


@pytest.fixture(name="fake_bedrock_server", scope="module")
def fake_bedrock_server_fixture() -> Iterator[FakeBedrock]:
    """One running fake Bedrock shared by a test module (starting a server costs ~0.2 s)."""
    server = FakeBedrock()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="fake_bedrock")
def fake_bedrock_fixture(fake_bedrock_server: FakeBedrock) -> FakeBedrock:
    """The module's fake Bedrock, with no recorded requests and default behaviour settings."""
    fake_bedrock_server.reset()
    return fake_bedrock_server
