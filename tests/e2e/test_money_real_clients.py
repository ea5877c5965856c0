"""Money with real clients: budgets that serve Cursor, capped answers, lone callers, exact BYOK charges, and
spend where LiteLLM users look for it — through the real facade, with Cursor's bodies and the official SDKs.

Cursor never sends ``max_tokens``. A request without one is held (and bounded at the provider) at the model's
real maximum output from the model data, never its context window; when the budget cannot pay for that but can
pay for the prompt and a useful answer (the floor, ``min_output_tokens``), the answer is capped and says so.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from genai_prices import Usage, calc_price

from switchboard_billing.money import usd_to_micros_half_up
from tests.fakes.anthropic_provider import FakeAnthropic
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import BackgroundServer
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import openai_client

CURSOR = Path(__file__).parents[1] / "fixtures" / "cursor"
FERNET_KEY = "l4Jb3Xz8f9hH6qk0n1mPq2rS3tU4vW5xY6zA7bC8dE0="
OWN_OPENAI_KEY = "sk-own-" + "Mn3" * 12
#: gpt-4o's and Claude Sonnet 4's maximum output (models.dev), what a request without max_tokens is bounded by.
GPT_4O_MAX_OUTPUT = 16_384
SONNET_4_MAX_OUTPUT = 64_000
GPT_5_MAX_OUTPUT = 128_000
#: gpt-4o's price per million tokens, given to the fake deployments explicitly.
GPT_4O_PRICES = {"input_cost_per_million": "2.5", "output_cost_per_million": "10"}
BYOK_FEE = {"byok_fee_per_million": "0.20", "byok_fee_per_request_micros": 100}


@pytest.fixture(scope="module")
def openai_upstream() -> Iterator[FakeOpenAI]:
    app = FakeOpenAI()
    server = BackgroundServer(app).start()
    app.url = server.url + "/v1"  # type: ignore[attr-defined]  # the fake's own URL, for the deployments
    yield app
    server.stop()


@pytest.fixture(scope="module")
def anthropic_upstream() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, openai_upstream: FakeOpenAI,
       anthropic_upstream: FakeAnthropic) -> Iterator[Gateway]:
    base = openai_upstream.url  # type: ignore[attr-defined]

    def openai_dep(model: str, **extra: object) -> dict[str, object]:
        return {"provider": "openai", "model": model, "api_base": base, "api_key": "sk-operator", **extra}

    def azure_dep(deployment: str, api_version: str, max_output: int) -> dict[str, object]:
        """An Azure deployment on the fake (which refuses the output-cap field its model or version does not take)."""
        return {"provider": "azure", "model": deployment, "api_base": base.removesuffix("/v1"),
                "api_key": openai_upstream.azure_api_key, "api_version": api_version,
                "max_output_tokens": max_output, **GPT_4O_PRICES}

    models = [
        # Priced and bounded from the model data (genai-prices, models.dev), as a real gpt-4o deployment is.
        {"name": "gpt-4o", "deployments": [openai_dep("gpt-4o")]},
        {"name": "gpt-4o-byok", "deployments": [openai_dep("gpt-4o", byok=True, **BYOK_FEE)]},
        # A fee without byok: true is charged to a key whose own credential carries the request: published too.
        {"name": "gpt-4o-fee", "deployments": [openai_dep("gpt-4o", **BYOK_FEE)]},
        {"name": "claude-sonnet-4", "deployments": [{
            "provider": "anthropic", "model": "claude-sonnet-4-20250514", "api_base": anthropic_upstream.url,
            "api_key": "sk-ant-operator"}]},
        # A model that always writes all it is allowed to, at gpt-4o's prices and output limit.
        {"name": "greedy", "deployments": [openai_dep("long", max_output_tokens=GPT_4O_MAX_OUTPUT, **GPT_4O_PRICES)]},
        {"name": "pricey", "deployments": [openai_dep(
            "good", input_cost_per_million="100", output_cost_per_million="100")]},
        {"name": "drip", "deployments": [openai_dep("drip", **GPT_4O_PRICES)]},
        {"name": "broken", "deployments": [openai_dep("error", **GPT_4O_PRICES)]},
        {"name": "azure-gpt-5", "deployments": [azure_dep("gpt-5", "2024-10-21", GPT_5_MAX_OUTPUT)]},
        # A deployment on an API version from before Azure knew max_completion_tokens.
        {"name": "azure-gpt-4o-old-api", "deployments": [azure_dep("gpt-4o", "2024-06-01", GPT_4O_MAX_OUTPUT)]},
    ]
    gateway = start_gateway(tmp_path_factory.mktemp("money-gateway"), models,
                            extra_env={"SWITCHBOARD_ENCRYPTION_KEY": FERNET_KEY})
    yield gateway
    gateway.stop()


# -- helpers ------------------------------------------------------------------------------------------------


def new_key(gw: Gateway, **spec: Any) -> tuple[str, str]:
    """A virtual key (plain, id)."""
    response = httpx.post(f"{gw.base_url}/key/generate", json=spec, headers=gw.admin(), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["key"], response.json()["key_id"]


def cursor_agent_body(model: str, context_bytes: int = 0) -> dict[str, Any]:
    """Cursor's Agent-mode body (Responses shape, tool results, an image) without an output cap, as Cursor sends
    it for most models, with a file of ``context_bytes`` read into the conversation as Cursor does with large
    contexts."""
    body = copy.deepcopy(json.loads((CURSOR / "agent_mode_responses_body.json").read_text())["request"])
    body["model"] = model
    body.pop("max_output_tokens")
    if context_bytes:
        source = "".join(f"def handler_{i}(request):\n    return respond(request, {i})\n\n"
                         for i in range(context_bytes // 48 + 1))[:context_bytes]
        body["input"].insert(-1, {"type": "function_call", "call_id": "call_big", "name": "read_file",
                                  "arguments": "{\"path\": \"handlers.py\"}"})
        body["input"].insert(-1, {"type": "function_call_output", "call_id": "call_big", "output": source})
    return body


def cursor_ask_body(model: str) -> dict[str, Any]:
    """Cursor's Ask-mode body (chat shape, streamed with usage, tools, no max_tokens)."""
    body = copy.deepcopy(json.loads((CURSOR / "ask_mode_mixed_tools.json").read_text())["request"])
    body["model"] = model
    assert "max_tokens" not in body
    return body


