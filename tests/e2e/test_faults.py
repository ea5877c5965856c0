"""Fault injection through the real gateway: what the client sees and what is billed.

Each fault is a behaviour of a fake provider (a real HTTP server on loopback):
5xx answers, a 429 with Retry-After, a first byte that comes too late, a stream
cut or gone silent mid-way, a provider that never finishes, 429s that name
an exhausted account rather than a passing rate limit, answers with status 200
that are not what was asked (an HTML page, events that are not JSON, nothing),
and usage reports no request could have.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import FAKE_PRICES
from tests.fakes.anthropic_provider import FakeAnthropic
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import BackgroundServer
from tests.fakes.unanswered import unanswered_port as silent_port
from tests.harness import Gateway, start_gateway


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeOpenAI, str]]:
    app = FakeOpenAI()
    server = BackgroundServer(app).start()
    yield app, server.url + "/v1"
    server.stop()


@pytest.fixture(scope="module")
def fake_claude() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def unanswered_port() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new SYNs, so connecting hangs."""
    with silent_port() as port:
        yield port


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake: tuple[FakeOpenAI, str],
            fake_claude: FakeAnthropic, unanswered_port: int) -> Iterator[Gateway]:
    base = fake[1]

    def dep(model: str, dep_id: str | None = None, **extra: object) -> dict[str, object]:
        out: dict[str, object] = {"provider": "openai", "model": model, "api_base": base, "api_key": "sk-fake",
                                  **FAKE_PRICES, **extra}
        if dep_id:
            out["id"] = dep_id
        return out

    def claude(model: str) -> dict[str, object]:
        return {"provider": "anthropic", "model": model, "api_base": fake_claude.url, "api_key": "sk-ant-fake",
                **FAKE_PRICES}

    models: list[dict[str, object]] = [
        {"name": "good", "deployments": [dep("good", "good/main")]},
        {"name": "down-then-fallback", "fallbacks": ["good"],
         "deployments": [dep("down", "down/a"), dep("down", "down/b")]},
        {"name": "down-only", "deployments": [dep("down", "down-only/a")]},
        {"name": "ratelimit-once", "deployments": [dep("ratelimit-once")]},
        {"name": "slow-then-good", "deployments": [
            dep("slow-2", "slow/a", weight=1000, timeouts={"first_byte": 0.4}),
            dep("good", "slow/b", weight=0.001)]},
        {"name": "slow-only", "deployments": [dep("slow-2", "slow-only/a", timeouts={"first_byte": 0.4})]},
        {"name": "cut", "deployments": [dep("cut")]},
        {"name": "claude-cut", "deployments": [claude("cut")]},
        {"name": "stall", "deployments": [dep("stall", timeouts={"stream_idle": 0.5})]},
        {"name": "hang", "deployments": [dep("hang", timeouts={"first_byte": 10, "total": 0.6})]},
        {"name": "drip-total", "deployments": [dep("drip", timeouts={"total": 0.8})]},
        {"name": "claude-spend-limit", "deployments": [claude("spendlimit")]},
        {"name": "openai-no-quota", "deployments": [dep("insufficient-quota")]},
        {"name": "claude-ratelimit-long", "deployments": [claude("ratelimit")]},
        {"name": "ratelimit-then-other", "deployments": [
            dep("ratelimit", "rl/limited", weight=1000), dep("good", "rl/free", weight=0.001)]},
        {"name": "garbage", "deployments": [dep("garbage")]},
        {"name": "garbage-events", "deployments": [dep("garbage-events")]},
        {"name": "empty", "deployments": [dep("empty")]},
        {"name": "claude-truncated", "deployments": [claude("truncated")]},
        {"name": "usage-negative", "deployments": [dep("usage-negative")]},
        {"name": "usage-huge", "deployments": [dep("usage-huge")]},
        {"name": "usage-beyond", "deployments": [dep("usage-beyond")]},
        {"name": "no-connect", "deployments": [
            {"provider": "openai", "model": "good", "api_base": f"http://127.0.0.1:{unanswered_port}/v1", **FAKE_PRICES,
             "api_key": "sk-fake", "timeouts": {"connect": 0.3}}]},
    ]
    tmp: Path = tmp_path_factory.mktemp("faults")
    gw = start_gateway(tmp, models, router_settings={"max_attempts": 3, "backoff_initial_seconds": 0.05,
                                                      "backoff_max_seconds": 5, "cooldown_failures": 0})
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.create_key(key_alias="faults")


