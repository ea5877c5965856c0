"""What a failed or abandoned request tells its client and the ledger.

A stream the provider breaks off after it began ends with the gateway's error event; a client that asked for
usage (OpenAI's ``stream_options.include_usage``; always on Anthropic's Messages) is first told what it was
billed — the very numbers of its ledger row. A client that gives up before the first byte is recorded as gone
(``cancelled``, 499, in the ledger and the access log), not as a success, and its rate-limit slot and budget
hold are given back at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import FAKE_PRICES, fake_models
from tests.fakes.anthropic_provider import FakeAnthropic
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import anthropic_client, openai_client

HI = [{"role": "user", "content": "hello there"}]
#: Broken off mid-way: by a dropped connection (OpenAI) and by an ``overloaded_error`` event (Anthropic).
FAILING_STREAMS = ["fake-cut", "claude-stream-error"]


@pytest.fixture(scope="module")
def fake_anthropic_api() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str],
       fake_anthropic_api: FakeAnthropic) -> Iterator[Gateway]:
    claude = {"name": "claude-stream-error", "deployments": [{
        "provider": "anthropic", "model": "stream-error", "api_base": fake_anthropic_api.url,
        "api_key": "sk-ant-fake-upstream", **FAKE_PRICES}]}
    tmp: Path = tmp_path_factory.mktemp("ended-early")
    gateway = start_gateway(tmp, [*fake_models(fake_openai[1]), claude])
    yield gateway
    gateway.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return gw.create_key()


def rows_of(gw: Gateway, key: str, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
    """The key's ledger rows (newest first), once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = httpx.get(f"{gw.base_url}/spend/logs", params={"api_key": key}, headers=gw.admin(),
                         timeout=10).json()
        if len(rows) >= count:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"{len(rows)} of {count} ledger rows arrived")


# -- a stream the provider breaks off -------------------------------------------------------------------------


@pytest.mark.parametrize("model", FAILING_STREAMS)
def test_a_broken_stream_tells_a_client_that_asked_for_usage_what_it_was_billed(
        gw: Gateway, key: str, model: str) -> None:
    sdk = openai_client(api_key=key, base_url=gw.base_url + "/v1")
    raw = sdk.chat.completions.with_raw_response.create(
        model=model, messages=HI, stream=True, stream_options={"include_usage": True})  # type: ignore[arg-type]
    received = []
    with pytest.raises(openai.APIError):
        for chunk in raw.parse():
            received.append(chunk)
    assert received[0].choices, "the answer's first chunks reach the client"
    last = received[-1]
    assert last.choices == [] and last.usage is not None, "the usage chunk comes just before the error"
    assert last.id == received[0].id and last.object == "chat.completion.chunk"
    row = gw.ledger_row(raw.headers["x-request-id"])
    assert row["status"] == "error"
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (
        row["prompt_tokens"], row["completion_tokens"], row["total_tokens"])
    assert row["completion_tokens"] > 0 and row["cost_micros"] > 0
    assert sum(1 for chunk in received if chunk.usage is not None) == 1

    # A client that did not ask gets no usage chunk, and is billed all the same.
    with httpx.stream("POST", f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      json={"model": model, "messages": HI, "stream": True}, timeout=10) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    assert "error" in events[-1] and all(event.get("usage") is None for event in events)
    assert gw.ledger_row(response.headers["x-request-id"])["completion_tokens"] > 0


@pytest.mark.parametrize("model", FAILING_STREAMS)
def test_a_broken_anthropic_stream_reports_the_billed_usage_before_its_error(
        gw: Gateway, key: str, model: str) -> None:
    sdk = anthropic_client(api_key=key, base_url=gw.base_url)
    raw = sdk.messages.with_raw_response.create(model=model, max_tokens=64, messages=HI, stream=True)
    events = []
    with pytest.raises(anthropic.APIStatusError):
        for event in raw.parse():
            events.append(event)
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and "message_stop" not in kinds
    # The answer's open block is closed, then message_delta carries the cumulative usage: no stop reason, the
    # message did not end normally; the error event follows.
    assert kinds[-2:] == ["content_block_stop", "message_delta"]
    delta = events[-1]
    assert delta.delta.stop_reason is None
    row = gw.ledger_row(raw.headers["x-request-id"])
    assert row["status"] == "error" and row["completion_tokens"] > 0
    usage = delta.usage
    billed_prompt = (usage.input_tokens or 0) + (usage.cache_read_input_tokens or 0) + (
        usage.cache_creation_input_tokens or 0)
    assert (billed_prompt, usage.output_tokens) == (row["prompt_tokens"], row["completion_tokens"])


# -- a client that gives up before the first byte -------------------------------------------------------------


def router_row(gw: Gateway, key: str, timeout: float = 10) -> dict[str, Any]:
    """The key's one ledger row once it is the router's: the facade records a request its client left before the
    router answered provisionally (it may never have reached the router), and the router's record replaces it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = rows_of(gw, key)
        assert len(rows) == 1, rows
        if not rows[0]["provisional"]:
            return rows[0]
        time.sleep(0.05)
    raise AssertionError(f"the router's record did not replace the facade's: {rows}")


def give_up(gw: Gateway, key: str, body: dict[str, Any]) -> None:
    """Sends ``body`` and closes the connection after half a second, long before the answer's first byte."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gw.base_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"},
                   timeout=httpx.Timeout(10, read=0.5))


def access_line(gw: Gateway, request_id: str, timeout: float = 5) -> dict[str, Any]:
    """The facade's access-log line of a request."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in gw.processes["facade"].log().splitlines():
            if request_id in line and '"switchboard.access"' in line:
                return dict(json.loads(line))
        time.sleep(0.05)
    raise AssertionError(f"no access-log line for {request_id}")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_client_that_leaves_before_the_first_byte_is_recorded_as_gone_and_loses_nothing(
        gw: Gateway, fake_openai: tuple[FakeOpenAI, str], stream: bool) -> None:
    # One request at a time, and a budget that holds one request's worst case (1,000 output tokens at $10 per
    # million) but not two: a slot or a hold left behind by the abandoned request would refuse the next one.
    key = gw.create_key(max_parallel_requests=1, max_budget=0.015)
    body = {"model": "fake-slow-first-byte", "messages": HI, "max_tokens": 1000, "stream": stream}
    before = fake_openai[0].cancelled.count("slow")
    give_up(gw, key, body)
    row = router_row(gw, key)
    assert (row["status"], row["http_status"], row["error_code"]) == ("cancelled", 499, "client_disconnected")
    # The provider never answered (the gateway closed its request too): what it consumed is not known, so the cost
    # is unknown (never zero, never the hold); the prompt is recorded.
    assert row["cost_unknown"] is True and row["spend"] is None and row["completion_tokens"] == 0
    assert row["prompt_tokens"] > 0 and row["stream"] is stream
    deadline = time.monotonic() + 5
    while fake_openai[0].cancelled.count("slow") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_openai[0].cancelled.count("slow") > before, "the provider's request is closed, not left running"
    line = access_line(gw, row["request_id"])
    assert line["status"] == 499, line
    answer = httpx.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                        json={"model": "fake-good", "messages": HI, "max_tokens": 1000}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert rows_of(gw, key, 2)[0]["status"] == "success"
