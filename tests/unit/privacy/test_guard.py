"""The router's privacy step (PrivacyGuard) over the real engine and a loopback provider.

The provider is a real HTTP server speaking OpenAI's wire format that echoes the last user message,
as text (``echo-N``) or as a tool call's JSON arguments (``echo-tool-N``), streamed N characters a
chunk, and records every body it received, so the tests can search what left the router.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from switchboard.v1 import router_pb2
from switchboard_common.errors import Kind, ServiceError
from switchboard_router.byok import applies
from switchboard_router.catalog.config import parse_catalog
from switchboard_router.engine import Engine, StreamChunks, StreamFinished
from switchboard_router.operations import Operation
from switchboard_router.privacy import restore_text
from switchboard_router.privacy_guard import INSTANCE, PrivacyGuard, resolve_tier
from tests.fakes.server import BackgroundServer

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
TEXT = f'Write to {EMAIL} about card {CARD}; the token is {SECRET}. Quote "{EMAIL}" again.'
ORIGINALS = (EMAIL, CARD, SECRET)
TIERS = ("zero_retention", "managed_regional_cloud", "standard")


class EchoProvider:
    """Echoes the last user message; ``echo-tool-N`` echoes it as tool-call arguments; N = chunk size."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.credentials: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(raw)
        self.credentials.append(dict(scope["headers"]).get(b"authorization", b"").decode())
        body = json.loads(raw)
        if scope["path"].endswith("/embeddings"):
            data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2]} for i in range(len(body["input"]))]
            await _send_json(send, {"object": "list", "data": data, "model": body["model"],
                                    "usage": {"prompt_tokens": 1, "total_tokens": 1}})
            return
        model: str = body["model"]
        text = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        size = int(model.rsplit("-", 1)[1])
        tool = model.startswith("echo-tool")
        arguments = json.dumps({"note": text})
        if not body.get("stream"):
            message = ({"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "note", "arguments": arguments}}]}
                if tool else {"role": "assistant", "content": text})
            await _send_json(send, {"id": "x", "object": "chat.completion", "created": 0, "model": model,
                                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        source = arguments if tool else text
        deltas: list[dict[str, Any]] = []
        if tool:
            deltas.append({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                           "function": {"name": "note", "arguments": ""}}]})
        for i in range(0, len(source), size):
            piece = source[i:i + size]
            deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} if tool
                          else {"content": piece})
        frames = b""
        for delta in deltas:
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            frames += b"data: " + orjson.dumps(chunk) + b"\n\n"
        if not body.get("unfinished"):
            last = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            frames += b"data: " + orjson.dumps(last) + b"\n\n"
        await send({"type": "http.response.body", "body": frames + b"data: [DONE]\n\n"})


async def _send_json(send: Any, payload: dict[str, Any]) -> None:
    raw = orjson.dumps(payload)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
    await send({"type": "http.response.body", "body": raw})


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[EchoProvider, str]]:
    app = EchoProvider()
    server = BackgroundServer(app).start()
    yield app, server.url + "/v1"
    server.stop()


@pytest.fixture
async def guard(provider: tuple[EchoProvider, str]) -> AsyncIterator[PrivacyGuard]:
    app, base = provider
    app.bodies.clear()
    app.credentials.clear()
    models = [{"name": name, "deployments": [{"provider": "openai", "model": name, "api_base": base,
                                              "api_key": "sk-upstream", "privacy_tier": "zero_retention"}]}
              for name in ("echo-1", "echo-3", "echo-7", "echo-tool-1", "echo-tool-5", "echo-64")]
    engine = Engine(parse_catalog({"models": models}))
    yield PrivacyGuard(engine)
    await engine.aclose()


def constraints(policy: str, pinned: str = "", requested: str = "") -> router_pb2.RoutingConstraints:
    return router_pb2.RoutingConstraints(pii_policy=policy, privacy_tier=pinned, requested_privacy_tier=requested)


def chat(text: str = TEXT, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **extra}


def assert_no_original(bodies: list[bytes]) -> None:
    assert bodies
    for raw in bodies:
        decoded = raw.decode()
        for original in ORIGINALS:
            assert original not in decoded
            assert json.dumps(original)[1:-1] not in decoded


async def test_substitute_hides_values_from_the_provider_and_restores_the_whole_answer(
        guard: PrivacyGuard, provider: tuple[EchoProvider, str]) -> None:
    prepared = guard.prepare(chat(), constraints("substitute"))
    assert prepared.pii.counts == {"email": 1, "card": 1, "secret": 1}
    result = await guard.complete("echo-64", prepared)
    assert_no_original(provider[0].bodies)
    assert "[[EMAIL_1]]" in provider[0].bodies[0].decode()
    assert result.body["choices"][0]["message"]["content"] == TEXT


