"""``/v1/completions`` (legacy text completions) and ``/v1/moderations`` with the official SDK: routed to
OpenAI-compatible deployments, with usage, limits, budgets and ledger rows as for chat."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import close_sdk_clients, openai_client  # noqa: F401  (an autouse fixture)

PRICES = {"input_cost_per_million": "1.5", "output_cost_per_million": "2"}


@pytest.fixture(scope="module")
def text_gateway(tmp_path_factory: pytest.TempPathFactory,
                 fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    api_base = fake_openai[1]

    def dep(model: str, provider: str = "openai", **extra: object) -> dict[str, object]:
        return {"provider": provider, "model": model, "api_base": api_base, "api_key": "sk-fake-upstream", **extra}

    gw = start_gateway(tmp_path_factory.mktemp("text"), [
        {"name": "gpt-3.5-turbo-instruct", "deployments": [dep("good", **PRICES)]},
        {"name": "instruct-echo", "deployments": [dep("echo", **PRICES)]},
        {"name": "instruct-long", "deployments": [dep("long", **PRICES)]},
        {"name": "instruct-error", "deployments": [dep("error", **PRICES)]},
        {"name": "omni-moderation-latest", "deployments": [dep("good", input_cost_per_million="0",
                                                               output_cost_per_million="0")]},
        {"name": "mistral-chat", "deployments": [dep("good", "mistral", **PRICES)]},
    ])
    yield gw
    gw.stop()


def sdk(gw: Gateway, key: str) -> openai.OpenAI:
    return openai_client(key, gw.base_url + "/v1")


def test_a_legacy_completion_with_the_sdk_is_answered_billed_and_recorded(
        text_gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    key = text_gateway.create_key(key_alias="legacy")
    raw = sdk(text_gateway, key).completions.with_raw_response.create(
        model="gpt-3.5-turbo-instruct", prompt="Say this is a test", max_tokens=7, temperature=0)
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.choices[0].text == " Hello from the fake provider."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 7
    sent = fake_openai[0].requests[-1]
    assert sent.path == "/v1/completions"
    assert sent.body["prompt"] == "Say this is a test" and sent.body["model"] == "good"
    assert raw.headers["x-switchboard-deployment"] == "gpt-3.5-turbo-instruct/0"
    row = text_gateway.ledger_row(raw.headers["x-request-id"])
    usage = completion.usage
    assert row["status"] == "success" and row["model"] == "gpt-3.5-turbo-instruct"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    # $1.5 per million prompt tokens, $2 per million completion tokens, to the micro-dollar.
    assert row["spend"] == pytest.approx((usage.prompt_tokens * 1.5 + usage.completion_tokens * 2) / 1e6)


def test_a_budgeted_key_sends_its_bound_as_max_tokens_and_never_overspends(
        text_gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    # $0.005: at $2 per million output tokens, no more than 2,500 tokens of answer (the model could write 32k).
    key = text_gateway.create_key(key_alias="legacy-budget", max_budget=0.005)
    raw = sdk(text_gateway, key).completions.with_raw_response.create(model="instruct-long", prompt="Write forever")
    answer = raw.parse()
    sent = fake_openai[0].calls("long")[-1]
    assert 1024 <= sent.body["max_tokens"] <= 2500
    assert raw.headers["x-switchboard-output-capped"] == str(sent.body["max_tokens"])
    assert answer.usage is not None and answer.usage.completion_tokens == sent.body["max_tokens"]
    assert text_gateway.ledger_row(raw.headers["x-request-id"])["spend"] <= 0.005


def test_completions_and_moderations_name_the_model_asked_for(text_gateway: Gateway) -> None:
    """The fake provider names its own id ("good"); the answers name the catalog name or the key's alias asked
    for, as chat answers do (and the default moderation model when the body named none)."""
    key = text_gateway.create_key(key_alias="answer-names", aliases={"my-instruct": "gpt-3.5-turbo-instruct",
                                                                     "my-moderation": "omni-moderation-latest"})
    client = sdk(text_gateway, key)
    for asked in ("gpt-3.5-turbo-instruct", "my-instruct"):
        assert client.completions.create(model=asked, prompt="hi", max_tokens=5).model == asked
    assert client.moderations.create(model="my-moderation", input="hello").model == "my-moderation"
    assert client.moderations.create(input="hello").model == "omni-moderation-latest"


def test_echo_and_provider_errors_pass_through(text_gateway: Gateway) -> None:
    key = text_gateway.create_key()
    client = sdk(text_gateway, key)
    assert client.completions.create(model="instruct-echo", prompt="repeat me").choices[0].text == "repeat me"
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="instruct-error", prompt="x")
    assert "rejects" in info.value.message


@pytest.mark.parametrize(("extra", "param"), [
    ({"prompt": ["one", "two"]}, "prompt"),
    ({"prompt": "x", "n": 2}, "n"),
    ({"prompt": "x", "best_of": 3}, "best_of"),
    ({"prompt": "x", "stream": True}, "stream"),
    ({}, "prompt"),
])
def test_requests_a_budget_cannot_bound_are_refused(text_gateway: Gateway, extra: dict[str, object],
                                                     param: str) -> None:
    key = text_gateway.create_key()
    response = httpx.post(f"{text_gateway.base_url}/v1/completions", headers={"Authorization": f"Bearer {key}"},
                          json={"model": "gpt-3.5-turbo-instruct", **extra})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_a_provider_without_legacy_completions_is_named(text_gateway: Gateway) -> None:
    key = text_gateway.create_key()
    with pytest.raises(openai.BadRequestError) as info:
        sdk(text_gateway, key).completions.create(model="mistral-chat", prompt="x")
    assert info.value.code == "completions_not_supported"
    assert "mistral" in info.value.message


def test_legacy_completions_count_against_rate_limits(text_gateway: Gateway) -> None:
    key = text_gateway.create_key(rpm_limit=1)
    client = sdk(text_gateway, key)
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="first")
    with pytest.raises(openai.RateLimitError):
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt="second")


def test_moderations_with_the_sdk_default_model_and_a_ledger_row(
        text_gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    key = text_gateway.create_key(key_alias="moderation")
    raw = sdk(text_gateway, key).moderations.with_raw_response.create(
        input=["I will attack the castle at dawn", "What a lovely day"])
    moderation = raw.parse()
    assert [r.flagged for r in moderation.results] == [True, False]
    assert moderation.results[0].categories.violence is True
    assert moderation.results[0].category_scores.violence > 0.5
    sent = fake_openai[0].requests[-1]
    assert sent.path == "/v1/moderations" and sent.body["model"] == "good"
    assert "usage" not in raw.http_response.json()  # OpenAI's moderation object carries none
    row = text_gateway.ledger_row(raw.headers["x-request-id"])
    assert row["model"] == "omni-moderation-latest" and row["status"] == "success"
    assert row["prompt_tokens"] > 0 and row["spend"] == 0


def test_moderation_needs_input(text_gateway: Gateway) -> None:
    key = text_gateway.create_key()
    with pytest.raises(openai.BadRequestError) as info:
        sdk(text_gateway, key).moderations.create(input=[])
    assert info.value.body["param"] == "input"  # type: ignore[index]


def test_the_paths_without_v1_are_served_too(text_gateway: Gateway) -> None:
    key = text_gateway.create_key()
    for path, body in (("/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "hi"}),
                       ("/moderations", {"input": "hi"})):
        assert httpx.post(text_gateway.base_url + path, json=body).status_code == 401  # asks for a key
        answer = httpx.post(text_gateway.base_url + path, json=body, headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