@pytest.fixture(scope="module")
def sdk(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=gateway.base_url + "/v1", max_retries=0, timeout=20)



def chat(gateway: Gateway, key: str, model: str, *, stream: bool = False, content: str = "x",
         **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body, timeout=20,
                      headers={"Authorization": f"Bearer {key}"})


def sse_events(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]


def wait_for(condition: Any, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_5xx_is_retried_on_the_other_deployment_then_falls_back(
        gateway: Gateway, key: str, fake: tuple[FakeOpenAI, str]) -> None:
    before = len(fake[0].calls("down"))
    response = chat(gateway, key, "down-then-fallback", content="fallback please")
    assert response.status_code == 200, response.text
    assert response.headers["x-switchboard-deployment"] == "good/main"
    assert response.headers["x-switchboard-attempts"] == "3"
    assert len(fake[0].calls("down")) - before == 2, "each failing deployment is tried once before the fallback"
    row = gateway.ledger_row(response.headers["x-request-id"])
    usage = response.json()["usage"]
    assert row["status"] == "success" and row["model_id"] == "good/main"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])


def test_5xx_everywhere_is_passed_on_after_the_retries_and_billed_nothing(
        gateway: Gateway, key: str, fake: tuple[FakeOpenAI, str]) -> None:
    before = len(fake[0].calls("down"))
    response = chat(gateway, key, "down-only")
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "The fake provider is overloaded."
    assert len(fake[0].calls("down")) - before == 3, "max_attempts tries"
    row = gateway.ledger_row(response.headers["x-request-id"])
    assert row["status"] == "error" and row["http_status"] == 503
    assert row["prompt_tokens"] == 0 and row["completion_tokens"] == 0 and row["cost_micros"] in (0, None)


def test_429_retry_after_is_honoured(gateway: Gateway, key: str, fake: tuple[FakeOpenAI, str]) -> None:
    prompt = f"rate limited {time.time()}"
    response = chat(gateway, key, "ratelimit-once", content=prompt)
    assert response.status_code == 200, response.text
    calls = [r for r in fake[0].calls("ratelimit-once") if prompt in json.dumps(r.body)]
    assert len(calls) == 2
    waited = calls[1].at - calls[0].at
    assert waited >= 0.95, f"the retry came {waited:.3f}s after a 429 with Retry-After: 1"
    assert response.headers["x-switchboard-attempts"] == "2"


def test_a_retry_after_longer_than_backoff_max_goes_to_the_client_at_once(
        gateway: Gateway, key: str, fake_claude: FakeAnthropic) -> None:
    before = len(fake_claude.requests)
    started = time.monotonic()
    response = chat(gateway, key, "claude-ratelimit-long")
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert time.monotonic() - started < 3, "no 7 s wait inside the gateway (backoff_max_seconds is 5)"
    assert len(fake_claude.requests) - before == 1
    row = gateway.ledger_row(response.headers["x-request-id"])
    assert row["status"] == "error" and row["http_status"] == 429 and row["completion_tokens"] == 0


def test_a_429_moves_to_another_deployment_without_waiting(gateway: Gateway, key: str) -> None:
    started = time.monotonic()
    response = chat(gateway, key, "ratelimit-then-other")
    assert response.status_code == 200
    assert response.headers["x-switchboard-deployment"] == "rl/free"
    assert response.headers["x-switchboard-attempts"] == "2"
    assert time.monotonic() - started < 0.9, "Retry-After (1 s) binds the deployment that sent it, not the others"


