"""Generated requests against the real gateway: whatever the shape or range of a field, the answer is never a 5xx
and never carries an exception's text; a refusal is error JSON in the route's dialect.

Each request schema the gateway reads (chat completions, messages, responses, embeddings, the key and team admin
bodies, the usage filters) is generated field by field from two strategies: values of the right shape near and
past their ranges, and arbitrary JSON. The example counts keep the whole module well under a minute (the
examples are derandomized, so a run is repeatable); raise ``SWITCHBOARD_PROPERTY_EXAMPLES`` to search longer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import fake_models
from tests.e2e.keys_helpers import generate
from tests.e2e.test_input_ranges import INTERNAL_WORDS
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway

EXAMPLES = int(os.environ.get("SWITCHBOARD_PROPERTY_EXAMPLES", "40"))
#: ``SWITCHBOARD_PROPERTY_RANDOM=1``: new examples each run (to search), rather than the repeatable set.
RANDOM = os.environ.get("SWITCHBOARD_PROPERTY_RANDOM") == "1"
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])

INT64 = 2**63
#: Integers around every edge the gateway has: zero, 2^31, 2^53, 2^63, 2^64.
edge_ints = st.one_of(
    st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**53, INT64 - 1, INT64, 2**64, -INT64, 10**30]),
    st.integers(min_value=-(2**70), max_value=2**70))
#: Sensible counts (token bounds, limits); the edges come as the odd value of a field.
counts = st.integers(min_value=1, max_value=4096)
odd_text = st.one_of(st.text(max_size=12), st.sampled_from(["", "\x00", "a\x00b", "=HYPERLINK(1)", "9999999y",
                                                            "1e400", "-1", "NaN", " " * 3, "\u202e", "😀" * 3]))
scalars = st.one_of(st.none(), st.booleans(), edge_ints, st.floats(allow_nan=False, allow_infinity=False),
                    odd_text)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(odd_text, inner, max_size=3)),
                           max_leaves=8)


def body_of(required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]],
            odd: dict[str, st.SearchStrategy[Any]] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies of one schema: well formed (``required`` and some of ``optional``), well formed but for one field
    set to something odd (``odd``'s strategy for it, else arbitrary JSON), or arbitrary values in every field."""
    good = st.fixed_dictionaries(required, optional=optional)
    names = sorted({*required, *optional})
    odd = odd or {}

    def one_odd(body: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.sampled_from(names).flatmap(
            lambda name: st.one_of(odd.get(name, json_values), json_values).map(lambda value: {**body, name: value}))

    anything = st.fixed_dictionaries({k: json_values for k in required},
                                     optional={k: json_values for k in optional})
    return st.one_of(good, good.flatmap(one_odd), good.flatmap(one_odd), anything)


models = st.sampled_from(["fake-good", "fake-echo", "fake-tool"])
odd_models = st.one_of(st.sampled_from(["no-such-model", "", "fake-good\x00", "fake-error"]), odd_text)
user_text = st.text(min_size=1, max_size=20)
#: Content parts of OpenAI chat, sometimes of a kind a provider cannot take.
text_parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": user_text}),
    st.fixed_dictionaries({"type": st.sampled_from(["image_url", "input_text", "file", "input_audio", "x"])},
                          optional={"text": odd_text, "image_url": json_values, "file": json_values}))
chat_contents = st.one_of(user_text, st.lists(text_parts, min_size=1, max_size=2))
tool_function = st.fixed_dictionaries({"name": st.from_regex(r"[a-z_]{1,12}", fullmatch=True)},
                                      optional={"description": odd_text, "parameters": json_values})
tools = st.lists(st.one_of(st.fixed_dictionaries({"type": st.just("function"), "function": tool_function}),
                           st.fixed_dictionaries({"type": st.sampled_from(["custom", "web_search", "x"])},
                                                 optional={"custom": json_values, "name": odd_text})),
                 min_size=1, max_size=2)