def cursor(gw: Gateway, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{gw.base_url}/cursor/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {key}"}, timeout=60)


def chunks(answer: httpx.Response) -> list[dict[str, Any]]:
    """The chat completion chunks of a streamed answer."""
    return [json.loads(line[6:]) for line in answer.text.splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


def usage_of(answer: httpx.Response) -> dict[str, Any]:
    """The usage of an answer, whole or streamed (Cursor asks for it in the stream)."""
    if answer.headers["content-type"].startswith("text/event-stream"):
        return dict(next(c["usage"] for c in chunks(answer) if c.get("usage")))
    return dict(answer.json()["usage"])


def spend_logs(gw: Gateway, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{gw.base_url}/spend/logs", params={"limit": 1000, **params}, headers=gw.admin(),
                         timeout=10)
    assert response.status_code == 200, response.text
    return list(response.json())


def rows_of_key(gw: Gateway, key_id: str, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    """The key's ledger rows, once ``count`` of them have been settled."""
    deadline = time.monotonic() + timeout
    rows = spend_logs(gw, api_key=key_id)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = spend_logs(gw, api_key=key_id)
    assert len(rows) == count, f"{len(rows)} rows settled of {count}: {rows}"
    return rows


def key_info(gw: Gateway, key: str) -> dict[str, Any]:
    response = httpx.get(f"{gw.base_url}/key/info", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json()["info"])


def gpt_4o_micros(prompt_tokens: int, completion_tokens: int) -> int:
    price = calc_price(Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens), "gpt-4o",
                       provider_id="openai")
    return usd_to_micros_half_up(price.total_price)


def sent_to(upstream: FakeOpenAI, before: int) -> list[dict[str, Any]]:
    return [r.body for r in upstream.requests[before:]]


# -- daily caps serve Cursor -----------------------------------------------------------------------------------


def test_a_one_dollar_daily_cap_serves_cursor_on_gpt_4o(gw: Gateway, openai_upstream: FakeOpenAI) -> None:
    """A whole context window of output would be $1.28; gpt-4o can write 16,384 tokens: that is what is held,
    and what the provider is told."""
    key, key_id = new_key(gw, key_alias="cursor-daily-1", max_daily_spend=1)
    before = len(openai_upstream.requests)
    answer = cursor(gw, key, cursor_agent_body("gpt-4o"))
    assert answer.status_code == 200, answer.text
    [sent] = sent_to(openai_upstream, before)
    assert sent["max_completion_tokens"] == GPT_4O_MAX_OUTPUT and "max_tokens" not in sent
    assert "x-switchboard-output-capped" not in answer.headers
    [row] = rows_of_key(gw, key_id, 1)
    usage = usage_of(answer)
    assert row["cost_micros"] == gpt_4o_micros(usage["prompt_tokens"], usage["completion_tokens"])
    info = key_info(gw, key)
    assert info["max_daily_spend"] == 1
    assert Decimal(str(info["daily_spend"])) == Decimal(row["cost_micros"]) / 1_000_000


def test_an_agents_next_turn_is_not_cut_short_by_the_hold_of_the_turn_it_follows(
        gw: Gateway, openai_upstream: FakeOpenAI) -> None:
    """Cursor sends an agent's next turn the moment it has run the last turn's tool, often before that turn's usage
    has reached billing. On a cap that holds one turn's worst case (about $0.17 on gpt-4o) but not two, every turn
    of a lone agent is still bounded at gpt-4o's full output, not capped by the hold of the turn before."""
    key, key_id = new_key(gw, key_alias="cursor-back-to-back", max_daily_spend=0.3)
    before = len(openai_upstream.requests)
    with httpx.Client(base_url=gw.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as agent:
        for turn in range(6):
            body = cursor_ask_body("gpt-4o") if turn % 2 else cursor_agent_body("gpt-4o")
            answer = agent.post("/cursor/chat/completions", json=body)
            assert answer.status_code == 200, answer.text
            assert "x-switchboard-output-capped" not in answer.headers, f"turn {turn} capped"
    assert [s["max_completion_tokens"] for s in sent_to(openai_upstream, before)] == [GPT_4O_MAX_OUTPUT] * 6
    assert sum(r["cost_micros"] for r in rows_of_key(gw, key_id, 6)) < 300_000


def test_a_five_dollar_daily_cap_serves_four_concurrent_cursor_agents_on_claude(
        gw: Gateway, anthropic_upstream: FakeAnthropic) -> None:
    """Four Agent requests with 60 KB of context each, in flight together on Claude Sonnet 4: each holds about
    $1.15 (its prompt and 64,000 output tokens), not the $3.00 of a 200k-token window."""
    key, key_id = new_key(gw, key_alias="cursor-daily-5", max_daily_spend=5)
    body = cursor_agent_body("claude-sonnet-4", context_bytes=60_000)
    before = len(anthropic_upstream.requests)
    anthropic_upstream.delay_seconds = 1.0
    try:
        async def four() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=60) as client:
                return list(await asyncio.gather(*(client.post(
                    f"{gw.base_url}/cursor/chat/completions", json=body,
                    headers={"Authorization": f"Bearer {key}"}) for _ in range(4))))
        answers = asyncio.run(four())
    finally:
        anthropic_upstream.delay_seconds = 0.0
    assert [a.status_code for a in answers] == [200] * 4, [a.text[:300] for a in answers]
    received = anthropic_upstream.requests[before:]
    assert len(received) == 4
    assert max(r.at for r in received) - min(r.at for r in received) < 1.0, "all four were in flight together"
    assert {r.body["max_tokens"] for r in received} == {SONNET_4_MAX_OUTPUT}
    rows = rows_of_key(gw, key_id, 4)
    assert all(r["status"] == "success" and r["cost_micros"] > 0 for r in rows)
    assert sum(r["cost_micros"] for r in rows) <= 5_000_000


def test_a_budgeted_cursor_turn_reaches_azure_with_the_output_cap_its_api_version_knows(
        gw: Gateway, openai_upstream: FakeOpenAI) -> None:
    """Cursor sends no output cap, so a budgeted key's turn is bounded by the gateway. Azure's GPT-5 and o-series
    refuse ``max_tokens``: the bound goes as ``max_completion_tokens``, which every Azure chat model takes from
    API version 2024-09-01-preview on; a deployment on an older version, which knows only ``max_tokens``, gets
    that."""
    key, key_id = new_key(gw, key_alias="cursor-azure", max_daily_spend=5)
    before = len(openai_upstream.requests)
    agent = cursor(gw, key, cursor_agent_body("azure-gpt-5"))
    assert agent.status_code == 200, agent.text
    ask = cursor(gw, key, cursor_ask_body("azure-gpt-4o-old-api"))
    assert ask.status_code == 200, ask.text
    current, old = openai_upstream.requests[before:]
    assert current.path == "/openai/deployments/gpt-5/chat/completions" and "api-version=2024-10-21" in current.query
    assert current.body["max_completion_tokens"] == GPT_5_MAX_OUTPUT and "max_tokens" not in current.body
    assert old.path == "/openai/deployments/gpt-4o/chat/completions" and "api-version=2024-06-01" in old.query
    assert old.body["max_tokens"] == GPT_4O_MAX_OUTPUT and "max_completion_tokens" not in old.body
    assert [row["status"] for row in rows_of_key(gw, key_id, 2)] == ["success", "success"]


def test_a_clients_own_output_cap_reaches_azure_under_the_name_its_api_version_knows(
        gw: Gateway, openai_upstream: FakeOpenAI) -> None:
    """The OpenAI SDK's ``max_tokens`` to Azure GPT-5 arrives as ``max_completion_tokens`` (as it does at
    OpenAI), and ``max_completion_tokens`` to an API version that predates it as ``max_tokens``."""
    key, _ = new_key(gw, key_alias="sdk-azure", max_budget=5)
    sdk = openai_client(api_key=key, base_url=gw.base_url + "/v1")
    before = len(openai_upstream.requests)
    sdk.chat.completions.create(model="azure-gpt-5", messages=[{"role": "user", "content": "hi"}], max_tokens=300)
    sdk.chat.completions.create(model="azure-gpt-4o-old-api", messages=[{"role": "user", "content": "hi"}],
                                max_completion_tokens=200)
    current, old = (r.body for r in openai_upstream.requests[before:])
    assert current["max_completion_tokens"] == 300 and "max_tokens" not in current
    assert old["max_tokens"] == 200 and "max_completion_tokens" not in old


# -- the cap and the floor -------------------------------------------------------------------------------------


def test_a_nearly_spent_key_gets_a_capped_cursor_answer_then_a_clear_refusal(
        gw: Gateway, openai_upstream: FakeOpenAI) -> None:
    """$0.05 cannot pay for 16,384 output tokens at $10/M ($0.16) but pays for about 5,000: the answer is capped
    there, says so, and the provider's finish_reason "length" reaches Cursor. The model uses every token it is
    allowed, and still the spend stays inside the budget."""
    key, key_id = new_key(gw, key_alias="nearly-spent", max_budget=0.05)
    before = len(openai_upstream.requests)
    answer = cursor(gw, key, cursor_ask_body("greedy"))
    assert answer.status_code == 200, answer.text
    capped = int(answer.headers["x-switchboard-output-capped"])
    events = chunks(answer)
    assert 1024 <= capped < GPT_4O_MAX_OUTPUT
    [sent] = sent_to(openai_upstream, before)
    assert sent["max_completion_tokens"] == capped
    finishes = [c["finish_reason"] for e in events for c in e.get("choices", []) if c.get("finish_reason")]
    assert finishes == ["length"]
    usage = usage_of(answer)
    assert usage["completion_tokens"] == capped
    [row] = rows_of_key(gw, key_id, 1)
    assert row["cost_micros"] == usd_to_micros_half_up(
        (Decimal(usage["prompt_tokens"]) * Decimal("2.5") + capped * 10) / 10**6)
    assert row["cost_micros"] <= 50_000, "a model that writes all it may still cannot pass the budget"

    refused = cursor(gw, key, cursor_ask_body("greedy") | {"stream": False})
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded" and "left" in error["message"]
    assert "does not reset" in error["message"] and "held by requests in flight" not in error["message"]


def test_below_the_floor_the_refusal_names_the_max_tokens_that_fit_and_a_key_may_lower_its_floor(
        gw: Gateway, openai_upstream: FakeOpenAI) -> None:
    """A budget that pays for the prompt and 500 output tokens: below the default floor (1,024) the request is
    refused with the max_tokens that would fit; asking for that many is served; a key whose floor is 256 gets
    the capped answer instead."""
    # The prompt's bound: 16 (request) + 8 (message) + 2 ("hi") tokens at $2.50/M; 500 tokens at $10/M.
    budget_micros = 26 * 2.5 + 500 * 10
    budget = f"{budget_micros / 1_000_000:.6f}"
    messages = [{"role": "user", "content": "hi"}]
    key, _ = new_key(gw, key_alias="below-floor", max_daily_spend=budget)
    sdk = openai_client(api_key=key, base_url=gw.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.chat.completions.create(model="greedy", messages=messages)  # type: ignore[arg-type]
    message = refused.value.response.json()["error"]["message"]
    assert refused.value.response.headers["x-switchboard-budget-max-tokens"] == "500", message
    assert "send max_tokens of at most 500" in message and "resets at" in message
    fitted = sdk.chat.completions.with_raw_response.create(
        model="greedy", messages=messages, max_tokens=500)  # type: ignore[arg-type]
    assert fitted.parse().choices[0].finish_reason == "length"
    assert "x-switchboard-output-capped" not in fitted.headers, "the client's own bound fit: nothing was capped"

    low_floor, _ = new_key(gw, key_alias="low-floor", max_daily_spend=budget, min_output_tokens=256)
    before = len(openai_upstream.requests)
    capped = openai_client(api_key=low_floor, base_url=gw.base_url + "/v1", max_retries=0
                           ).chat.completions.with_raw_response.create(model="greedy", messages=messages)
    assert capped.headers["x-switchboard-output-capped"] == "500"
    assert sent_to(openai_upstream, before)[0]["max_completion_tokens"] == 500
    assert capped.parse().choices[0].finish_reason == "length"


def test_the_refusal_names_the_output_bound_of_the_clients_own_api(gw: Gateway) -> None:
    """The same budget refusal through the Responses API names max_output_tokens, and through Anthropic Messages
    max_tokens: the field each client sends, and no other API's."""
    key, _ = new_key(gw, key_alias="bound-names", max_daily_spend=f"{(40 * 2.5 + 500 * 10) / 1_000_000:.6f}")
    sdk = openai_client(api_key=key, base_url=gw.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.responses.create(model="greedy", input="hi", max_output_tokens=4000)
    message = refused.value.response.json()["error"]["message"]
    fits = refused.value.response.headers["x-switchboard-budget-max-tokens"]
    assert f"send max_output_tokens of at most {fits} to fit" in message, message
    assert "max_tokens" not in message and "Responses API" not in message
    with anthropic.Anthropic(api_key=key, base_url=gw.base_url, max_retries=0) as claude:
        with pytest.raises(anthropic.RateLimitError) as denied:
            claude.messages.create(model="greedy", max_tokens=4000, messages=[{"role": "user", "content": "hi"}])
    message = denied.value.response.json()["error"]["message"]
    fits = denied.value.response.headers["x-switchboard-budget-max-tokens"]
    assert f"send max_tokens of at most {fits} to fit" in message, message
    assert "max_output_tokens" not in message and "Responses API" not in message


def test_a_lone_caller_gets_every_request_the_budget_can_pay_for(gw: Gateway) -> None:
    """$0.02 at $100/M in and out, max_tokens 16, one request at a time: the money the gateway keeps at hand
    for the key (its lease) never counts against the key's own next request."""
    key, key_id = new_key(gw, key_alias="lone-caller", max_budget=0.02)
    sdk = openai_client(api_key=key, base_url=gw.base_url + "/v1", max_retries=0)
    served = 0
    refusal = None
    for _ in range(30):
        try:
            sdk.chat.completions.create(model="pricey", messages=[{"role": "user", "content": "hi"}],
                                        max_tokens=16)
            served += 1
        except openai.RateLimitError as exc:
            refusal = exc.response.json()["error"]["message"]
            break
    assert refusal is not None
    rows = rows_of_key(gw, key_id, served)
    spent = sum(r["cost_micros"] for r in rows)
    one_request = max(r["cost_micros"] for r in rows)
    assert served >= 9 and spent <= 20_000, (served, spent)
    # Refused only when what is left cannot hold one more request: its prompt bound (26 tokens) and 16 tokens.
    assert 20_000 - spent < (26 + 16) * 100, (spent, one_request, refusal)
    assert "held by requests in flight" not in refusal, "nothing was in flight"


# -- BYOK is charged as BYOK only when the caller's own credential carried the request ------------------------


def test_byok_charges_the_fee_only_when_the_callers_own_credential_was_used(
        gw: Gateway, openai_upstream: FakeOpenAI) -> None:
    own, own_id = new_key(gw, key_alias="byok-own", provider_credentials={"openai": OWN_OPENAI_KEY})
    plain, plain_id = new_key(gw, key_alias="byok-plain")
    messages = [{"role": "user", "content": "what does a routing fee pay for?"}]

    def ask(key: str, model: str) -> tuple[dict[str, Any], str]:
        before = len(openai_upstream.requests)
        reply = openai_client(api_key=key, base_url=gw.base_url + "/v1", max_retries=0
                              ).chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
        return reply.usage.model_dump() if reply.usage else {}, openai_upstream.requests[before].headers[
            "authorization"]

    own_usage, own_auth = ask(own, "gpt-4o-byok")
    operator_usage, operator_auth = ask(plain, "gpt-4o-byok")
    master_usage, master_auth = ask(gw.master_key, "gpt-4o-byok")
    normal_usage, normal_auth = ask(plain, "gpt-4o")
    assert own_auth == f"Bearer {OWN_OPENAI_KEY}"
    assert operator_auth == master_auth == normal_auth == "Bearer sk-operator"

    own_rows = rows_of_key(gw, own_id, 1)
    plain_rows = sorted(rows_of_key(gw, plain_id, 2), key=lambda r: r["model"])
    tokens = own_usage["prompt_tokens"] + own_usage["completion_tokens"]
    # The fee: $0.20 per million tokens, prompt and output alike, plus 100 µ$ a request.
    assert own_rows[0]["cost_micros"] == usd_to_micros_half_up(Decimal(tokens) * Decimal("0.20") / 10**6) + 100
    assert own_rows[0]["byok"] is True
    by_model = {r["model"]: r for r in plain_rows}
    assert by_model["gpt-4o-byok"]["cost_micros"] == gpt_4o_micros(
        operator_usage["prompt_tokens"], operator_usage["completion_tokens"])
    assert by_model["gpt-4o"]["cost_micros"] == gpt_4o_micros(
        normal_usage["prompt_tokens"], normal_usage["completion_tokens"])
    assert by_model["gpt-4o-byok"]["byok"] is False and by_model["gpt-4o"]["byok"] is False
    master_row = next(r for r in spend_logs(gw, model="gpt-4o-byok") if r["byok"] is False
                      and r["cost_micros"] == gpt_4o_micros(master_usage["prompt_tokens"],
                                                            master_usage["completion_tokens"]))
    assert master_row

    csv_text = httpx.get(f"{gw.base_url}/spend/logs", params={"api_key": own_id, "format": "csv"},
                         headers=gw.admin(), timeout=10).text
    assert "byok" in csv_text.splitlines()[0]

    catalog = httpx.get(f"{gw.base_url}/api/billing/models", headers=gw.admin(), timeout=10).json()
    entry = next(m for m in catalog["data"] if m["id"] == "gpt-4o-byok")
    [dep] = entry["deployments"]
    assert dep["byok"] is True and dep["byok_fee_per_million"] == "0.2"
    assert dep["input_cost_per_million"] == "2.5" and dep["output_cost_per_million"] == "10"
    [fee_only] = next(m for m in catalog["data"] if m["id"] == "gpt-4o-fee")["deployments"]
    assert fee_only["byok"] is False and fee_only["byok_fee_per_million"] == "0.2"
    assert fee_only["byok_fee_per_request_micros"] == 100


# -- spend where users look ------------------------------------------------------------------------------------


def test_key_info_spend_is_the_sum_of_the_keys_ledger_rows_after_streams_errors_and_cancellations(
        gw: Gateway) -> None:
    key, key_id = new_key(gw, key_alias="mixed-run", max_budget=10, budget_duration="30d")
    sdk = openai_client(api_key=key, base_url=gw.base_url + "/v1", max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    sdk.chat.completions.create(model="gpt-4o", messages=messages)  # type: ignore[arg-type]
    for chunk in sdk.chat.completions.create(model="gpt-4o", messages=messages, stream=True,  # type: ignore
                                             stream_options={"include_usage": True}):
        del chunk
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="broken", messages=messages)  # type: ignore[arg-type]
    stream = sdk.chat.completions.create(model="drip", messages=messages, stream=True)  # type: ignore[arg-type]
    next(iter(stream))
    stream.close()  # Cursor's stop button: billed for what was produced
    cursor(gw, key, cursor_agent_body("gpt-4o"))
    cursor(gw, key, cursor_ask_body("greedy") | {"stream": False})

    rows = rows_of_key(gw, key_id, 6)
    assert {r["status"] for r in rows} >= {"success", "error"}
    info = key_info(gw, key)
    ledger = sum(r["cost_micros"] for r in rows)
    assert info["spend_micros"] == ledger and Decimal(str(info["spend"])) == Decimal(ledger) / 1_000_000
    assert info["max_budget"] == 10
    reset = datetime.fromisoformat(info["budget_reset_at"].replace("Z", "+00:00"))
    assert timedelta(days=29) < reset - datetime.now(UTC) <= timedelta(days=30)
    listed = httpx.get(f"{gw.base_url}/key/list", headers=gw.admin(), timeout=10).json()["keys"]
    assert next(k for k in listed if k["key_id"] == key_id)["spend_micros"] == ledger


def test_spend_logs_take_litellms_filters_and_the_completion_id_finds_its_row(gw: Gateway) -> None:
    key, key_id = new_key(gw, key_alias="filters")
    reply = openai_client(api_key=key, base_url=gw.base_url + "/v1", max_retries=0).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}])  # type: ignore[arg-type]
    [row] = rows_of_key(gw, key_id, 1)
    assert [r["request_id"] for r in spend_logs(gw, request_id=reply.id)] == [row["request_id"]]
    assert [r["request_id"] for r in spend_logs(gw, api_key=key)] == [row["request_id"]], "the plain key works"
    today = datetime.now(UTC).date()
    assert row["request_id"] in {r["request_id"] for r in spend_logs(
        gw, api_key=key_id, start_date=today.isoformat(), end_date=today.isoformat())}
    assert spend_logs(gw, api_key=key_id, start_date=(today + timedelta(days=1)).isoformat()) == []
    assert spend_logs(gw, api_key=key_id, end_date=(today - timedelta(days=1)).isoformat()) == []


# -- durations, regeneration and tiny budgets ------------------------------------------------------------------


def test_a_yearly_budget_duration_works_end_to_end(gw: Gateway) -> None:
    key, _ = new_key(gw, key_alias="yearly", max_budget=100, budget_duration="1y")
    reply = openai_client(api_key=key, base_url=gw.base_url + "/v1", max_retries=0).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}])  # type: ignore[arg-type]
    assert reply.choices[0].message.content
    reset = datetime.fromisoformat(key_info(gw, key)["budget_reset_at"].replace("Z", "+00:00"))
    assert timedelta(days=364) < reset - datetime.now(UTC) <= timedelta(days=366)


