"""Prompt caching through the real gateway: the client's ``cache_control`` marks reach Anthropic and Bedrock
intact, Cursor's conversations get the gateway's own marks, and cached tokens are billed at their own prices.

The fake Anthropic caches prompt prefixes the way Anthropic does (see tests/fakes/anthropic_provider.py), so
the usage it reports, and the ledger rows billed from it, follow from the marks it received.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from genai_prices import Usage, calc_price

from switchboard_billing.money import usd_to_micros_half_up
from tests.fakes.anthropic_provider import FakeAnthropic, prompt_blocks
from tests.fakes.bedrock_provider import FakeBedrock
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import openai_client

CLAUDE = "claude-sonnet-4-5-20250929"
BEDROCK_CLAUDE = "anthropic.claude-sonnet-4-5-20250929-v1:0"
EPHEMERAL = {"type": "ephemeral"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: Cursor's agent instructions are long (rules, environment, open files): ~2,700 tokens here.
INSTRUCTIONS = "You are an agentic coding assistant operating in Cursor. " + "Follow the house rules. " * 450
AGENT_BODY = json.loads((Path(__file__).parent.parent / "fixtures" / "cursor" / "agent_mode_responses_body.json")
                        .read_text())["request"]
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.",
                                                 "parameters": {"type": "object",
                                                                "properties": {"city": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeAnthropic, FakeBedrock]]:
    anthropic = FakeAnthropic().start()
    bedrock = FakeBedrock()
    bedrock.start()
    yield anthropic, bedrock
    anthropic.stop()
    bedrock.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fakes: tuple[FakeAnthropic, FakeBedrock]) -> Iterator[Gateway]:
    anthropic, bedrock = fakes
    claude = {"provider": "anthropic", "model": CLAUDE, "api_base": anthropic.url, "api_key": "sk-ant-fake",
              "jurisdiction": "us"}
    signed = bedrock.deployment(BEDROCK_CLAUDE)
    models: list[dict[str, object]] = [
        {"name": "claude", "deployments": [claude]},
        {"name": "claude-client-marks", "deployments": [{**claude, "prompt_cache": "off"}]},
        {"name": "bedrock-claude", "deployments": [
            {"provider": "bedrock", "model": BEDROCK_CLAUDE, "api_base": signed.api_base, **signed.extra}]},
    ]
    gateway = start_gateway(tmp_path_factory.mktemp("caching"), models)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def key(gw: Gateway) -> str:
    return gw.create_key(key_alias="caching")



def marked(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [block for block in prompt_blocks(body) if "cache_control" in block]


def test_client_marks_reach_anthropic_through_the_openai_sdk(gw: Gateway, key: str,
                                                            fakes: tuple[FakeAnthropic, FakeBedrock]) -> None:
    sdk = openai_client(api_key=key, base_url=gw.base_url + "/v1", max_retries=0)
    sdk.chat.completions.create(
        model="claude-client-marks",
        tools=[{**WEATHER_TOOL, "cache_control": EPHEMERAL}],  # type: ignore[list-item]
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "Rules.", "cache_control": EPHEMERAL}]},  # type: ignore[typeddict-unknown-key]
            {"role": "user", "content": "A long document.", "cache_control": EPHEMERAL},  # type: ignore[typeddict-unknown-key]
            {"role": "assistant", "content": "Read it."},
            {"role": "user", "content": "A question."},
        ],
    )
    sent = fakes[0].requests[-1].body
    assert sent["system"] == [{"type": "text", "text": "Rules.", "cache_control": EPHEMERAL}]
    assert sent["tools"][0]["cache_control"] == EPHEMERAL
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "A long document.", "cache_control": EPHEMERAL}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Read it."}]},
        {"role": "user", "content": [{"type": "text", "text": "A question."}]},
    ]


def test_client_marks_reach_bedrock_as_cache_points(gw: Gateway, key: str,
                                                   fakes: tuple[FakeAnthropic, FakeBedrock]) -> None:
    response = httpx.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json={
        "model": "bedrock-claude",
        "tools": [{**WEATHER_TOOL, "cache_control": EPHEMERAL}],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Rules.", "cache_control": EPHEMERAL}]},
            {"role": "user", "content": [{"type": "text", "text": "A long document.", "cache_control": EPHEMERAL},
                                         {"type": "text", "text": "A question."}]},
        ],
    }, timeout=20)
    assert response.status_code == 200, response.text
    sent = fakes[1].requests[-1].json()
    point = {"cachePoint": {"type": "default"}}
    assert sent["system"] == [{"text": "Rules."}, point]
    assert sent["toolConfig"]["tools"][1] == point
    assert sent["messages"][0]["content"] == [{"text": "A long document."}, point, {"text": "A question."}]


#: Cursor's full tool set is long too: the descriptions alone pass Claude's 1,024-token minimum.
CURSOR_TOOLS = [{"type": "function", "name": f"tool_{n}", "description": "Does one thing well. " * 60,
                 "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}} for n in range(4)]


def agent_turn(rounds: int, *, all_tools: bool = False) -> dict[str, Any]:
    """Cursor's agent body (the recorded fixture) after ``rounds`` more tool rounds, long instructions and all."""
    body = copy.deepcopy(AGENT_BODY)
    body.update(model="claude", instructions=INSTRUCTIONS, stream=True, stream_options={"include_usage": True})
    if all_tools:
        body["tools"] += CURSOR_TOOLS
    newest = body["input"].pop()
    for n in range(rounds):
        body["input"].append({"type": "function_call", "call_id": f"call_{n}", "name": "read_file",
                              "arguments": json.dumps({"path": f"src/module_{n}.py"})})
        body["input"].append({"type": "function_call_output", "call_id": f"call_{n}",
                              "output": f"# module {n}\n" + "def helper():\n    return 42\n" * 40})
    body["input"].append(newest)
    return body