chat_messages = st.lists(st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "developer"]), "content": chat_contents}),
    st.fixed_dictionaries({"role": st.just("assistant")}, optional={
        "content": st.one_of(st.none(), user_text), "tool_calls": st.lists(st.fixed_dictionaries(
            {"id": odd_text, "type": st.just("function"), "function": st.fixed_dictionaries(
                {"name": odd_text, "arguments": st.one_of(odd_text, json_values)})}), max_size=2)}),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": odd_text, "content": chat_contents}),
), min_size=1, max_size=4)
CHAT = body_of({"model": models, "messages": chat_messages}, {
    "max_tokens": counts, "max_completion_tokens": counts, "stream": st.booleans(), "n": st.integers(1, 3),
    "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "tools": tools,
    "tool_choice": st.sampled_from(["auto", "none", "required"]), "user": odd_text,
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "response_format": st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object"])}),
    "reasoning_effort": st.sampled_from(["low", "medium", "high"]), "stop": st.lists(user_text, max_size=2),
    "metadata": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)},
    odd={"model": odd_models, "max_tokens": edge_ints, "max_completion_tokens": edge_ints, "n": edge_ints,
         "temperature": edge_ints, "stream": json_values})

blocks = st.lists(st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": user_text}),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": odd_text, "name": odd_text, "input": json_values}),
    st.fixed_dictionaries({"type": st.just("tool_result"), "tool_use_id": odd_text},
                          optional={"content": st.one_of(odd_text, json_values, st.lists(st.fixed_dictionaries(
                              {"type": st.sampled_from(["text", "image", "x"])},
                              optional={"text": odd_text, "source": json_values}), max_size=2)),
                              "is_error": st.booleans()}),
    st.fixed_dictionaries({"type": st.sampled_from(["image", "document", "thinking", "redacted_thinking", "x"])},
                          optional={"source": json_values, "thinking": odd_text, "signature": odd_text,
                                    "data": odd_text}),
), min_size=1, max_size=3)
anthropic_messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]),
                                                     "content": st.one_of(user_text, blocks)}), min_size=1, max_size=3)
MESSAGES = body_of({"model": models, "max_tokens": counts, "messages": anthropic_messages}, {
    "system": st.one_of(user_text, blocks), "stream": st.booleans(), "temperature": st.floats(0, 1),
    "top_k": counts, "top_p": st.floats(0, 1), "stop_sequences": st.lists(user_text, max_size=2),
    "thinking": st.fixed_dictionaries({"type": st.sampled_from(["enabled", "disabled"])},
                                      optional={"budget_tokens": counts}),
    "metadata": st.fixed_dictionaries({}, optional={"user_id": odd_text}),
    "tools": st.lists(st.fixed_dictionaries({"name": st.from_regex(r"[a-z_]{1,12}", fullmatch=True)}, optional={
        "description": odd_text, "input_schema": json_values, "type": st.sampled_from(["custom", "bash_20250124"]),
        "cache_control": json_values}), min_size=1, max_size=2),
    "tool_choice": st.fixed_dictionaries({"type": st.sampled_from(["auto", "any", "tool", "none"])},
                                         optional={"name": odd_text, "disable_parallel_tool_use": st.booleans()}),
    "output_format": st.fixed_dictionaries({"type": st.sampled_from(["json_schema", "text"])},
                                           optional={"schema": json_values}),
    "output_config": st.fixed_dictionaries({}, optional={"format": json_values, "effort": odd_text})},
    odd={"model": odd_models, "max_tokens": edge_ints, "top_k": edge_ints, "thinking": st.fixed_dictionaries(
        {"type": st.just("enabled"), "budget_tokens": json_values}), "container": json_values,
         "mcp_servers": json_values})