@pytest.mark.parametrize("model", ["echo-1", "echo-3", "echo-7"])
async def test_streamed_placeholders_split_across_chunks_are_restored_exactly_with_bounded_delay(
        guard: PrivacyGuard, provider: tuple[EchoProvider, str], model: str) -> None:
    prepared = guard.prepare(chat(stream=True), constraints("substitute"))
    longest = max(len(token) for token in prepared.vault)
    sent = prepared.body["messages"][0]["content"]  # what the provider echoes, placeholders included
    received = ""
    provider_prefix = ""
    step = int(model.rsplit("-", 1)[1])
    finished = False
    async for item in guard.stream(model, prepared, include_usage=False):
        if isinstance(item, StreamChunks):
            for raw in item.chunks:
                chunk = orjson.loads(raw)
                for choice in chunk["choices"]:
                    received += choice["delta"].get("content") or ""
                    if choice["finish_reason"] is None and choice["delta"].get("content") is not None:
                        provider_prefix = sent[:len(provider_prefix) + step]
                        # Everything but a suffix shorter than one placeholder has been released, restored.
                        held = [cut for cut in range(len(provider_prefix) - longest + 1, len(provider_prefix) + 1)
                                if cut >= 0 and restore_text(provider_prefix[:cut], prepared.vault) == received]
                        assert held, (provider_prefix, received)
        elif isinstance(item, StreamFinished):
            finished = True
    assert finished
    assert received == TEXT
    assert_no_original(provider[0].bodies)


async def test_stream_without_finish_reason_is_flushed_before_the_end(
        guard: PrivacyGuard, provider: tuple[EchoProvider, str]) -> None:
    text = f"mail {EMAIL} and a dangling [[EMA"  # the tail may start a placeholder: held until the end
    prepared = guard.prepare(chat(text, stream=True, unfinished=True), constraints("substitute"))
    received = ""
    kinds = []
    async for item in guard.stream("echo-3", prepared, include_usage=False):
        kinds.append(type(item).__name__)
        if isinstance(item, StreamChunks):
            for raw in item.chunks:
                received += "".join(c["delta"].get("content") or "" for c in orjson.loads(raw)["choices"])
    assert received == text
    assert kinds[-1] == "StreamFinished"


@pytest.mark.parametrize("model", ["echo-tool-1", "echo-tool-5"])
async def test_tool_call_arguments_are_restored_as_valid_json(
        guard: PrivacyGuard, provider: tuple[EchoProvider, str], model: str) -> None:
    tricky = f'{TEXT} with "quotes" and a back\\slash'
    unary = await guard.complete(model, guard.prepare(chat(tricky), constraints("substitute")))
    arguments = unary.body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(arguments) == {"note": tricky}
    streamed = ""
    prepared = guard.prepare(chat(tricky, stream=True), constraints("substitute"))
    async for item in guard.stream(model, prepared, include_usage=False):
        if isinstance(item, StreamChunks):
            for raw in item.chunks:
                for choice in orjson.loads(raw)["choices"]:
                    for call in choice["delta"].get("tool_calls") or []:
                        streamed += call["function"].get("arguments") or ""
    assert json.loads(streamed) == {"note": tricky}
    assert_no_original(provider[0].bodies)


