"""The shipped ``demo`` model end to end, as a newcomer with no provider account meets it: the official
``openai`` and ``anthropic`` SDKs, streams, tools, embeddings and the Responses API, every request in the
ledger at the demo price, and a budget that holds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests.harness import ROOT, Gateway, start_gateway
from tests.sdk_clients import anthropic_client, openai_client

PROMPT = "Summarise the quarterly report, please."


def shipped_demo() -> dict[str, Any]:
    """The demo entry of config/switchboard.yaml as shipped, without its stream pacing."""
    catalog = yaml.safe_load((ROOT / "config" / "switchboard.yaml").read_text())
    entry = next(m for m in catalog["models"] if m["name"] == "demo")
    entry["deployments"][0]["chunk_delay_ms"] = 0
    return dict(entry)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("demo-gateway")
    gateway = start_gateway(tmp, [shipped_demo()])
    yield gateway
    gateway.stop()


def micros_per_token(which: str) -> int:
    """The demo's configured price, USD per million tokens = micro-dollars per token."""
    deployment = shipped_demo()["deployments"][0]
    return int(float(deployment[f"{which}_cost_per_million"]))


def ledger(gw: Gateway, key: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = httpx.get(f"{gw.base_url}/spend/logs", headers={"Authorization": f"Bearer {key}"}, timeout=5).json()
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"{len(rows)} of {count} requests reached the ledger")


def test_openai_and_anthropic_sdks_get_answers_billed_at_the_demo_price(gw: Gateway) -> None:
    key = gw.create_key(key_alias="newcomer", models=["demo"])
    client = openai_client(api_key=key, base_url=gw.base_url + "/v1", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="demo", messages=[{"role": "user", "content": PROMPT}])
    reply = raw.parse()
    assert reply.choices[0].message.content.startswith(f'You said: "{PROMPT}"')
    assert raw.headers["x-switchboard-deployment"] == "demo/0"
    assert raw.headers["x-switchboard-custody-path"]

    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
        model="demo", stream=True, messages=[{"role": "user", "content": PROMPT}]) if chunk.choices)
    assert streamed == reply.choices[0].message.content

    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    called = client.chat.completions.create(model="demo", tools=[weather],
                                            messages=[{"role": "user", "content": "Weather in Lyon?"}])
    assert called.choices[0].message.tool_calls[0].function.name == "get_weather"

    vectors = client.embeddings.create(model="demo", input=["alpha", "beta"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 256

    response = client.responses.create(model="demo", input=PROMPT)
    assert response.output_text.startswith(f'You said: "{PROMPT}"')

    claude = anthropic_client(api_key=key, base_url=gw.base_url, max_retries=0)
    message = claude.messages.create(model="demo", max_tokens=200, messages=[{"role": "user", "content": PROMPT}])
    assert message.content[0].text.startswith(f'You said: "{PROMPT}"')
    assert message.usage.output_tokens > 0
    with claude.messages.stream(model="demo", max_tokens=4, messages=[{"role": "user", "content": PROMPT}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 4 and text

    rows = ledger(gw, key, 7)
    assert len(rows) == 7, "one ledger row per request"
    for row in rows:
        expected = (row["prompt_tokens"] * micros_per_token("input")
                    + row["completion_tokens"] * micros_per_token("output"))
        assert row["cost_micros"] == expected > 0, row
        assert row["model"] == "demo"


def test_a_budget_holds_on_the_demo_model(gw: Gateway) -> None:
    budget_micros = 1500
    key = gw.create_key(key_alias="budgeted", models=["demo"], max_budget=budget_micros / 1_000_000)
    client = openai_client(api_key=key, base_url=gw.base_url + "/v1", max_retries=0)
    answered = 0
    refused = None
    for _ in range(30):
        try:
            client.chat.completions.create(model="demo", max_tokens=100,
                                           messages=[{"role": "user", "content": PROMPT}])
            answered += 1
        except openai.APIStatusError as exc:
            refused = exc
            break
    assert answered >= 2 and refused is not None, f"the budget lets some requests through, then refuses: {refused}"
    assert "budget" in str(refused.message).lower()
    spent = sum(row["cost_micros"] for row in ledger(gw, key, answered))
    assert 0 < spent <= budget_micros