response_items = st.lists(st.one_of(
    st.fixed_dictionaries({"type": st.just("message"), "role": st.sampled_from(["user", "assistant", "system",
                                                                               "developer"]),
                           "content": st.one_of(user_text, st.lists(st.fixed_dictionaries({
                               "type": st.sampled_from(["input_text", "output_text", "input_image", "x"])},
                               optional={"text": odd_text, "image_url": odd_text}), min_size=1, max_size=2))}),
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": user_text}),
    st.fixed_dictionaries({"type": st.just("function_call"), "call_id": odd_text, "name": odd_text,
                           "arguments": st.one_of(odd_text, json_values)}),
    st.fixed_dictionaries({"type": st.just("function_call_output"), "call_id": odd_text,
                           "output": st.one_of(odd_text, json_values)}),
    st.fixed_dictionaries({"type": st.sampled_from(["reasoning", "item_reference", "x"])},
                          optional={"summary": json_values, "id": odd_text, "encrypted_content": odd_text}),
), min_size=1, max_size=3)
RESPONSES = body_of({"model": models, "input": st.one_of(user_text, response_items)}, {
    "instructions": odd_text, "max_output_tokens": counts, "stream": st.booleans(),
    "tools": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["function", "web_search", "custom"])},
                                            optional={"name": odd_text, "parameters": json_values}), max_size=2),
    "tool_choice": st.sampled_from(["auto", "none", "required"]),
    "reasoning": st.fixed_dictionaries({}, optional={"effort": st.sampled_from(["low", "medium", "high"]),
                                                     "summary": odd_text}),
    "text": st.fixed_dictionaries({}, optional={"format": json_values}), "store": st.booleans(),
    "temperature": st.floats(0, 2)},
    odd={"model": odd_models, "max_output_tokens": edge_ints, "previous_response_id": odd_text})

EMBEDDINGS = body_of({"model": st.just("fake-embed"), "input": st.one_of(user_text, st.lists(user_text, min_size=1,
                                                                                             max_size=3))},
                     {"encoding_format": st.sampled_from(["float", "base64"]), "user": odd_text},
                     odd={"model": odd_models, "input": st.one_of(st.lists(edge_ints, max_size=3), json_values)})

LIMITS = {"rpm_limit": counts, "tpm_limit": counts, "max_parallel_requests": counts,
          "max_budget": st.one_of(counts, st.decimals(0, 10**6, places=2).map(str)),
          "budget_duration": st.sampled_from(["1d", "7d", "30d", "1mo", "12h"]), "max_daily_spend": counts}
ODD_LIMITS = {"rpm_limit": edge_ints, "tpm_limit": edge_ints, "max_parallel_requests": edge_ints,
              "max_budget": st.one_of(edge_ints, st.floats(), odd_text), "budget_duration": odd_text,
              "max_daily_spend": st.one_of(edge_ints, odd_text)}
KEY = body_of({}, {"key_alias": user_text, "models": st.lists(st.sampled_from(["fake-good", "fake-*"]), max_size=2),
                   "duration": st.sampled_from(["30s", "1d", "2w", "1mo", "1y"]),
                   "expires": st.sampled_from(["2099-01-01T00:00:00Z", "2030-06-01"]),
                   "privacy_tier": st.sampled_from(["standard", "zero_retention"]),
                   "pii_policy": st.sampled_from(["off", "mask", "substitute", "block"]),
                   "metadata": st.dictionaries(st.text(max_size=5), json_values, max_size=2), **LIMITS},
              odd={"key_alias": odd_text, "duration": odd_text, "expires": odd_text, "models": json_values,
                   "team_id": odd_text, "provider_credentials": json_values, **ODD_LIMITS})
TEAM = body_of({"team_id": st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)}, {
    "team_alias": user_text, "models": st.lists(st.sampled_from(["fake-good", "fake-*"]), max_size=2),
    "blocked": st.booleans(), "metadata": st.dictionaries(st.text(max_size=5), json_values, max_size=2), **LIMITS},
    odd={"team_id": odd_text, "team_alias": odd_text, **ODD_LIMITS})
QUERY = st.dictionaries(st.sampled_from(["key_id", "team_id", "model", "from", "to", "group_by", "format", "limit",
                                         "cursor", "key", "start_date"]),
                        st.one_of(odd_text, st.sampled_from(["day", "model", "csv", "2026-01-01", "10"])), max_size=4)


@pytest.fixture(scope="module")
def prop_gateway(tmp_path_factory: pytest.TempPathFactory,
                 fake_openai: tuple[FakeOpenAI, str]) -> Iterator[tuple[Gateway, str, httpx.Client]]:
    # A gateway of its own (the admin bodies create keys and teams); generous service deadlines on a busy machine.
    gw = start_gateway(tmp_path_factory.mktemp("properties"), fake_models(fake_openai[1]),
                       extra_env={"SWITCHBOARD_SERVICE_TIMEOUT_SECONDS": "30"})
    key = str(generate(gw, key_alias="properties", max_budget=100)["key"])
    with httpx.Client(base_url=gw.base_url, timeout=30) as client:
        yield gw, key, client
    gw.stop()


