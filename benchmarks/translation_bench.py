"""Cost of the router's translation per provider adapter: µs per request and per streamed chunk.

Prints numbers; asserts nothing. Run from the repository root:

    python benchmarks/translation_bench.py [--rounds 2000]

For each wire format it times the adapter's pure work on a typical Cursor-sized
exchange (system prompt, a few turns, two tools): ``build_request`` (Bedrock
includes the SigV4 signature), ``parse_response`` on a whole answer, and the
stream translator's ``feed`` per provider event (40 text deltas plus the usual
start/stop/usage events), bytes in, OpenAI chunk bytes out. No network.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
for package_root in ("libs/common", "libs/translate", "services/router"):
    sys.path.insert(0, str(ROOT / package_root))

from switchboard_router.deployment import Deployment  # noqa: E402
from switchboard_router.providers.base import StreamOptions  # noqa: E402
from switchboard_router.providers.bedrock_eventstream import encode_event  # noqa: E402
from switchboard_router.providers.registry import adapter_for  # noqa: E402

DELTAS = [f"word{i} " for i in range(40)]
TEXT = "".join(DELTAS)

BODY: dict[str, Any] = {
    "model": "bench",
    "max_tokens": 1024,
    "temperature": 0.2,
    "messages": [
        {"role": "system", "content": "You are a coding assistant. " * 20},
        {"role": "user", "content": "Read main.py and tell me what it does. " + "x = 1\n" * 200},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "read_file", "arguments": '{"path":"main.py"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "print('hello')\n" * 50},
        {"role": "user", "content": "Now summarise it in one line."},
    ],
    "tools": [
        {"type": "function", "function": {"name": "read_file", "description": "Read a file.", "parameters": {
            "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}},
        {"type": "function", "function": {"name": "list_dir", "description": "List a folder.", "parameters": {
            "type": "object", "properties": {"path": {"type": "string"}, "depth": {"type": "integer"}}}}},
    ],
}


def sse(events: list[tuple[str | None, dict[str, Any] | str]], sep: bytes = b"\n\n") -> list[bytes]:
    out = []
    for name, data in events:
        payload = data.encode() if isinstance(data, str) else orjson.dumps(data)
        out.append((b"event: " + name.encode() + b"\n" if name else b"") + b"data: " + payload + sep)
    return out


def openai_fixture() -> tuple[bytes, list[bytes]]:
    usage = {"prompt_tokens": 900, "completion_tokens": 80, "total_tokens": 980,
             "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
    whole = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}],
             "usage": usage}
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o"}
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
    events += [(None, {**base, "choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]})
               for d in DELTAS]
    events += [(None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
               (None, {**base, "choices": [], "usage": usage}), (None, "[DONE]")]
    return orjson.dumps(whole), sse(events)


def anthropic_fixture() -> tuple[bytes, list[bytes]]:
    usage = {"input_tokens": 900, "output_tokens": 80, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "end_turn",
               "stop_sequence": None, "content": [{"type": "text", "text": TEXT}], "usage": usage}
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        ("message_start", {"type": "message_start", "message": {**message, "content": [], "stop_reason": None,
                                                                "usage": {**usage, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
    ]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": d}}) for d in DELTAS]
    events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                  "usage": {"output_tokens": 80}}),
               ("message_stop", {"type": "message_stop"})]
    return orjson.dumps(message), sse(events)


def gemini_fixture() -> tuple[bytes, list[bytes]]:
    def response(text: str, finish: str | None, candidates: int) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "modelVersion": "gemini-2.5-flash",
                "usageMetadata": {"promptTokenCount": 900, "candidatesTokenCount": candidates,
                                  "totalTokenCount": 900 + candidates}}
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (None, response(d, "STOP" if i == len(DELTAS) - 1 else None, i + 1)) for i, d in enumerate(DELTAS)]
    return orjson.dumps(response(TEXT, "STOP", 80)), sse(events, b"\r\n\r\n")


def bedrock_fixture() -> tuple[bytes, list[bytes]]:
    usage = {"inputTokens": 900, "outputTokens": 80, "totalTokens": 980}
    whole = {"output": {"message": {"role": "assistant", "content": [{"text": TEXT}]}}, "stopReason": "end_turn",
             "usage": usage, "metrics": {"latencyMs": 100}}
    frames = [encode_event("messageStart", orjson.dumps({"role": "assistant"}))]
    frames += [encode_event("contentBlockDelta", orjson.dumps({"contentBlockIndex": 0, "delta": {"text": d}}))
               for d in DELTAS]
    frames += [encode_event("contentBlockStop", orjson.dumps({"contentBlockIndex": 0})),
               encode_event("messageStop", orjson.dumps({"stopReason": "end_turn"})),
               encode_event("metadata", orjson.dumps({"usage": usage, "metrics": {"latencyMs": 100}}))]
    return orjson.dumps(whole), frames


CASES: dict[str, tuple[Deployment, Callable[[], tuple[bytes, list[bytes]]]]] = {
    "openai": (Deployment("b/0", "bench", "openai", "gpt-4o", "https://api.openai.com/v1", "sk-x"), openai_fixture),
    "anthropic": (Deployment("b/1", "bench", "anthropic", "claude-sonnet-4-5", "https://api.anthropic.com", "sk-x"),
                  anthropic_fixture),
    "gemini": (Deployment("b/2", "bench", "gemini", "gemini-2.5-flash", "", "AIza-x"), gemini_fixture),
    "bedrock": (Deployment("b/3", "bench", "bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0", "", None,
                           extra={"aws_region": "eu-west-1", "aws_access_key_id": "AKIAEXAMPLE",
                                  "aws_secret_access_key": "secret"}), bedrock_fixture),
}


def per_call_us(fn: Callable[[], object], rounds: int) -> float:
    """Median of 5 batches, µs per call."""
    batches = []
    for _ in range(5):
        started = time.perf_counter_ns()
        for _ in range(rounds):
            fn()
        batches.append((time.perf_counter_ns() - started) / rounds / 1000)
    return statistics.median(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    print(f"{'adapter':<10} {'build_request µs':>17} {'parse_response µs':>18} {'stream µs/chunk':>16} {'chunks':>7}")
    for name, (deployment, fixture) in CASES.items():
        adapter = adapter_for(deployment.provider)
        whole, events = fixture()

        def feed_all(adapter: Any = adapter, deployment: Deployment = deployment, events: list[bytes] = events) -> int:
            translator = adapter.stream_translator(deployment, StreamOptions(include_usage=True, model="bench"))
            produced = 0
            for event in events:
                produced += len(translator.feed(event))
            return produced + len(translator.close())

        build_us = per_call_us(lambda a=adapter, d=deployment: a.build_request(d, BODY, stream=True), args.rounds)
        parse_us = per_call_us(lambda a=adapter, d=deployment, w=whole: a.parse_response(d, w), args.rounds)
        stream_rounds = max(1, args.rounds // 20)
        chunk_us = per_call_us(feed_all, stream_rounds) / len(events)
        print(f"{name:<10} {build_us:>17.1f} {parse_us:>18.1f} {chunk_us:>16.2f} {feed_all():>7}")


if __name__ == "__main__":
    main()
