"""The capability matrix: every provider, every capability, through the real gateway with the ``openai`` SDK.

One fake server per wire format (OpenAI — also serving Azure's URL shape and a
Mistral flavour —, Anthropic, Gemini, Bedrock, and Vertex AI with its OAuth2 token
endpoint, serving Gemini and Claude) and one gateway whose catalog has
a public model ``<provider>-<behaviour>`` for each provider × behaviour. Each test
is parametrised over the providers, so a capability one provider lacks shows up
as one failing cell.

The leaky behaviours (:mod:`tests.fakes.leak`) quote every header and the query
string the gateway sent in their error answers: none of the credentials may reach
the client, the ledger or a log line.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import FAKE_PRICES
from tests.fakes.anthropic_provider import FakeAnthropic
from tests.fakes.bedrock_provider import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    TEST_SESSION_TOKEN,
    THOUGHT,
    FakeBedrock,
    thought_signature,
)
from tests.fakes.gemini_provider import TEST_API_KEY as GEMINI_KEY
from tests.fakes.gemini_provider import FakeGemini
from tests.fakes.leak import LEAK_STATUSES
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import BackgroundServer
from tests.fakes.vertex_provider import PROJECT as VERTEX_PROJECT
from tests.fakes.vertex_provider import FakeVertex
from tests.harness import Gateway, start_gateway

PROVIDERS = ["openai", "azure", "mistral", "anthropic", "gemini", "bedrock", "vertex", "vertex-claude"]
#: The adapter behind a column, where the column is not named after it.
ADAPTERS = {"vertex-claude": "vertex"}

#: The operator's credential of each provider (Bedrock signs with an AWS key pair and session token instead).
#: Deliberately not shaped like any vendor's key, so only the gateway's knowledge of them can hide them.
KEYS = {"openai": "operator-openai-credential-7f3a", "azure": "operator-azure-credential-51d2",
        "mistral": "operator-mistral-credential-90be", "anthropic": "operator-anthropic-credential-0d9e",
        "gemini": GEMINI_KEY}
AWS_SECRETS = (TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, TEST_SESSION_TOKEN)
LEAKS = [f"leak-{status}" for status in LEAK_STATUSES] + [f"leak-text-{status}" for status in LEAK_STATUSES]

#: The upstream model id (Azure: deployment name) that makes each fake behave as named.
_OPENAI_SHAPED = {"good": "good", "tool": "tool", "error": "error", "filter": "filter", "ratelimit": "ratelimit",
                  "cache": "cache"}
BEHAVIOURS: dict[str, dict[str, str]] = {
    "openai": _OPENAI_SHAPED,
    "azure": _OPENAI_SHAPED,
    "mistral": _OPENAI_SHAPED,
    "anthropic": {**_OPENAI_SHAPED, "filter": "refusal"},
    "gemini": {"good": "gemini-good", "tool": "gemini-tool", "error": "gemini-error", "filter": "gemini-safety",
               "ratelimit": "gemini-ratelimit", "cache": "gemini-good"},
    "bedrock": {"good": "good-model", "tool": "tool-model", "error": "error-model", "filter": "safety-model",
                "ratelimit": "throttle-model", "cache": "good-model"},
    "vertex": {"good": "gemini-good", "tool": "gemini-tool", "error": "gemini-error", "filter": "gemini-safety",
               "ratelimit": "gemini-ratelimit", "cache": "gemini-good"},
    "vertex-claude": {behaviour: f"claude-{upstream}@20250929" for behaviour, upstream in
                      {**_OPENAI_SHAPED, "filter": "refusal"}.items()},
}

#: The message each fake puts in its 400 for the ``error`` behaviour; the client must see it.
ERROR_MESSAGES = {
    "openai": "The fake provider rejects this request.",
    "azure": "The fake provider rejects this request.",
    "mistral": "The fake provider rejects this request.",
    "anthropic": "messages.0.content: the fake was asked to fail",
    "gemini": "Request contains an invalid argument.",
    "bedrock": "The provided model identifier is invalid.",
    "vertex": "Request contains an invalid argument.",
    "vertex-claude": "messages.0.content: the fake was asked to fail",
}

#: The Retry-After each fake gives with its 429 (Bedrock gives none); the client must see it.
RETRY_AFTER = {"openai": "1", "azure": "1", "mistral": "1", "anthropic": "7", "gemini": "7", "bedrock": None,
               "vertex": "7", "vertex-claude": "7"}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@dataclass
class Fakes:
    openai: FakeOpenAI
    openai_url: str
    anthropic: FakeAnthropic
    gemini: FakeGemini
    bedrock: FakeBedrock
    vertex: FakeVertex
    #: The Vertex AI service-account key file the gateway signs its token requests with.
    vertex_key_file: str

    def calls(self, provider: str) -> int:
        """How many requests the provider's fake has received (Vertex AI's token grants not counted)."""
        if provider in ("openai", "azure", "mistral"):
            return len(self.openai.requests)
        fake = {"anthropic": self.anthropic, "gemini": self.gemini, "bedrock": self.bedrock}.get(provider, self.vertex)
        return len(fake.requests)

    def last_body(self, provider: str) -> dict[str, Any]:
        """The body of the last request the provider's fake received, as the provider saw it."""
        if provider in ("openai", "azure", "mistral"):
            return self.openai.requests[-1].body
        if provider == "anthropic":
            body = self.anthropic.requests[-1].body
            assert isinstance(body, dict)
            return body
        fake = {"gemini": self.gemini, "bedrock": self.bedrock}.get(provider, self.vertex)
        data = fake.requests[-1].json()
        assert isinstance(data, dict)
        return data


