"""The cursor-agent scenario: conversations that grow turn by turn, as an editor agent's requests do."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import orjson
import pytest

from benchmarks.agent_conversation import agent_turn_bodies
from benchmarks.fake_provider import FakeProviderConfig, start_fake_provider
from benchmarks.scenarios import (
    AGENT_LAST_TURN_BYTES,
    AGENT_TURNS,
    ALL_KINDS,
    build_scenarios,
    request_body,
)
from benchmarks.stream_client import conversation_requests, run_load
from switchboard_router.privacy import find_pii


def _turns(conversation: str = "c-1") -> list[dict[str, object]]:
    return [orjson.loads(body) for body in agent_turn_bodies("bench-model", conversation, AGENT_TURNS,
                                                             AGENT_LAST_TURN_BYTES)]


def test_each_turn_is_the_previous_one_plus_a_user_turn_a_tool_call_and_its_result() -> None:
    bodies = agent_turn_bodies("bench-model", "c-1", AGENT_TURNS, AGENT_LAST_TURN_BYTES)
    turns = [orjson.loads(body) for body in bodies]
    assert len(turns) == AGENT_TURNS
    for previous, current in itertools.pairwise(turns):
        assert current["messages"][: len(previous["messages"])] == previous["messages"]
        user, assistant, tool = current["messages"][len(previous["messages"]):]
        assert user["role"] == "user" and "<user_query>" in user["content"]
        assert assistant["role"] == "assistant" and len(assistant["tool_calls"]) == 1
        call = assistant["tool_calls"][0]
        assert call["type"] == "function" and isinstance(orjson.loads(call["function"]["arguments"]), dict)
        assert tool == {"role": "tool", "tool_call_id": call["id"], "content": tool["content"]}
        # The same tools and options every turn, as a client resends them.
        assert {k: v for k, v in current.items() if k != "messages"} == {
            k: v for k, v in previous.items() if k != "messages"}
    first = turns[0]
    assert first["messages"][0]["role"] == "system" and first["stream"] is True
    assert first["stream_options"] == {"include_usage": True}
    assert {tool["function"]["name"] for tool in first["tools"]} >= {"read_file", "run_terminal_cmd", "grep_search"}
    called = {turn["messages"][-2]["tool_calls"][0]["function"]["name"] for turn in turns}
    assert called == {"read_file", "run_terminal_cmd", "grep_search", "list_dir"}


def test_the_last_turn_is_about_100_kb_and_the_requests_grow_evenly() -> None:
    sizes = [len(body) for body in agent_turn_bodies("bench-model", "c-2", AGENT_TURNS, AGENT_LAST_TURN_BYTES)]
    assert 0.95 * AGENT_LAST_TURN_BYTES <= sizes[-1] <= 1.1 * AGENT_LAST_TURN_BYTES
    steps = [later - earlier for earlier, later in itertools.pairwise(sizes)]
    assert all(0.7 * AGENT_LAST_TURN_BYTES / AGENT_TURNS < step < 1.3 * AGENT_LAST_TURN_BYTES / AGENT_TURNS
               for step in steps)
    # Most of each request is the previous request: what a scan memo can recognise.
    assert sizes[-2] / sizes[-1] > 0.85


def test_conversations_share_only_the_system_prompt_and_tools_and_repeat_byte_for_byte() -> None:
    one, same, other = _turns("c-1"), _turns("c-1"), _turns("c-3")
    assert one == same
    assert one[0]["messages"][0] == other[0]["messages"][0] and one[0]["tools"] == other[0]["tools"]
    for mine, theirs in zip(one[-1]["messages"][1:], other[-1]["messages"][1:], strict=True):
        assert mine != theirs


def test_tool_results_hold_personal_data_and_secrets_the_router_finds() -> None:
    last = _turns("c-4")[-1]
    findings = [finding for message in last["messages"] if message["role"] == "tool"
                for finding in find_pii(message["content"])]
    assert {"EMAIL", "PHONE", "SECRET"} <= {finding.kind for finding in findings}
    assert {"github_token", "url_password"} <= {finding.detector for finding in findings}
    # The long texts the memo keys on (tool results over 1 KB) are most of the request.
    tool_bytes = sum(len(m["content"]) for m in last["messages"] if m["role"] == "tool")
    assert tool_bytes > 0.8 * AGENT_LAST_TURN_BYTES


def test_scenarios_include_the_agent_kinds_with_and_without_pii() -> None:
    assert {"cursor-agent", "cursor-agent+pii"} <= set(ALL_KINDS)
    scenarios = {s.key: s for s in build_scenarios([16], [1], {"chat", "cursor-agent", "cursor-agent+pii"})}
    assert set(scenarios) == {"chat@c16", "cursor-agent@c1", "cursor-agent+pii@c1"}
    assert scenarios["cursor-agent@c1"].conversation == "cursor-agent" and not scenarios["cursor-agent@c1"].pii
    assert scenarios["cursor-agent+pii@c1"].pii and scenarios["cursor-agent+pii@c1"].streaming
    assert scenarios["chat@c16"].conversation is None and not scenarios["chat@c16"].pii
    assert orjson.loads(request_body("cursor-agent", "m"))["messages"][-1]["role"] == "tool"


def test_each_worker_replays_new_conversations_in_turn_order() -> None:
    requests = conversation_requests("http://127.0.0.1:9/v1/chat/completions", "sk-x", "cursor-agent", "m", "w0")
    sent = [next(requests) for _ in range(AGENT_TURNS + 2)]
    bodies = [orjson.loads(request.split(b"\r\n\r\n", 1)[1]) for request in sent]
    assert [len(body["messages"]) for body in bodies] == [1 + 3 * turn for turn in range(1, AGENT_TURNS + 1)] + [4, 7]
    assert bodies[AGENT_TURNS]["messages"][1] != bodies[0]["messages"][1]  # the next conversation is a new one
    head, body = sent[0].split(b"\r\n\r\n", 1)
    assert f"Content-Length: {len(body)}" in head.decode() and "Bearer sk-x" in head.decode()


@pytest.fixture
async def provider_url() -> AsyncIterator[str]:
    server, port = await start_fake_provider(FakeProviderConfig(chunks=5))
    yield f"http://127.0.0.1:{port}/v1/chat/completions"
    server.close()
    await server.wait_closed()


async def test_the_stream_client_replays_conversations_against_a_real_server(provider_url: str) -> None:
    result = await run_load(provider_url, b"{}", "x", concurrency=2, duration_s=0.5, conversation="cursor-agent",
                            model="bench-model")
    summary = result.summary()
    assert summary["failures"] == 0 and int(summary["ok"]) >= 2  # type: ignore[call-overload]
    assert summary["ttft_ms"] is not None


async def test_an_unknown_conversation_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown conversation kind"):
        await asyncio.wait_for(run_load("http://127.0.0.1:9/x", b"{}", "x", 1, 0.1, conversation="chat"), 5)


def test_the_runner_replays_conversations_against_both_fake_providers() -> None:
    """The cursor-agent rows through the runner, on the raw and the Starlette/uvicorn fake provider."""
    from benchmarks.runner import BenchOptions, run_benchmarks

    options = BenchOptions(targets=["direct", "direct-uvicorn"], duration_s=0.5, warmup_s=0.0, concurrencies=[],
                           long_concurrencies=[1], kinds=["cursor-agent"])
    document = run_benchmarks(options, log=False)
    rows = {(row["target"], row["scenario"]): row for row in document["results"]}  # type: ignore[attr-defined]
    assert set(rows) == {("direct", "cursor-agent@c1"), ("direct-uvicorn", "cursor-agent@c1")}
    for row in rows.values():
        assert int(row["ok"]) > 0 and row["failures"] == 0 and row["ttft_ms"] is not None
        assert row["load_generator"] == "stream_client" and row["added_p50_ms"] is None