def cursor_stream(gw: Gateway, key: str, body: dict[str, Any]) -> str:
    """Posts like Cursor does (a stream to /cursor/chat/completions); the request id."""
    with httpx.stream("POST", gw.base_url + "/cursor/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {key}"}, timeout=20) as response:
        assert response.status_code == 200, response.read()
        raw = b"".join(response.iter_raw()).decode()
    assert raw.rstrip().endswith("data: [DONE]")
    return response.headers["x-request-id"]


def test_cursor_agent_body_gets_breakpoints_on_its_stable_prefix(gw: Gateway, key: str,
                                                                 fakes: tuple[FakeAnthropic, FakeBedrock]) -> None:
    cursor_stream(gw, key, agent_turn(0))
    sent = fakes[0].requests[-1].body
    assert sent["system"] == [{"type": "text", "text": INSTRUCTIONS, "cache_control": EPHEMERAL}]
    assert "cache_control" not in sent["tools"][-1], "the tools alone are shorter than Claude caches"
    assistants = [m for m in sent["messages"] if m["role"] == "assistant"]
    assert [block.get("cache_control") for block in assistants[0]["content"]] == [None, EPHEMERAL]
    assert [block.get("cache_control") for block in assistants[1]["content"]] == [EPHEMERAL]
    newest = sent["messages"][-1]["content"]
    assert newest[-1] == {"type": "text", "text": "Now run it."}
    assert not any("cache_control" in block for block in newest), "the newest input is not marked"
    assert len(marked(sent)) == 3


def test_a_ten_turn_cursor_conversation_is_billed_at_cache_prices(gw: Gateway,
                                                                  fakes: tuple[FakeAnthropic, FakeBedrock]) -> None:
    anthropic = fakes[0]
    anthropic.prompt_cache.clear()
    key = gw.create_key(key_alias="caching-ten-turns")  # its own key: /usage below sums these ten turns alone
    writes = 0
    saved_micros = cached_before = 0
    for turn in range(1, 11):
        request_id = cursor_stream(gw, key, agent_turn(turn, all_tools=True))
        sent = anthropic.requests[-1]
        assert len(marked(sent.body)) == 4, "system, tools and the last two assistant turns"
        usage = sent.usage
        assert usage is not None
        read, written = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
        assert read == cached_before, f"turn {turn} reads all that turn {turn - 1} cached, no more"
        assert written > 0, "each turn writes its new prefix"
        cached_before = read + written
        prompt = usage["input_tokens"] + read + written
        row = gw.ledger_row(request_id)
        assert (row["prompt_tokens"], row["cached_prompt_tokens"], row["cache_write_tokens"],
                row["completion_tokens"]) == (prompt, read, written, usage["output_tokens"])
        charged = calc_price(Usage(input_tokens=prompt, cache_read_tokens=read, cache_write_tokens=written,
                                   output_tokens=usage["output_tokens"]), CLAUDE, provider_id="anthropic")
        assert row["cost_micros"] == usd_to_micros_half_up(charged.total_price)
        assert Decimal(str(row["spend"])) == Decimal(row["cost_micros"]) / 1_000_000
        uncached = calc_price(Usage(input_tokens=prompt, output_tokens=usage["output_tokens"]), CLAUDE,
                              provider_id="anthropic")
        # What caching saved on this turn: the exact difference, rounded once.
        assert row["cache_savings_micros"] == usd_to_micros_half_up(uncached.total_price - charged.total_price)
        assert Decimal(str(row["cache_savings"])) == Decimal(row["cache_savings_micros"]) / 1_000_000
        saved_micros += row["cache_savings_micros"]
        writes += written
    # $3/M input, $0.30/M cache reads, $3.75/M cache writes: ten turns of a growing agent loop save money.
    assert saved_micros > 0
    total = httpx.get(f"{gw.base_url}/usage", headers={"Authorization": f"Bearer {key}"}, timeout=10).json()["total"]
    assert (total["requests"], total["cached_prompt_tokens"] > 0, total["cache_write_tokens"]) == (10, True, writes)
    assert total["cache_savings_micros"] == saved_micros
    assert Decimal(total["savings"]) == Decimal(saved_micros) / 1_000_000
    # The dashboard says it too: "Savings $X from prompt caching" over the last 7 days, to the micro-dollar in its
    # title.
    with httpx.Client(base_url=gw.base_url, timeout=10) as browser:
        token = CSRF.search(browser.get("/ui/login").text)
        assert token is not None
        assert browser.post("/ui/login", data={"csrf_token": token.group(1), "api_key": key}).status_code == 303
        page = browser.get("/ui/usage", params={"range": "7d"}).text
    tile = page[page.index('id="caching"'):]
    tile = tile[:tile.index("</div></div>")]
    whole, fraction = divmod(saved_micros, 1_000_000)
    assert "Savings" in tile and f'title="${whole:,}.{fraction:06d}"' in tile and "from prompt caching" in tile