def test_slow_first_byte_moves_to_another_deployment(gateway: Gateway, key: str) -> None:
    started = time.monotonic()
    response = chat(gateway, key, "slow-then-good")
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.headers["x-switchboard-deployment"] == "slow/b"
    assert 0.4 <= elapsed < 1.9, "the first_byte timeout (0.4 s) cut the slow attempt short"


def test_stream_with_a_slow_first_byte_falls_back_transparently(gateway: Gateway, key: str) -> None:
    response = chat(gateway, key, "slow-then-good", stream=True)
    assert response.status_code == 200
    assert response.headers["x-switchboard-deployment"] == "slow/b"
    events = sse_events(response)
    assert events[-1] == "[DONE]" and not any('"error"' in e for e in events)
    text = "".join(c["delta"].get("content") or "" for e in events[:-1] for c in json.loads(e)["choices"])
    assert text == "Hello from the fake provider."


def test_slow_first_byte_everywhere_is_504(gateway: Gateway, key: str) -> None:
    response = chat(gateway, key, "slow-only")
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"


def test_stream_cut_mid_way_ends_with_an_error_event_and_bills_what_was_produced(
        gateway: Gateway, key: str) -> None:
    response = chat(gateway, key, "cut", stream=True, content="a prompt that costs some tokens " * 10)
    assert response.status_code == 200
    events = sse_events(response)
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    assert [c["choices"][0]["delta"] for c in chunks[:2]] == [{"role": "assistant", "content": ""},
                                                               {"content": "Hello fr"}]
    error = chunks[-1]["error"]
    assert error["code"] == "upstream_stream_interrupted" and error["message"]
    row = gateway.ledger_row(response.headers["x-request-id"])
    assert row["status"] == "error" and row["error_code"] == "upstream_stream_interrupted"
    assert row["usage_reported_by_provider"] is False
    assert row["prompt_tokens"] >= 60, "the prompt was sent, so it is billed (estimated)"
    assert row["completion_tokens"] == 2, "'Hello f' streamed before the cut: about two tokens"


def test_anthropic_stream_cut_bills_the_usage_the_provider_reported_so_far(
        gateway: Gateway, key: str, fake_claude: FakeAnthropic) -> None:
    response = chat(gateway, key, "claude-cut", stream=True, content="hello there")
    events = sse_events(response)
    assert json.loads(events[-2])["error"]["code"] == "upstream_stream_interrupted"
    assert any(json.loads(e).get("choices") for e in events[:-2]), "chunks before the cut reach the client"
    sent = fake_claude.requests[-1].body
    assert isinstance(sent, dict)
    expected_prompt = 10 + len(json.dumps(sent["messages"], separators=(",", ":")).split())
    row = gateway.ledger_row(response.headers["x-request-id"])
    assert row["status"] == "error"
    assert row["prompt_tokens"] == expected_prompt, "message_start's input_tokens are billed"
    assert row["completion_tokens"] >= 1


def test_stream_gone_silent_ends_after_stream_idle_and_the_provider_sees_the_cancel(
        gateway: Gateway, key: str, fake: tuple[FakeOpenAI, str]) -> None:
    before = fake[0].cancelled.count("stall")
    started = time.monotonic()
    response = chat(gateway, key, "stall", stream=True)
    elapsed = time.monotonic() - started
    events = sse_events(response)
    assert json.loads(events[1])["choices"][0]["delta"] == {"content": "Hello fr"}
    assert json.loads(events[-2])["error"]["code"] == "upstream_timeout"
    assert 0.5 <= elapsed < 3
    assert wait_for(lambda: fake[0].cancelled.count("stall") > before)
    row = gateway.ledger_row(response.headers["x-request-id"])
    assert row["status"] == "error" and row["http_status"] == 504 and row["completion_tokens"] >= 1