def test_regenerating_an_expired_key_with_a_duration_brings_it_back(gw: Gateway) -> None:
    key, key_id = new_key(gw, key_alias="expiring", duration="1s")
    time.sleep(1.5)
    sdk = openai_client(api_key=key, base_url=gw.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])  # type: ignore
    regenerated = httpx.post(f"{gw.base_url}/key/regenerate", headers=gw.admin(), timeout=10,
                             json={"key": key_id, "duration": "1h", "max_budget": 2})
    assert regenerated.status_code == 200, regenerated.text
    fresh = regenerated.json()["key"]
    assert fresh != key
    reply = openai_client(api_key=fresh, base_url=gw.base_url + "/v1", max_retries=0).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}])  # type: ignore[arg-type]
    assert reply.choices[0].message.content
    info = key_info(gw, fresh)
    assert info["max_budget"] == 2
    expires = datetime.fromisoformat(info["expires"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)

    unknown = httpx.post(f"{gw.base_url}/key/regenerate", headers=gw.admin(), timeout=10,
                         json={"key": key_id, "max_budgett": 5})
    assert unknown.status_code == 400 and "max_budgett" in unknown.json()["error"]["message"]


def test_a_budget_below_one_micro_dollar_is_refused_at_creation(gw: Gateway) -> None:
    for field in ("max_budget", "max_daily_spend"):
        refused = httpx.post(f"{gw.base_url}/key/generate", headers=gw.admin(), timeout=10,
                             json={field: 0.0000001})
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["param"] == field and "0.000001" in error["message"], error


def test_several_answers_in_one_request_cannot_pass_a_budget(gw: Gateway, openai_upstream: FakeOpenAI) -> None:
    """A budget holds one answer: ``n`` above 1 would let one request write n times what was held (a real OpenAI
    deployment bills every choice). Refused where a budget applies, on /v1 and /cursor, before the provider is
    called; served where none does."""
    key, key_id = new_key(gw, models=["gpt-4o"], max_budget=0.2, budget_duration="1d")
    before = len(openai_upstream.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client(key, f"{gw.base_url}/v1").chat.completions.create(
            model="gpt-4o", n=8, messages=[{"role": "user", "content": "eight answers"}])
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == "n" and error["code"] == "several_answers"
    assert "n: 1" in error["message"]
    streamed = cursor(gw, key, {**cursor_ask_body("gpt-4o"), "n": 16})
    assert streamed.status_code == 400 and streamed.json()["error"]["param"] == "n"
    assert len(openai_upstream.requests) == before and key_info(gw, key)["spend"] == 0
    free, _ = new_key(gw, models=["gpt-4o"])
    answer = openai_client(free, f"{gw.base_url}/v1").chat.completions.create(
        model="gpt-4o", n=2, messages=[{"role": "user", "content": "two answers"}])
    assert answer.choices


def test_cursors_thinking_variant_is_held_as_its_model_is(gw: Gateway) -> None:
    """Cursor lists reasoning variants as '<model>-thinking'; the router serves the base model with reasoning on.
    The budget must hold such a request as it holds the base model's, never nothing."""
    key, _ = new_key(gw, key_alias="cursor-thinking", models=["claude-sonnet-4", "claude-sonnet-4-thinking"],
                     max_daily_spend=5)
    plain = cursor(gw, key, cursor_ask_body("claude-sonnet-4"))
    thinking = cursor(gw, key, cursor_ask_body("claude-sonnet-4-thinking"))
    assert plain.status_code == 200 and thinking.status_code == 200, thinking.text
    assert Decimal(thinking.headers["x-switchboard-reserved"]) > 0
    assert thinking.headers["x-switchboard-reserved"] == plain.headers["x-switchboard-reserved"]
