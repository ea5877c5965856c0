"""The OpenAI-compatible adapter: request shaping per flavour, stream pass-through, error normalisation."""

from __future__ import annotations

import orjson

from switchboard_router.deployment import Deployment
from switchboard_router.providers.openai_compat import OpenAICompatAdapter, OpenAIStreamTranslator


def dep(provider: str = "openai", **kw: object) -> Deployment:
    return Deployment(id="m/0", public_model="m", provider=provider, model="upstream-id",
                      api_base=str(kw.pop("api_base", "")), api_key="sk-up", **kw)  # type: ignore[arg-type]


def test_stream_request_always_asks_for_usage_and_uses_the_upstream_model() -> None:
    req = OpenAICompatAdapter("openai").build_request(
        dep(), {"model": "public", "messages": [], "privacy_tier": "standard"}, stream=True)
    body = orjson.loads(req.content)
    assert req.url == "https://api.openai.com/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-up"
    assert body["model"] == "upstream-id" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "privacy_tier" not in body


def test_azure_uses_deployment_urls_and_api_key_header() -> None:
    d = dep("azure", api_base="https://res.openai.azure.com", extra={"api_version": "2024-06-01"})
    req = OpenAICompatAdapter("azure").build_request(d, {"model": "x", "messages": []}, stream=False)
    assert req.url == "https://res.openai.azure.com/openai/deployments/upstream-id/chat/completions?api-version=2024-06-01"
    assert req.headers["api-key"] == "sk-up" and "authorization" not in req.headers
    assert "model" not in orjson.loads(req.content)


def sse(*payloads: object) -> bytes:
    return b"".join(b"data: " + (p if isinstance(p, bytes) else orjson.dumps(p)) + b"\n\n" for p in payloads)


CHUNK = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
USAGE = {"id": "c", "object": "chat.completion.chunk", "choices": [],
         "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
                   "prompt_tokens_details": {"cached_tokens": 3}}}


def test_usage_chunk_is_captured_and_forwarded_only_when_asked() -> None:
    for include in (True, False):
        t = OpenAIStreamTranslator(include_usage=include)
        out = t.feed(sse(CHUNK, USAGE, b"[DONE]"))
        assert t.usage is not None and t.usage.prompt_tokens == 5 and t.usage.cached_prompt_tokens == 3
        assert len(out) == (2 if include else 1)
        assert orjson.loads(out[0]) == CHUNK
        assert t.done


def test_content_chunks_pass_through_byte_for_byte() -> None:
    raw = orjson.dumps(CHUNK)
    t = OpenAIStreamTranslator(include_usage=False)
    out = t.feed(b"data: " + raw[:10]) + t.feed(raw[10:] + b"\n\n")
    assert out == [raw]


def test_in_stream_error_is_reported() -> None:
    t = OpenAIStreamTranslator(include_usage=False)
    assert t.feed(sse({"error": {"message": "boom", "type": "server_error"}})) == []
    assert t.error is not None and t.error.message == "boom"


def test_parse_error_reads_openai_errors_and_retry_after() -> None:
    a = OpenAICompatAdapter("openai")
    e = a.parse_error(429, b'{"error": {"message": "slow down", "type": "requests", "code": "rate_limit"}}',
                      {"retry-after": "2"})
    assert e.retryable and e.retry_after == 2 and e.message == "slow down"
    e = a.parse_error(400, b'{"error": {"message": "This model\'s maximum context length is 8192 tokens",'
                           b' "code": "context_length_exceeded"}}', {})
    assert not e.retryable and e.context_window_exceeded
    e = a.parse_error(502, b"<html>bad gateway</html>", {})
    assert e.retryable and "bad gateway" in e.message


def test_anthropic_dialect_fields_are_stripped_for_strict_servers_and_kept_for_lenient_ones() -> None:
    body = {"model": "x", "top_k": 5, "tools": [{"type": "function", "function": {"name": "f"},
                                                 "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi",
                                                         "cache_control": {"type": "ephemeral"}}]},
                         {"role": "assistant", "content": "ok", "thinking_blocks": [{"type": "thinking"}]}]}
    sent = orjson.loads(OpenAICompatAdapter("openai").build_request(dep(), body, stream=False).content)
    assert "top_k" not in sent
    assert "cache_control" not in sent["tools"][0]
    assert sent["messages"][0]["content"] == [{"type": "text", "text": "hi"}]
    assert "thinking_blocks" not in sent["messages"][1]
    lenient = orjson.loads(OpenAICompatAdapter("vllm").build_request(dep("vllm"), body, stream=False).content)
    assert lenient["top_k"] == 5


def test_max_tokens_is_capped_at_the_deployment_limit_and_sent_as_openai_names_it() -> None:
    d = Deployment(id="m/0", public_model="m", provider="openai", model="u", api_base="", max_output_tokens=4096)
    sent = orjson.loads(OpenAICompatAdapter("openai").build_request(
        d, {"messages": [], "max_tokens": 32000}, stream=False).content)
    assert sent["max_completion_tokens"] == 4096 and "max_tokens" not in sent
    vllm = Deployment(id="v/0", public_model="v", provider="vllm", model="u", api_base="", max_output_tokens=4096)
    sent = orjson.loads(OpenAICompatAdapter("vllm").build_request(
        vllm, {"messages": [], "max_tokens": 32000}, stream=False).content)
    assert sent["max_tokens"] == 4096 and "max_completion_tokens" not in sent


def test_azure_takes_the_output_cap_as_max_completion_tokens_from_api_version_2024_09_01_preview_on() -> None:
    """Azure's reasoning and GPT-5 models refuse max_tokens; versions before 2024-09-01-preview know only it."""
    adapter = OpenAICompatAdapter("azure")
    for version, field in (("2024-10-21", "max_completion_tokens"), ("2024-09-01-preview", "max_completion_tokens"),
                           ("2025-04-01-preview", "max_completion_tokens"), ("preview", "max_completion_tokens"),
                           ("2024-08-01-preview", "max_tokens"), ("2024-06-01", "max_tokens")):
        d = dep("azure", api_base="https://res.openai.azure.com", extra={"api_version": version})
        for sent_as in ("max_tokens", "max_completion_tokens"):
            sent = orjson.loads(adapter.build_request(d, {"messages": [], sent_as: 700}, stream=False).content)
            assert sent == {"messages": [], field: 700}, (version, sent_as)
    default = orjson.loads(adapter.build_request(dep("azure", api_base="https://res.openai.azure.com"),
                                                 {"messages": [], "max_tokens": 5}, stream=False).content)
    assert default == {"messages": [], "max_completion_tokens": 5}, "the default version is GA 2024-10-21"


def test_a_body_with_both_output_caps_keeps_the_one_the_server_names() -> None:
    d = dep("azure", api_base="https://res.openai.azure.com", extra={"api_version": "2024-06-01"})
    both = {"messages": [], "max_tokens": 10, "max_completion_tokens": 20}
    sent = orjson.loads(OpenAICompatAdapter("azure").build_request(d, both, stream=False).content)
    assert sent == {"messages": [], "max_tokens": 10}
    sent = orjson.loads(OpenAICompatAdapter("openai").build_request(dep(), both, stream=False).content)
    assert sent["max_completion_tokens"] == 20 and "max_tokens" not in sent