def check(response: httpx.Response, body: object, anthropic: bool = False) -> None:
    text = response.text
    where = f"{response.request.method} {response.request.url} {json.dumps(body, default=str)[:500]!r}"
    assert response.status_code < 500, f"{where} -> {response.status_code} {text[:500]}"
    for word in INTERNAL_WORDS:
        assert word not in text, f"{where} -> {text[:500]}"
    if response.status_code >= 400:
        error = response.json()
        if anthropic:
            assert error["type"] == "error" and error["error"]["message"], f"{where} -> {text[:300]}"
        else:
            assert error["error"]["message"] and error["error"]["type"], f"{where} -> {text[:300]}"
        assert response.headers["x-request-id"].startswith("req_"), where


def post(client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    # orjson refuses integers past 64 bits: such bodies are written by the standard library.
    try:
        content = orjson.dumps(body)
    except orjson.JSONEncodeError:
        content = json.dumps(body).encode()
    return client.post(path, content=content, headers={"content-type": "application/json", **headers})


@PROPERTY
@given(body=CHAT, path=st.sampled_from(["/v1/chat/completions", "/cursor/chat/completions",
                                        "/openai/deployments/fake-good/chat/completions"]))
def test_chat_completions(prop_gateway: tuple[Gateway, str, httpx.Client], body: dict[str, Any], path: str) -> None:
    _, key, client = prop_gateway
    check(post(client, path, body, {"authorization": f"Bearer {key}"}), body)


@PROPERTY
@given(body=MESSAGES, path=st.sampled_from(["/v1/messages", "/v1/messages/count_tokens"]))
def test_anthropic_messages(prop_gateway: tuple[Gateway, str, httpx.Client], body: dict[str, Any], path: str) -> None:
    _, key, client = prop_gateway
    check(post(client, path, body, {"x-api-key": key}), body, anthropic=True)


@PROPERTY
@given(body=RESPONSES)
def test_responses(prop_gateway: tuple[Gateway, str, httpx.Client], body: dict[str, Any]) -> None:
    _, key, client = prop_gateway
    check(post(client, "/v1/responses", body, {"authorization": f"Bearer {key}"}), body)


@PROPERTY
@given(body=EMBEDDINGS)
def test_embeddings(prop_gateway: tuple[Gateway, str, httpx.Client], body: dict[str, Any]) -> None:
    _, key, client = prop_gateway
    check(post(client, "/v1/embeddings", body, {"authorization": f"Bearer {key}"}), body)


@PROPERTY
@given(body=KEY, update=st.booleans())
def test_key_admin_bodies(prop_gateway: tuple[Gateway, str, httpx.Client], body: dict[str, Any],
                          update: bool) -> None:
    gw, _, client = prop_gateway
    path = "/key/update" if update else "/key/generate"
    if update:
        body = {"key": "key_0000000000000000", **body}
    check(post(client, path, body, gw.admin()), body)


@PROPERTY
@given(body=TEAM, update=st.booleans())
def test_team_admin_bodies(prop_gateway: tuple[Gateway, str, httpx.Client], body: dict[str, Any],
                           update: bool) -> None:
    gw, _, client = prop_gateway
    check(post(client, "/team/update" if update else "/team/new", body, gw.admin()), body)


@PROPERTY
@given(query=QUERY, path=st.sampled_from(["/usage", "/spend/logs", "/key/list", "/key/info", "/team/info"]),
       admin=st.booleans())
def test_usage_and_listing_filters(prop_gateway: tuple[Gateway, str, httpx.Client], query: dict[str, str],
                                   path: str, admin: bool) -> None:
    gw, key, client = prop_gateway
    headers = gw.admin() if admin else {"authorization": f"Bearer {key}"}
    check(client.get(path, params=query, headers=headers), query)