def test_provider_that_hangs_is_504_at_the_total_timeout_and_sees_the_cancel(
        gateway: Gateway, key: str, fake: tuple[FakeOpenAI, str]) -> None:
    before = fake[0].cancelled.count("hang")
    started = time.monotonic()
    response = chat(gateway, key, "hang")
    elapsed = time.monotonic() - started
    assert response.status_code == 504 and response.json()["error"]["code"] == "upstream_timeout"
    # Each of the three attempts is cut at the total timeout (0.6 s) — not at first_byte (10 s).
    assert 1.75 <= elapsed < 5
    assert wait_for(lambda: fake[0].cancelled.count("hang") >= before + 3)
    row = gateway.ledger_row(response.headers["x-request-id"])
    assert row["status"] == "error" and row["http_status"] == 504 and row["completion_tokens"] == 0


def test_stream_beyond_the_total_timeout_ends_with_an_error_event(
        gateway: Gateway, key: str, fake: tuple[FakeOpenAI, str]) -> None:
    before = fake[0].cancelled.count("drip")
    started = time.monotonic()
    response = chat(gateway, key, "drip-total", stream=True)
    elapsed = time.monotonic() - started
    events = sse_events(response)
    assert json.loads(events[-2])["error"]["code"] == "upstream_timeout" and events[-1] == "[DONE]"
    assert len(events) > 5, "the chunks before the deadline reached the client"
    assert 0.8 <= elapsed < 2
    assert wait_for(lambda: fake[0].cancelled.count("drip") > before)
    row = gateway.ledger_row(response.headers["x-request-id"])
    assert row["status"] == "error" and row["completion_tokens"] > 0


@pytest.mark.parametrize(("model", "upstream"), [("claude-spend-limit", "anthropic"), ("openai-no-quota", "openai")])
def test_a_429_for_an_exhausted_account_is_not_retried(
        gateway: Gateway, key: str, model: str, upstream: str, fake: tuple[FakeOpenAI, str],
        fake_claude: FakeAnthropic) -> None:
    counts = (len(fake[0].requests), len(fake_claude.requests))
    response = chat(gateway, key, model)
    assert response.status_code == 429
    after = (len(fake[0].requests), len(fake_claude.requests))
    sent = after[1] - counts[1] if upstream == "anthropic" else after[0] - counts[0]
    assert sent == 1, "a spend limit or exhausted quota is not a transient rate limit"


def test_connect_timeout_is_retried_then_504_naming_the_connect_timeout(gateway: Gateway, key: str) -> None:
    started = time.monotonic()
    response = chat(gateway, key, "no-connect")
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "upstream_timeout" and "connect timeout" in error["message"]
    assert 0.9 <= elapsed < 4, "three attempts, each cut at connect: 0.3 s"


def test_a_200_stream_that_is_not_an_event_stream_is_an_error_event_and_costs_nothing(
        gateway: Gateway, key: str) -> None:
    response = chat(gateway, key, "garbage", stream=True)
    assert response.status_code == 200, "bytes had come, so the stream had begun when it turned out unreadable"
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "malformed_stream" and "cannot use" in error["message"]
    assert not [e for e in events[:-2] if json.loads(e).get("choices")], "nothing of the garbage reaches the client"
    row = gateway.ledger_row(response.headers["x-request-id"])
    assert row["status"] == "error" and row["http_status"] == 502
    assert (row["prompt_tokens"], row["completion_tokens"], row["cost_micros"]) == (0, 0, 0)


@pytest.mark.parametrize("model", ["garbage-events", "empty"])
def test_a_200_stream_whose_first_event_is_unreadable_or_missing_is_retried_then_502_and_costs_nothing(
        gateway: Gateway, key: str, fake: tuple[FakeOpenAI, str], model: str) -> None:
    before = len(fake[0].calls(model))
    response = chat(gateway, key, model, stream=True)
    assert response.status_code == 502 and response.json()["error"]["code"] == "malformed_stream"
    assert len(fake[0].calls(model)) - before == 3, "nothing reached the client yet: worth another attempt"
    row = gateway.ledger_row(response.headers["x-request-id"])
    assert row["status"] == "error" and row["completion_tokens"] == 0