async def test_values_in_tool_calls_and_tool_results_never_reach_the_provider(
        guard: PrivacyGuard, provider: tuple[EchoProvider, str]) -> None:
    body = {"messages": [
        {"role": "user", "content": "look up the customer"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "lookup", "arguments": json.dumps({"email": EMAIL, "token": SECRET})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": json.dumps({"card": CARD, "owner": EMAIL})},
        {"role": "user", "content": f"Summarise; reply to {EMAIL}"},
    ]}
    prepared = guard.prepare(body, constraints("substitute"))
    result = await guard.complete("echo-64", prepared)
    sent = json.loads(provider[0].bodies[-1])
    json.loads(sent["messages"][1]["tool_calls"][0]["function"]["arguments"])  # still valid JSON
    json.loads(sent["messages"][2]["content"])
    assert_no_original(provider[0].bodies)
    assert result.body["choices"][0]["message"]["content"] == f"Summarise; reply to {EMAIL}"


async def test_mask_replaces_for_good(guard: PrivacyGuard, provider: tuple[EchoProvider, str]) -> None:
    result = await guard.complete("echo-64", guard.prepare(chat(), constraints("mask")))
    assert_no_original(provider[0].bodies)
    content = result.body["choices"][0]["message"]["content"]
    assert "[[EMAIL]]" in content and "[[CARD]]" in content and EMAIL not in content


async def test_block_refuses_before_any_provider_call_naming_kinds_not_values(
        guard: PrivacyGuard, provider: tuple[EchoProvider, str]) -> None:
    with pytest.raises(ServiceError) as caught:
        guard.prepare(chat(), constraints("block"))
    assert caught.value.kind == Kind.ERROR_KIND_POLICY and caught.value.error.http_status == 400
    assert caught.value.error.code == "pii_blocked"
    message = caught.value.message
    assert "1 email" in message and "1 card" in message and "1 secret" in message
    assert not any(original in message for original in ORIGINALS)
    assert provider[0].bodies == []
    clean = guard.prepare(chat("nothing personal here"), constraints("block"))
    assert (await guard.complete("echo-64", clean)).body["choices"][0]["message"]["content"] == "nothing personal here"


async def test_off_sends_the_body_unchanged(guard: PrivacyGuard, provider: tuple[EchoProvider, str]) -> None:
    prepared = guard.prepare(chat(), constraints(""))
    assert prepared.pii.counts == {} and prepared.vault == {}
    await guard.complete("echo-64", prepared)
    assert EMAIL in provider[0].bodies[0].decode()


async def test_embeddings_inputs_are_substituted(guard: PrivacyGuard, provider: tuple[EchoProvider, str]) -> None:
    body = {"input": [f"contact {EMAIL}", [1, 2, 3], "plain"]}
    prepared = guard.prepare(body, constraints("substitute"), Operation.EMBED)
    assert prepared.pii.counts == {"email": 1} and prepared.vault == {}
    assert prepared.body["input"][1] == [1, 2, 3] and prepared.body["input"][2] == "plain"
    await guard.complete("echo-64", prepared, Operation.EMBED)
    assert EMAIL not in provider[0].bodies[0].decode()
    with pytest.raises(ServiceError):
        guard.prepare({"input": f"contact {EMAIL}"}, constraints("block"), Operation.EMBED)


def test_unknown_policy_is_a_clear_client_error(guard: PrivacyGuard) -> None:
    with pytest.raises(ServiceError) as caught:
        guard.prepare(chat(), constraints("scramble"))
    assert caught.value.kind == Kind.ERROR_KIND_INVALID_REQUEST and "substitute" in caught.value.message


def test_route_info_carries_counts_instance_and_required_tier(guard: PrivacyGuard) -> None:
    prepared = guard.prepare(chat(), constraints("substitute", pinned="standard", requested="zero_retention"))
    route = prepared.annotate(router_pb2.RouteInfo(deployment_id="d"))
    assert dict(route.pii_counts) == {"email": 1, "card": 1, "secret": 1}
    assert route.router_instance == INSTANCE and route.required_privacy_tier == "zero_retention"


def test_resolve_tier_tightens_never_loosens() -> None:
    assert resolve_tier("", "", TIERS) == ""
    assert resolve_tier("standard", "", TIERS) == "standard"
    assert resolve_tier("", "managed_regional_cloud", TIERS) == "managed_regional_cloud"
    assert resolve_tier("standard", "zero_retention", TIERS) == "zero_retention"
    assert resolve_tier("managed_regional_cloud", "managed_regional_cloud", TIERS) == "managed_regional_cloud"
    with pytest.raises(ServiceError) as looser:
        resolve_tier("zero_retention", "standard", TIERS)
    assert looser.value.error.code == "privacy_tier_looser_than_key"
    assert "'zero_retention'" in looser.value.message and "'standard'" in looser.value.message
    with pytest.raises(ServiceError) as unknown:
        resolve_tier("", "secret_cloud", TIERS)
    assert unknown.value.error.code == "unknown_privacy_tier"
    assert "zero_retention, managed_regional_cloud, standard" in unknown.value.message


async def test_own_credential_replaces_the_operators_and_marks_the_route_byok(
        guard: PrivacyGuard, provider: tuple[EchoProvider, str]) -> None:
    own = "sk-own-" + "x" * 20
    prepared = guard.prepare(chat("hi"), constraints(""), credentials={"openai": own, "anthropic": "sk-ant-other"})
    result = await guard.complete("echo-64", prepared)
    route = prepared.annotate(router_pb2.RouteInfo(provider=result.route.deployment.provider))
    assert route.byok
    streamed = guard.prepare(chat("hi", stream=True), constraints(""), credentials={"openai": own})
    async for _ in guard.stream("echo-3", streamed, include_usage=False):
        pass
    operator = guard.prepare(chat("hi"), constraints(""))
    await guard.complete("echo-64", operator)
    assert provider[0].credentials == [f"Bearer {own}", f"Bearer {own}", "Bearer sk-upstream"]
    assert not operator.annotate(router_pb2.RouteInfo(provider="openai")).byok
    assert own not in repr(prepared.annotate(router_pb2.RouteInfo(provider="openai")))


def test_byok_does_not_apply_to_bedrock_or_other_providers() -> None:
    assert applies("openai", {"openai": "k"})
    assert not applies("anthropic", {"openai": "k"})
    assert not applies("openai", {"openai": ""})
    assert not applies("bedrock", {"bedrock": "k"})
