"""Gemini explicit context caching through the real gateway, driven as Cursor drives it: ten turns of an agent
loop on a Gemini deployment with ``prompt_cache: explicit``. The fake Gemini keeps ``cachedContents`` entries as
Gemini does (tests/fakes/gemini_provider.py) and counts what each request read from them; the ledger bills the
turn that made an entry for making it (input, cached read and five minutes of storage) and the others at the
cached-input price, to the micro-dollar."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from switchboard_billing.money import usd_to_micros_half_up
from tests.e2e.test_prompt_caching import agent_turn, cursor_stream
from tests.fakes.gemini_provider import TEST_API_KEY, FakeGemini
from tests.harness import Gateway, start_gateway

#: Gemini 2.5 Flash (genai-prices): input, cached input and output, USD per million tokens; storage per hour.
INPUT, CACHED, OUTPUT, STORAGE = Decimal("0.30"), Decimal("0.03"), Decimal("2.50"), Decimal("1.00")
TTL = 300


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    fake = FakeGemini()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, gemini: FakeGemini) -> Iterator[Gateway]:
    flash = {"provider": "gemini", "model": "gemini-2.5-flash", "api_base": gemini.base_url, "api_key": TEST_API_KEY}
    gateway = start_gateway(tmp_path_factory.mktemp("gemini-cache"), [
        {"name": "gemini-flash", "deployments": [{**flash, "prompt_cache": "explicit", "prompt_cache_ttl": TTL}]},
    ])
    yield gateway
    gateway.stop()


def expected_cost(row: dict[str, object]) -> Decimal:
    prompt, read, write = (int(row[k]) for k in ("prompt_tokens", "cached_prompt_tokens", "cache_write_tokens"))  # type: ignore[call-overload]
    completion = int(row["completion_tokens"])  # type: ignore[call-overload]
    per_write = INPUT + CACHED + STORAGE * TTL / 3600
    return ((prompt - read - write) * INPUT + read * CACHED + write * per_write + completion * OUTPUT) / 1_000_000


def test_a_ten_turn_cursor_conversation_reads_gemini_caches_and_pays_for_making_them(gw: Gateway,
                                                                                     gemini: FakeGemini) -> None:
    key = gw.create_key(key_alias="gemini-ten-turns")
    writes = reads = saved = 0
    for turn in range(1, 11):
        body = {**agent_turn(turn, all_tools=True), "model": "gemini-flash"}
        request_id = cursor_stream(gw, key, body)
        sent = [r.json() for r in gemini.requests if ":streamGenerateContent" in r.path][-1]
        row = gw.ledger_row(request_id)
        if turn == 1:
            assert "cachedContent" not in sent, "a prefix seen once is not worth storing"
            assert row["cache_write_tokens"] == row["cached_prompt_tokens"] == 0
        else:
            entry = gemini.caches.entries[sent["cachedContent"]]
            assert not {"systemInstruction", "tools"} & sent.keys()
            assert entry.tokens in (row["cached_prompt_tokens"], row["cache_write_tokens"])
            assert row["prompt_tokens"] > entry.tokens
        assert row["cost_micros"] == usd_to_micros_half_up(expected_cost(row))
        uncached = (int(row["prompt_tokens"]) * INPUT + int(row["completion_tokens"]) * OUTPUT) / 1_000_000
        assert row["cache_savings_micros"] == usd_to_micros_half_up(uncached - expected_cost(row))
        writes += int(row["cache_write_tokens"])
        reads += int(row["cached_prompt_tokens"])
        saved += int(row["cache_savings_micros"])
    made = [r for r in gemini.requests if r.path == "/v1beta/cachedContents"]
    assert 1 <= len(made) <= 3, "entries are made as the conversation doubles, not every turn"
    assert writes == sum(e.tokens for e in gemini.caches.entries.values()), "each entry is paid for once"
    assert reads > 2 * writes and saved > 0, "ten turns of a growing agent loop save money"
    total = httpx.get(f"{gw.base_url}/usage", headers={"Authorization": f"Bearer {key}"}, timeout=10).json()["total"]
    assert (total["requests"], total["cached_prompt_tokens"], total["cache_write_tokens"]) == (10, reads, writes)
    assert total["cache_savings_micros"] == saved


def test_a_litellm_style_cache_control_mark_makes_the_entry_on_first_sight(gw: Gateway, gemini: FakeGemini) -> None:
    """LiteLLM's documented way to use Gemini context caching: mark the long content with ``cache_control``."""
    key = gw.create_key(key_alias="gemini-marks")
    document = "Here is the full text of a complex legal agreement. " * 200
    response = httpx.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json={
        "model": "gemini-flash",
        "messages": [
            {"role": "system",
             "content": [{"type": "text", "text": document, "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": "What are the key terms and conditions in this agreement?"},
        ],
    }, timeout=20)
    assert response.status_code == 200, response.text
    made = [r.json() for r in gemini.requests if r.path == "/v1beta/cachedContents"]
    assert made[-1]["systemInstruction"] == {"parts": [{"text": document}]} and "contents" not in made[-1]
    sent = [r.json() for r in gemini.requests if ":generateContent" in r.path][-1]
    assert "systemInstruction" not in sent and sent["contents"][-1]["parts"][0]["text"].startswith("What are")
    row = gw.ledger_row(response.headers["x-request-id"])
    assert row["cache_write_tokens"] == gemini.caches.entries[sent["cachedContent"]].tokens