def test_a_200_whole_answer_that_is_not_json_is_502_and_costs_nothing(gateway: Gateway, key: str) -> None:
    response = chat(gateway, key, "garbage")
    assert response.status_code == 502 and "cannot read" in response.json()["error"]["message"]
    row = gateway.ledger_row(response.headers["x-request-id"])
    assert row["status"] == "error" and row["completion_tokens"] == 0


def test_a_stream_ending_cleanly_before_its_end_event_is_an_error_billed_for_what_came(
        gateway: Gateway, key: str) -> None:
    response = chat(gateway, key, "claude-truncated", stream=True, content="hello there")
    events = sse_events(response)
    assert json.loads(events[-2])["error"]["code"] == "stream_cut"
    assert any(json.loads(e).get("choices") for e in events[:-2])
    row = gateway.ledger_row(response.headers["x-request-id"])
    assert row["status"] == "error" and row["prompt_tokens"] > 0 and row["completion_tokens"] >= 1


@pytest.mark.parametrize("model", ["usage-negative", "usage-huge", "usage-beyond"])
def test_usage_no_request_could_have_is_replaced_by_the_gateways_count(
        gateway: Gateway, key: str, model: str) -> None:
    """Both the client and the ledger see the estimate; the router logs the report it refused."""
    whole = chat(gateway, key, model, max_tokens=10)
    assert whole.status_code == 200
    shown = whole.json()["usage"]
    streamed = chat(gateway, key, model, stream=True, max_tokens=10)
    [final] = [json.loads(e) for e in sse_events(streamed) if e.startswith("{") and json.loads(e).get("usage")]
    assert "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in sse_events(streamed)
                   if e.startswith('{"id"') and json.loads(e)["choices"]) == "Hello from the fake provider."
    for response, usage in ((whole, shown), (streamed, final["usage"])):
        row = gateway.ledger_row(response.headers["x-request-id"])
        assert row["usage_reported_by_provider"] is False and row["status"] == "success"
        assert 0 < row["prompt_tokens"] < 100 and row["completion_tokens"] == 8  # 29 characters of text
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (row["prompt_tokens"], row["completion_tokens"])
        assert 0 < row["cost_micros"] < 10_000
    router_log = gateway.processes["router"].log()
    for response in (whole, streamed):
        line = next(json.loads(line) for line in router_log.splitlines()
                    if response.headers["x-request-id"] in line and "not credible" in line)
        assert line["deployment"] == f"{model}/0" and line["reason"]


@pytest.fixture(scope="module")
def patient_gateway(tmp_path_factory: pytest.TempPathFactory, fake: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    """Six attempts allowed, but a request deadline of 1.5 s across them."""
    hang = {"provider": "openai", "model": "hang", "api_base": fake[1], "api_key": "sk-fake", **FAKE_PRICES,
            "timeouts": {"first_byte": 10, "total": 0.5}}
    gw = start_gateway(tmp_path_factory.mktemp("deadline"), [{"name": "hang", "deployments": [hang]}],
                       router_settings={"max_attempts": 6, "backoff_initial_seconds": 0.05, "cooldown_failures": 0,
                                        "request_deadline_seconds": 1.5})
    yield gw
    gw.stop()


@pytest.mark.parametrize("stream", [False, True])
def test_the_request_deadline_ends_retries_against_a_hung_provider(
        patient_gateway: Gateway, fake: tuple[FakeOpenAI, str], stream: bool) -> None:
    key = patient_gateway.create_key(key_alias=f"deadline-{stream}")
    before = len(fake[0].calls("hang"))
    response = chat(patient_gateway, key, "hang", stream=stream)
    assert response.status_code == 504 and response.json()["error"]["code"] == "upstream_timeout"
    tries = len(fake[0].calls("hang")) - before
    # Each attempt is cut at 0.5 s; the deadline (1.5 s) leaves room for about three of the six allowed.
    assert 2 <= tries <= 4, tries
    row = patient_gateway.ledger_row(response.headers["x-request-id"])
    assert row["status"] == "error" and row["http_status"] == 504