def deployment(fakes: Fakes, provider: str, upstream: str) -> dict[str, Any]:
    """The public deployment entry for ``provider`` (priced: the fakes' model names are in no price list)."""
    return {**_deployment(fakes, provider, upstream), **FAKE_PRICES}


def _deployment(fakes: Fakes, provider: str, upstream: str) -> dict[str, Any]:
    """The catalog entry for one deployment of ``provider`` pointed at its fake."""
    if provider == "openai":
        return {"provider": "openai", "model": upstream, "api_base": fakes.openai_url + "/v1",
                "api_key": KEYS[provider]}
    if provider == "azure":
        return {"provider": "azure", "model": upstream, "api_base": fakes.openai_url,
                "api_key": fakes.openai.azure_api_key, "api_version": "2024-10-21"}
    if provider == "mistral":
        return {"provider": "mistral", "model": upstream, "api_base": fakes.openai_url + "/v1",
                "api_key": KEYS[provider]}
    if provider == "anthropic":
        return {"provider": "anthropic", "model": upstream, "api_base": fakes.anthropic.url, "api_key": KEYS[provider]}
    if provider == "gemini":
        return {"provider": "gemini", "model": upstream, "api_base": fakes.gemini.base_url, "api_key": KEYS[provider]}
    if provider.startswith("vertex"):
        return {"provider": "vertex", "model": upstream, "api_base": fakes.vertex.base_url,
                "vertex_project": VERTEX_PROJECT, "vertex_location": "europe-west4",
                "vertex_credentials": fakes.vertex_key_file, "jurisdiction": "eu"}
    dep = fakes.bedrock.deployment(upstream, session_token=upstream.startswith("leak"))
    return {"provider": "bedrock", "model": upstream, "api_base": dep.api_base, **dep.extra}


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakes]:
    fake_openai = FakeOpenAI(azure_api_key=KEYS["azure"])
    server = BackgroundServer(fake_openai).start()
    anthropic = FakeAnthropic().start()
    gemini = FakeGemini()
    gemini.start()
    bedrock = FakeBedrock()
    bedrock.start()
    vertex = FakeVertex()
    vertex.start()
    key_file = tmp_path_factory.mktemp("vertex") / "service-account.json"
    key_file.write_text(json.dumps(vertex.service_account))
    yield Fakes(fake_openai, server.url, anthropic, gemini, bedrock, vertex, str(key_file))
    for stop in (server.stop, anthropic.stop, gemini.stop, bedrock.stop, vertex.stop):
        stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, fakes: Fakes) -> Iterator[Gateway]:
    models: list[dict[str, object]] = [
        {"name": f"{provider}-{behaviour}", "deployments": [deployment(fakes, provider, upstream)]}
        for provider, behaviours in BEHAVIOURS.items()
        for behaviour, upstream in behaviours.items()
    ]
    models += [{"name": f"{provider}-{leak}", "deployments": [deployment(fakes, provider, leak)]}
               for provider in PROVIDERS for leak in [*LEAKS, "leak-stream"]]
    # A Gemini deployment whose output limit bounds what the gateway holds and sends when a client names none.
    models += [{"name": f"{provider}-bounded", "deployments": [{**deployment(fakes, provider, "gemini-2.5-flash-good"),
                                                                "max_output_tokens": 2000}]}
               for provider in ("gemini", "vertex")]
    # Claude on Bedrock, which thinks when asked (the other Bedrock models are not Claude).
    models += [{"name": f"bedrock-claude-{behaviour}",
                "deployments": [deployment(fakes, "bedrock", f"us.anthropic.claude-sonnet-4-{behaviour}-v1:0")]}
               for behaviour in ("good", "tool", "redacted")]
    # Gemini 2.5 models, whose thinking budgets have ranges of their own.
    models += [{"name": f"{provider}-{name}", "deployments": [deployment(fakes, provider, upstream)]}
               for provider in ("gemini", "vertex") for name, upstream in (("pro", "gemini-2.5-pro"),
                                                                           ("lite", "gemini-2.5-flash-lite"))]
    wrong_key = {**deployment(fakes, "azure", "good"), "api_key": "not-the-azure-key"}
    models.append({"name": "azure-wrong-key", "deployments": [wrong_key]})
    tmp: Path = tmp_path_factory.mktemp("matrix")
    gw = start_gateway(tmp, models, router_settings={"max_attempts": 1, "cooldown_failures": 0})
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def sdk(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(api_key=gateway.create_key(key_alias="matrix"), base_url=gateway.base_url + "/v1",
                         max_retries=0, timeout=20)



def stream_chunks(sdk: openai.OpenAI, **kwargs: Any) -> tuple[list[Any], str]:
    raw = sdk.chat.completions.with_raw_response.create(stream=True, stream_options={"include_usage": True},
                                                        **kwargs)
    return list(raw.parse()), raw.headers["x-request-id"]


def streamed_tool_calls(chunks: list[Any]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                if call.id:
                    assert slot["id"] in ("", call.id), "a tool call's id must not change mid-stream"
                    slot["id"] = call.id
                if call.function is not None:
                    if call.function.name and not slot["name"]:
                        slot["name"] = call.function.name
                    slot["arguments"] += call.function.arguments or ""
    return calls


def finish_reasons(chunks: list[Any]) -> list[str]:
    return [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason]


def text_of(chunks: list[Any]) -> str:
    return "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)


def system_prompt_seen(provider: str, body: dict[str, Any]) -> str:
    """The system prompt as the provider received it, in its own field."""
    if provider in ("openai", "azure", "mistral"):
        return str(next(m["content"] for m in body["messages"] if m["role"] == "system"))
    if provider in ("anthropic", "vertex-claude"):
        system = body["system"]
        return system if isinstance(system, str) else " ".join(block["text"] for block in system)
    if provider in ("gemini", "vertex"):
        return " ".join(part["text"] for part in body["systemInstruction"]["parts"])
    return " ".join(block["text"] for block in body["system"])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unary_text_with_system_prompt_and_usage_in_the_ledger(
        provider: str, sdk: openai.OpenAI, gateway: Gateway, fakes: Fakes) -> None:
    raw = sdk.chat.completions.with_raw_response.create(
        model=f"{provider}-good",
        messages=[{"role": "system", "content": "Answer like a pirate."}, {"role": "user", "content": "Hi there"}])
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert raw.headers["x-switchboard-deployment"] == f"{provider}-good/0"
    assert system_prompt_seen(provider, fakes.last_body(provider)) == "Answer like a pirate."
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    row = gateway.ledger_row(raw.headers["x-request-id"])
    assert row["status"] == "success" and row["custom_llm_provider"] == ADAPTERS.get(provider, provider)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert row["usage_reported_by_provider"] is True


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streamed_text_matches_the_unary_answer_and_reports_usage(
        provider: str, sdk: openai.OpenAI, gateway: Gateway) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello stream"}]
    whole = sdk.chat.completions.create(model=f"{provider}-good", messages=messages)  # type: ignore[arg-type]
    chunks, request_id = stream_chunks(sdk, model=f"{provider}-good", messages=messages)
    assert text_of(chunks) == whole.choices[0].message.content
    assert finish_reasons(chunks) == ["stop"]
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None, "include_usage asks for a last chunk with usage only"
    assert all(chunk.usage is None for chunk in chunks[:-1])
    row = gateway.ledger_row(request_id)
    assert row["status"] == "success" and row["stream"] is True
    assert (row["prompt_tokens"], row["completion_tokens"]) == (final.usage.prompt_tokens,
                                                                final.usage.completion_tokens)
    assert row["completion_tokens"] > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_call_then_tool_result_round_trip(provider: str, sdk: openai.OpenAI, fakes: Fakes) -> None:
    question = {"role": "user", "content": "What is the weather in Paris?"}
    first = sdk.chat.completions.create(model=f"{provider}-tool", messages=[question],  # type: ignore[list-item]
                                        tools=[WEATHER_TOOL])  # type: ignore[list-item]
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].id and calls[0].function.name == "get_weather"
    assert isinstance(json.loads(calls[0].function.arguments), dict)
    assert set(json.loads(calls[0].function.arguments)) == {"city"}

    second = sdk.chat.completions.create(
        model=f"{provider}-tool", tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[question, choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
                  {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny, 24 C"}])
    assert second.choices[0].finish_reason == "stop"
    assert "sunny, 24 C" in (second.choices[0].message.content or "")
    sent = json.dumps(fakes.last_body(provider))
    assert "sunny, 24 C" in sent
    if provider not in ("gemini", "vertex"):  # Gemini pairs calls and results by name; the others by id.
        assert calls[0].id in sent


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streamed_tool_call_keeps_id_name_and_arguments(provider: str, sdk: openai.OpenAI) -> None:
    chunks, _ = stream_chunks(sdk, model=f"{provider}-tool", tools=[WEATHER_TOOL],
                              messages=[{"role": "user", "content": "Weather in Paris?"}])
    calls = streamed_tool_calls(chunks)
    assert list(calls) == [0]
    assert calls[0]["id"] and calls[0]["name"] == "get_weather"
    assert set(json.loads(calls[0]["arguments"])) == {"city"}
    assert finish_reasons(chunks) == ["tool_calls"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_error_is_passed_on_with_status_and_message(
        provider: str, sdk: openai.OpenAI, gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(model=f"{provider}-error", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 400
    assert ERROR_MESSAGES[provider] in info.value.message
    body = info.value.body
    assert isinstance(body, dict) and body.get("upstream") is True
    assert body.get("provider") == ADAPTERS.get(provider, provider)
    row = gateway.ledger_row(info.value.response.headers["x-request-id"])
    assert row["status"] == "error" and row["http_status"] == 400 and row["completion_tokens"] == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cached_prompt_tokens_reach_the_client_and_the_ledger(provider: str, sdk: openai.OpenAI,
                                                              gateway: Gateway) -> None:
    messages = [{"role": "user", "content": "A long shared prefix, then a question."}]
    raw = sdk.chat.completions.with_raw_response.create(model=f"{provider}-cache", messages=messages)  # type: ignore
    usage = raw.parse().usage
    assert usage is not None and usage.prompt_tokens_details is not None
    cached = usage.prompt_tokens_details.cached_tokens
    assert cached and 0 < cached <= usage.prompt_tokens
    assert gateway.ledger_row(raw.headers["x-request-id"])["cached_prompt_tokens"] == cached
    chunks, request_id = stream_chunks(sdk, model=f"{provider}-cache", messages=messages)
    final = chunks[-1].usage
    assert final is not None and final.prompt_tokens_details is not None
    assert final.prompt_tokens_details.cached_tokens == cached
    assert gateway.ledger_row(request_id)["cached_prompt_tokens"] == cached


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_rate_limit_is_passed_on_as_429_with_retry_after(provider: str, sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        sdk.chat.completions.create(model=f"{provider}-ratelimit", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 429 and info.value.message
    assert info.value.response.headers.get("retry-after") == RETRY_AFTER[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_content_filter_is_finish_reason_content_filter(provider: str, sdk: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "something the provider will not answer"}]
    whole = sdk.chat.completions.create(model=f"{provider}-filter", messages=messages)  # type: ignore[arg-type]
    assert whole.choices[0].finish_reason == "content_filter"
    chunks, _ = stream_chunks(sdk, model=f"{provider}-filter", messages=messages)
    assert finish_reasons(chunks) == ["content_filter"]


#: The providers that cannot honour a request for any JSON object, or for log probabilities (Claude, and Bedrock's
#: Converse API): the gateway refuses such a request instead of answering without what was asked.
NO_JSON_OBJECT = NO_LOGPROBS = ("anthropic", "vertex-claude", "bedrock")


def assert_refused_unsent_and_unbilled(info: pytest.ExceptionInfo[openai.BadRequestError], param: str, advice: str,
                                       provider: str, calls_before: int, fakes: Fakes, gateway: Gateway) -> None:
    """A 400 in OpenAI's error shape naming ``param`` and saying what to do; the provider was never called and the
    request cost nothing."""
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "invalid_request_error" and body["param"] == param, body
    assert advice in body["message"], body["message"]
    assert fakes.calls(provider) == calls_before, "the provider must not be called"
    row = gateway.ledger_row(info.value.response.headers["x-request-id"])
    assert row["status"] == "error" and row["http_status"] == 400
    assert row["spend"] == 0 and row["completion_tokens"] == 0


@pytest.mark.parametrize("provider", NO_JSON_OBJECT)
def test_a_json_object_response_format_is_refused_where_it_cannot_be_honoured(
        provider: str, sdk: openai.OpenAI, gateway: Gateway, fakes: Fakes) -> None:
    """Claude and Converse follow only a JSON schema; the others take json_object (Gemini as responseMimeType)."""
    before = fakes.calls(provider)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as info:
            sdk.chat.completions.create(model=f"{provider}-good", messages=[{"role": "user", "content": "JSON?"}],
                                        response_format={"type": "json_object"}, stream=stream)
        assert_refused_unsent_and_unbilled(info, "response_format", '"type": "json_schema"', provider, before, fakes,
                                           gateway)


@pytest.mark.parametrize("provider", NO_LOGPROBS)
def test_log_probabilities_are_refused_where_the_provider_has_none(
        provider: str, sdk: openai.OpenAI, gateway: Gateway, fakes: Fakes) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    before = fakes.calls(provider)
    for asks in ({"logprobs": True}, {"logprobs": True, "top_logprobs": 2}):
        with pytest.raises(openai.BadRequestError) as info:
            sdk.chat.completions.create(model=f"{provider}-good", messages=messages,  # type: ignore[arg-type]
                                        **asks)  # type: ignore[call-overload]
        assert_refused_unsent_and_unbilled(info, "logprobs", "leave out logprobs", provider, before, fakes, gateway)
    served = sdk.chat.completions.create(model=f"{provider}-good", messages=messages,  # type: ignore[arg-type]
                                         logprobs=False)
    assert served.choices[0].message.content, "logprobs: false asks for nothing and is served"


@pytest.mark.parametrize("provider", ["gemini", "vertex"])
def test_gemini_answers_log_probabilities_whole_and_streamed(provider: str, sdk: openai.OpenAI, fakes: Fakes) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    completion = sdk.chat.completions.create(model=f"{provider}-good", messages=messages,  # type: ignore[arg-type]
                                             logprobs=True, top_logprobs=2)
    config = fakes.last_body(provider)["generationConfig"]
    assert config["responseLogprobs"] is True and config["logprobs"] == 2
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert "".join(t.token for t in logprobs.content) == completion.choices[0].message.content
    assert all(len(t.top_logprobs) == 2 and t.top_logprobs[0].token == t.token for t in logprobs.content)
    chunks, _ = stream_chunks(sdk, model=f"{provider}-good", messages=messages, logprobs=True, top_logprobs=2)
    streamed = [t for chunk in chunks for c in chunk.choices if c.logprobs for t in c.logprobs.content or []]
    assert [(t.token, t.logprob) for t in streamed] == [(t.token, t.logprob) for t in logprobs.content]


@pytest.mark.parametrize("provider", ["gemini", "vertex"])
def test_the_gemini_thinking_budget_stays_within_the_output_bound(
        provider: str, sdk: openai.OpenAI, gateway: Gateway, fakes: Fakes) -> None:
    """Gemini spends thinking out of maxOutputTokens, the bound billing held: the budget must leave the answer room,
    whether the client set the bound (max_tokens) or the gateway did (a budgeted key's hold of the deployment's
    output limit, when the client names none: Cursor's case)."""
    ask = [{"role": "user", "content": "Think hard."}]
    sdk.chat.completions.create(model=f"{provider}-good", messages=ask,  # type: ignore[arg-type]
                                max_tokens=1000, reasoning_effort="high")
    config = fakes.last_body(provider)["generationConfig"]
    assert (config["maxOutputTokens"], config["thinkingConfig"]) == (1000, {"thinkingBudget": 999})
    sdk.chat.completions.create(model=f"{provider}-good", messages=ask,  # type: ignore[arg-type]
                                max_completion_tokens=3000,
                                extra_body={"thinking": {"type": "enabled", "budget_tokens": 8000}})
    config = fakes.last_body(provider)["generationConfig"]
    assert (config["maxOutputTokens"], config["thinkingConfig"]) == (3000, {"thinkingBudget": 2999})
    with openai.OpenAI(api_key=gateway.create_key(max_budget=50), base_url=gateway.base_url + "/v1",
                       max_retries=0, timeout=20) as budgeted:
        budgeted.chat.completions.create(model=f"{provider}-bounded", messages=ask,  # type: ignore[arg-type]
                                         reasoning_effort="high")
    config = fakes.last_body(provider)["generationConfig"]
    assert (config["maxOutputTokens"], config["thinkingConfig"]) == (2000, {"thinkingBudget": 1999})


@pytest.mark.parametrize("provider", ["gemini", "vertex"])
def test_a_gemini_thinking_budget_is_kept_in_the_models_range_or_refused_naming_the_output_bound(
        provider: str, sdk: openai.OpenAI, gateway: Gateway, fakes: Fakes) -> None:
    """Gemini 2.5 Pro thinks 128 to 32,768 tokens and cannot stop, Flash-Lite 512 to 24,576: Google refuses any other
    budget. The gateway moves the budget into the range, and refuses (unsent, unbilled) an output bound that leaves
    no room for the least one, saying how large it must be."""
    ask = [{"role": "user", "content": "Think."}]
    sdk.chat.completions.create(model=f"{provider}-pro", messages=ask,  # type: ignore[arg-type]
                                max_tokens=1000, reasoning_effort="none")  # type: ignore[arg-type]
    assert fakes.last_body(provider)["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 128}
    sdk.chat.completions.create(model=f"{provider}-pro", messages=ask,  # type: ignore[arg-type]
                                max_tokens=60000, extra_body={"thinking": {"type": "enabled", "budget_tokens": 50000}})
    assert fakes.last_body(provider)["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 32768}
    before = fakes.calls(provider)
    for model, asks, field, least in ((f"{provider}-pro", {"max_tokens": 100, "reasoning_effort": "low"},
                                       "max_tokens", 129),
                                      (f"{provider}-lite", {"max_completion_tokens": 300, "reasoning_effort": "low"},
                                       "max_completion_tokens", 513)):
        with pytest.raises(openai.BadRequestError) as info:
            sdk.chat.completions.create(model=model, messages=ask, **asks)  # type: ignore[arg-type,call-overload]
        assert_refused_unsent_and_unbilled(info, field, f"Set {field} to at least {least}", provider, before, fakes,
                                           gateway)
    sdk.chat.completions.create(model=f"{provider}-lite", messages=ask,  # type: ignore[arg-type]
                                max_completion_tokens=513, reasoning_effort="low")
    assert fakes.last_body(provider)["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 512}


def test_claude_on_bedrock_thinks_as_on_anthropic_and_its_signed_thinking_goes_back(
        sdk: openai.OpenAI, fakes: Fakes) -> None:
    """Converse takes Claude's extended thinking in additionalModelRequestFields; the budget is the one the
    Anthropic translation sends, and the answer carries the reasoning and its signature as Anthropic's does, so that
    the next tool-use turn can send the signed block back (Claude refuses a thinking tool turn without it)."""
    question = {"role": "user", "content": "What is the weather in Paris?"}
    asks: dict[str, Any] = {"reasoning_effort": "medium", "max_tokens": 4000, "tools": [WEATHER_TOOL]}
    first = sdk.chat.completions.create(model="bedrock-claude-tool", messages=[question], **asks)  # type: ignore
    sent = fakes.last_body("bedrock")
    sdk.chat.completions.create(model="anthropic-tool", messages=[question], **asks)  # type: ignore[arg-type]
    assert sent["additionalModelRequestFields"] == {"thinking": fakes.last_body("anthropic")["thinking"]}
    assert sent["additionalModelRequestFields"]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    message = first.choices[0].message
    signed = {"type": "thinking", "thinking": THOUGHT, "signature": thought_signature(THOUGHT)}
    assert (message.model_extra or {})["reasoning_content"] == THOUGHT
    assert (message.model_extra or {})["thinking_blocks"] == [signed]
    calls = message.tool_calls or []
    assert first.choices[0].finish_reason == "tool_calls" and len(calls) == 1

    second = sdk.chat.completions.create(
        model="bedrock-claude-tool", **asks,
        messages=[question, message.model_dump(exclude_none=True),  # type: ignore[list-item]
                  {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny, 24 C"}])
    assert "sunny, 24 C" in (second.choices[0].message.content or "")
    sent = fakes.last_body("bedrock")
    assert "thinking" in sent["additionalModelRequestFields"]
    assert sent["messages"][1]["content"][0] == {"reasoningContent": {"reasoningText": {
        "text": THOUGHT, "signature": thought_signature(THOUGHT)}}}


def test_claude_on_bedrock_streams_its_thinking_with_the_signature_and_redacted_blocks(
        sdk: openai.OpenAI) -> None:
    ask: dict[str, Any] = {"model": "bedrock-claude-redacted", "messages": [{"role": "user", "content": "Hi"}],
                           "reasoning_effort": "low", "max_tokens": 2000}
    redacted = {"type": "redacted_thinking", "data": base64.b64encode(b"encrypted thoughts").decode()}
    whole = sdk.chat.completions.create(**ask).choices[0].message
    extra = whole.model_extra or {}
    assert extra["reasoning_content"] == THOUGHT
    assert extra["thinking_blocks"] == [
        {"type": "thinking", "thinking": THOUGHT, "signature": thought_signature(THOUGHT)}, redacted]
    chunks, _ = stream_chunks(sdk, **ask)
    deltas = [choice.delta.model_extra or {} for chunk in chunks for choice in chunk.choices]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == THOUGHT
    assert [b for d in deltas for b in d.get("thinking_blocks") or []] == [
        {"type": "thinking", "thinking": "", "signature": thought_signature(THOUGHT)}, redacted]
    assert text_of(chunks) == whole.content


def test_claude_code_on_bedrock_gets_signed_thinking_blocks_and_sends_them_back(gateway: Gateway,
                                                                                fakes: Fakes) -> None:
    """Through /v1/messages with the official SDK: thinking blocks with their signatures, as from Anthropic."""
    tools: Any = [{"name": "get_weather", "description": "The weather in a city.",
                   "input_schema": WEATHER_TOOL["function"]["parameters"]}]  # type: ignore[index]
    question: Any = {"role": "user", "content": "What is the weather in Paris?"}
    with anthropic.Anthropic(api_key=gateway.create_key(key_alias="claude-code"), base_url=gateway.base_url,
                             max_retries=0, timeout=20) as client:
        first = client.messages.create(model="bedrock-claude-tool", max_tokens=4000, tools=tools, messages=[question],
                                       thinking={"type": "enabled", "budget_tokens": 1500})
        assert fakes.last_body("bedrock")["additionalModelRequestFields"] == {
            "thinking": {"type": "enabled", "budget_tokens": 1500}}
        thinking = first.content[0]
        assert thinking.type == "thinking" and thinking.thinking == THOUGHT
        assert thinking.signature == thought_signature(THOUGHT)
        use = next(block for block in first.content if block.type == "tool_use")
        second = client.messages.create(
            model="bedrock-claude-tool", max_tokens=4000, tools=tools,
            thinking={"type": "enabled", "budget_tokens": 1500},
            messages=[question, {"role": "assistant", "content": first.content},
                      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                    "content": "sunny, 24 C"}]}])
    assert "sunny, 24 C" in "".join(block.text for block in second.content if block.type == "text")
    assert fakes.last_body("bedrock")["messages"][1]["content"][0]["reasoningContent"]["reasoningText"][
        "signature"] == thought_signature(THOUGHT)


def test_reasoning_is_refused_on_a_bedrock_model_that_is_not_claude(sdk: openai.OpenAI, gateway: Gateway,
                                                                     fakes: Fakes) -> None:
    """The gateway asks only Claude to think on Bedrock: another model's reasoning request is refused, not dropped."""
    messages: Any = [{"role": "user", "content": "Think."}]
    before = fakes.calls("bedrock")
    for asks, param in (({"reasoning_effort": "low"}, "reasoning_effort"),
                        ({"extra_body": {"thinking": {"type": "enabled", "budget_tokens": 2000}}}, "thinking")):
        for stream in (False, True):
            with pytest.raises(openai.BadRequestError) as info:
                sdk.chat.completions.create(model="bedrock-good", messages=messages, stream=stream, **asks)
            assert_refused_unsent_and_unbilled(info, param, "use a Claude model", "bedrock", before, fakes, gateway)
    served = sdk.chat.completions.create(model="bedrock-good", messages=messages,
                                         reasoning_effort="none")  # type: ignore[arg-type]
    assert served.choices[0].message.content
    assert "additionalModelRequestFields" not in fakes.last_body("bedrock")


#: A request for each parameter some providers cannot honour.
PROBES: dict[str, dict[str, Any]] = {"n": {"n": 2}, "logprobs": {"logprobs": True},
                                     "top_logprobs": {"logprobs": True, "top_logprobs": 2},
                                     "reasoning_effort": {"reasoning_effort": "low"}}


@pytest.mark.parametrize("provider", [*PROVIDERS, "bedrock-claude"])
def test_model_info_lists_the_parameters_each_deployment_honours(provider: str, sdk: openai.OpenAI,
                                                                 gateway: Gateway) -> None:
    """supported_openai_params (LiteLLM's field) of /model/info and /model_group/info is what the gateway does: a
    parameter listed is served, one left out is refused."""
    name = f"{provider}-good"
    data = httpx.get(f"{gateway.base_url}/model/info", headers=gateway.admin(), timeout=20).json()["data"]
    [entry] = [m for m in data if m["model_name"] == name]
    supported = entry["model_info"]["supported_openai_params"]
    assert {"max_tokens", "stream", "temperature", "tools", "tool_choice", "response_format"} <= set(supported)
    messages: Any = [{"role": "user", "content": "Hi"}]
    for param, asks in PROBES.items():
        if param in supported:
            answer = sdk.chat.completions.create(model=name, messages=messages, max_tokens=2000, **asks)
            assert answer.choices[0].message.content, (name, param)
        else:
            with pytest.raises(openai.BadRequestError) as info:
                sdk.chat.completions.create(model=name, messages=messages, max_tokens=2000, **asks)
            assert isinstance(info.value.body, dict) and info.value.body["param"] in (param, "logprobs"), (name, param)
    groups = httpx.get(f"{gateway.base_url}/model_group/info", headers=gateway.admin(), params={"model_group": name},
                       timeout=20).json()["data"]
    assert [group["supported_openai_params"] for group in groups] == [supported]


def test_azure_requests_use_deployment_urls_api_version_and_api_key(sdk: openai.OpenAI, fakes: Fakes) -> None:
    sdk.chat.completions.create(model="azure-good", messages=[{"role": "user", "content": "x"}])
    sent = fakes.openai.requests[-1]
    assert sent.path == "/openai/deployments/good/chat/completions"
    assert sent.query == "api-version=2024-10-21"
    assert sent.headers["api-key"] == fakes.openai.azure_api_key and "authorization" not in sent.headers


def test_azure_refusing_the_key_is_passed_on_as_401(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        sdk.chat.completions.create(model="azure-wrong-key", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 401 and "Access denied" in info.value.message


def test_mistral_does_not_receive_fields_it_rejects(sdk: openai.OpenAI, fakes: Fakes) -> None:
    sdk.chat.completions.create(model="mistral-good", messages=[{"role": "user", "content": "x"}],
                                store=True, metadata={"team": "a"})
    sent = fakes.openai.requests[-1]
    assert sent.path == "/v1/chat/completions" and sent.headers["authorization"] == f"Bearer {KEYS['mistral']}"
    assert "store" not in sent.body and "metadata" not in sent.body and sent.body["model"] == "good"


def sent_credentials(fakes: Fakes, provider: str) -> list[str]:
    """What the gateway authenticated its last call to ``provider`` with: configured and as sent."""
    secrets = list(AWS_SECRETS) if provider == "bedrock" else [] if provider.startswith("vertex") else [KEYS[provider]]
    if provider in ("openai", "azure", "mistral", "anthropic"):
        headers = fakes.openai.requests[-1].headers if provider != "anthropic" else fakes.anthropic.requests[-1].headers
    elif provider.startswith("vertex"):  # an OAuth access token, from the service account's signed grant
        headers = fakes.vertex.requests[-1].headers
    else:
        headers = (fakes.gemini if provider == "gemini" else fakes.bedrock).requests[-1].headers
    authorization = headers.get("authorization", "")
    if authorization.startswith("Bearer "):
        secrets.append(authorization.removeprefix("Bearer "))
    if "Signature=" in authorization:
        secrets.append(authorization.rsplit("Signature=", 1)[1])
    return secrets


@pytest.mark.parametrize("leak", LEAKS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_provider_quoting_the_request_in_its_error_gives_away_no_credential(
        provider: str, leak: str, sdk: openai.OpenAI, fakes: Fakes) -> None:
    messages = [{"role": "user", "content": "x"}]
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as info:
            sdk.chat.completions.create(model=f"{provider}-{leak}", messages=messages,  # type: ignore[arg-type]
                                        stream=stream)
        answer = info.value.response.text + json.dumps(dict(info.value.response.headers))
        assert "[redacted]" in answer, f"the quote of the request reaches the client, minus credentials: {answer}"
        for secret in sent_credentials(fakes, provider):
            assert secret not in answer


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_provider_quoting_the_request_inside_a_stream_gives_away_no_credential(
        provider: str, sdk: openai.OpenAI, fakes: Fakes) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model=f"{provider}-leak-stream", stream=True,
                                                        messages=[{"role": "user", "content": "x"}])
    answer = raw.http_response.read().decode()
    events = [json.loads(line[6:]) for line in answer.splitlines() if line.startswith("data: {")]
    assert "[redacted]" in events[-1]["error"]["message"], answer
    for secret in sent_credentials(fakes, provider):
        assert secret not in answer


def test_zz_no_credential_in_the_ledger_or_any_log(gateway: Gateway, fakes: Fakes) -> None:
    """After every leaky answer above: the ledger and every service's log hold none of what was sent."""
    signatures = [r.headers["authorization"].rsplit("Signature=", 1)[1] for r in fakes.bedrock.requests
                  if "Signature=" in r.headers.get("authorization", "")]
    secrets = [*KEYS.values(), *AWS_SECRETS, *signatures]
    ledger = httpx.get(f"{gateway.base_url}/spend/logs", headers=gateway.admin(), params={"limit": 1000}).text
    logs = gateway.logs()
    assert "provider attempt failed" in logs and "[redacted]" in logs, "the router logs each failed attempt"
    for secret in secrets:
        assert secret not in ledger and secret not in logs
