"""Wildcard catalog entries (``openai/*`` and ``*``): any model id of the provider is routed, priced from the
price data and held within the model's own output limit, and listed in ``/v1/models`` as LiteLLM lists
its wildcard routes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from switchboard_rules.model_limits import known_models, limits_for
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import close_sdk_clients, openai_client  # noqa: F401  (an autouse fixture)

MESSAGES = [{"role": "user", "content": "hi"}]
#: genai-prices' price of gpt-4o-mini, USD per million tokens (input, output).
GPT_4O_MINI = (0.15, 0.6)
#: The models OpenAI publishes (the model data), read once when the module loads.
OPENAI_MODELS = known_models("openai")


@pytest.fixture(scope="module")
def wild(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    upstream = {"provider": "openai", "model": "*", "api_base": fake_openai[1], "api_key": "sk-fake-upstream"}
    gw = start_gateway(tmp_path_factory.mktemp("wildcards"), [
        {"name": "openai/*", "deployments": [{**upstream, "id": "openai-any"}]},
        {"name": "*", "deployments": [{**upstream, "id": "catch-all"}]},
        {"name": "gpt-4o", "deployments": [{**upstream, "model": "echo", "input_cost_per_million": "1",
                                            "output_cost_per_million": "1"}]},
    ])
    yield gw
    gw.stop()


def client(gw: Gateway, key: str) -> openai.OpenAI:
    return openai_client(key, gw.base_url + "/v1")


def test_a_provider_wildcard_routes_any_model_id_priced_as_that_model(
        wild: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    key = wild.create_key(max_budget=1)
    raw = client(wild, key).chat.completions.with_raw_response.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    answer = raw.parse()
    sent = fake_openai[0].requests[-1]
    assert sent.body["model"] == "gpt-4o-mini"
    # The budget hold's bound is the resolved model's own output limit (models.dev), sent as its cap.
    assert sent.body["max_completion_tokens"] == limits_for("openai", "gpt-4o-mini").max_output_tokens
    assert raw.headers["x-switchboard-deployment"] == "openai-any"
    assert raw.headers["x-switchboard-model"] == "openai/gpt-4o-mini"
    usage = answer.usage
    assert usage is not None
    row = wild.ledger_row(raw.headers["x-request-id"])
    assert row["model"] == "openai/gpt-4o-mini" and row["upstream_model"] == "gpt-4o-mini"
    expected = (usage.prompt_tokens * GPT_4O_MINI[0] + usage.completion_tokens * GPT_4O_MINI[1]) / 1e6
    assert row["spend"] == pytest.approx(expected, abs=1e-6)


def test_a_provider_model_name_is_reachable_through_the_azure_path(
        wild: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    """Cursor's Azure settings (docs/cursor.md) put the public model name in the deployment path: a
    ``provider/model`` name is served there, its slash sent as is or as %2F, on both Azure paths."""
    key = wild.create_key(max_budget=1)
    for path in ("/openai/deployments/openai/gpt-4o-mini/chat/completions",
                 "/openai/deployments/openai%2Fgpt-4o-mini/chat/completions",
                 "/cursor/openai/deployments/openai/gpt-4o-mini/chat/completions"):
        response = httpx.post(wild.base_url + path, params={"api-version": "2024-10-21"}, headers={"api-key": key},
                              json={"messages": MESSAGES}, timeout=20)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["x-switchboard-model"] == "openai/gpt-4o-mini"
        assert fake_openai[0].requests[-1].body["model"] == "gpt-4o-mini"
    with openai.AzureOpenAI(api_key=key, azure_endpoint=wild.base_url, api_version="2024-10-21",
                            max_retries=0) as azure:
        completion = azure.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert completion.model == "openai/gpt-4o-mini"


def test_the_catch_all_serves_what_nothing_else_declares(wild: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    key = wild.create_key()
    llm = client(wild, key)
    raw = llm.chat.completions.with_raw_response.create(model="gpt-4.1-mini", messages=MESSAGES)
    assert raw.headers["x-switchboard-deployment"] == "catch-all"
    assert fake_openai[0].requests[-1].body["model"] == "gpt-4.1-mini"
    # A name the catalog declares wins over every pattern.
    assert llm.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message.content == "hi"


def test_a_model_id_without_a_price_is_refused_with_what_to_set(wild: Gateway) -> None:
    key = wild.create_key()
    with pytest.raises(openai.APIStatusError) as info:
        client(wild, key).chat.completions.create(model="openai/not-a-real-model", messages=MESSAGES)
    assert info.value.status_code == 503  # as any unpriced model: the gateway cannot bound its cost
    assert "not-a-real-model" in info.value.message and "input_cost_per_million" in info.value.message


def test_a_key_limited_to_a_wildcard_uses_only_its_models(wild: Gateway) -> None:
    key = wild.create_key(models=["openai/*"])
    llm = client(wild, key)
    assert llm.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES).choices
    with pytest.raises(openai.PermissionDeniedError):
        llm.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_models_lists_a_wildcard_as_the_models_it_serves(wild: Gateway) -> None:
    key = wild.create_key(models=["openai/*"])
    headers = {"Authorization": f"Bearer {key}"}
    ids = [m["id"] for m in httpx.get(wild.base_url + "/v1/models", headers=headers).json()["data"]]
    assert set(ids) == {f"openai/{model}" for model in OPENAI_MODELS}
    with_routes = httpx.get(wild.base_url + "/v1/models", headers=headers,
                            params={"return_wildcard_routes": "true"}).json()["data"]
    assert "openai/*" in [m["id"] for m in with_routes]
    models = client(wild, key).models.list()
    assert "openai/gpt-4o-mini" in [m.id for m in models]
