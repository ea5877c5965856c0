"""OpenAI Chat Completions and every server that speaks it.

One adapter serves OpenAI, Azure OpenAI, Mistral, Groq, DeepSeek, Together,
OpenRouter, vLLM, Ollama and any ``/v1/chat/completions`` server; what differs
between them (default base URL, auth header, URL shape, fields they reject) is
data in :data:`FLAVOURS`, not code.

Streams pass through: each provider ``data:`` payload is forwarded as the same
bytes, parsed only when it may carry usage, so a long stream costs one cheap
substring check per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from switchboard_router.deployment import Deployment
from switchboard_router.providers import azure_api
from switchboard_router.providers.base import (
    CompletionResult,
    EndpointMissing,
    StreamOptions,
    TokenUsage,
    UpstreamError,
    UpstreamRequest,
)
from switchboard_router.providers.sse_data import SSEDataDecoder
from switchboard_translate.reasoning_history import backfill_reasoning_content


@dataclass(frozen=True, slots=True)
class Flavour:
    """What one OpenAI-compatible provider does differently."""

    default_api_base: str
    #: "bearer" (Authorization: Bearer) or "api-key" (Azure's api-key header).
    auth: str = "bearer"
    #: Azure addresses deployments by name and needs ?api-version=.
    azure_urls: bool = False
    #: Whether the server understands stream_options.include_usage.
    stream_usage: bool = True
    #: Body fields the provider rejects; removed before sending.
    drop_fields: frozenset[str] = field(default_factory=frozenset)
    #: What to do with ``reasoning_content`` on earlier assistant turns: "keep" as sent, "drop" it
    #: (OpenAI and Azure refuse the field), "backfill" an empty one on every assistant turn that lacks
    #: it (DeepSeek's thinking mode refuses history without it), or "backfill_tool_calls" (only on
    #: assistant turns with tool calls, as Kimi needs). A deployment may override it with its own
    #: ``reasoning_history:`` setting (e.g. an ``openai_compatible`` Kimi or GLM server).
    reasoning_history: str = "keep"
    #: The server rejects fields other dialects carry through the canonical body (Anthropic's
    #: ``top_k``, ``cache_control`` on parts and tools, ``thinking_blocks``): strip them.
    strict_fields: bool = True
    #: The server's name for the output cap, the client's other name moved into it: OpenAI's reasoning models
    #: refuse the deprecated ``max_tokens`` and every OpenAI chat model takes ``max_completion_tokens``; Azure's
    #: depends on the deployment's API version (:mod:`.azure_api`); "" leaves the body's field as it is (the
    #: gateway's own bound goes as ``max_tokens``, which the other servers know).
    output_field: str = ""
    #: The server has OpenAI's legacy ``/completions`` (text completions) and ``/moderations``.
    text_completions: bool = False
    moderations: bool = False


FLAVOURS: dict[str, Flavour] = {
    "openai": Flavour("https://api.openai.com/v1", reasoning_history="drop", output_field="max_completion_tokens",
                      text_completions=True, moderations=True),
    "openai_compatible": Flavour("http://127.0.0.1:8000/v1", text_completions=True, moderations=True),
    "azure": Flavour("", auth="api-key", azure_urls=True, reasoning_history="drop", text_completions=True),
    "mistral": Flavour("https://api.mistral.ai/v1", drop_fields=frozenset({"store", "metadata", "service_tier"})),
    "groq": Flavour("https://api.groq.com/openai/v1", drop_fields=frozenset({"store", "metadata", "service_tier"})),
    "deepseek": Flavour("https://api.deepseek.com/v1", reasoning_history="backfill"),
    "together": Flavour("https://api.together.xyz/v1", strict_fields=False, text_completions=True),
    "openrouter": Flavour("https://openrouter.ai/api/v1", strict_fields=False, text_completions=True),
    "vllm": Flavour("http://127.0.0.1:8000/v1", strict_fields=False, text_completions=True),
    "ollama": Flavour("http://127.0.0.1:11434/v1", stream_usage=True, strict_fields=False, text_completions=True),
}

#: Top-level fields of other dialects that strict OpenAI-compatible servers reject.
FOREIGN_FIELDS = ("top_k", "thinking")


def strip_foreign(body: dict[str, Any]) -> dict[str, Any]:
    """Removes what Anthropic-dialect clients (Claude Code) carry that OpenAI's schema refuses:
    ``top_k``, ``cache_control`` markers on content parts and tools, ``thinking_blocks`` on messages."""
    out = {k: v for k, v in body.items() if k not in FOREIGN_FIELDS}
    messages = out.get("messages")
    if isinstance(messages, list):
        cleaned = []
        for message in messages:
            if isinstance(message, dict):
                message = {k: v for k, v in message.items() if k not in ("thinking_blocks", "cache_control")}
                content = message.get("content")
                if isinstance(content, list):
                    message["content"] = [_without_cache_control(p) for p in content]
            cleaned.append(message)
        out["messages"] = cleaned
    tools = out.get("tools")
    if isinstance(tools, list):
        out["tools"] = [_without_cache_control(t) for t in tools]
    return out


def _without_cache_control(item: Any) -> Any:
    if isinstance(item, dict) and "cache_control" in item:
        return {k: v for k, v in item.items() if k != "cache_control"}
    return item


def cap_output_tokens(body: dict[str, Any], limit: int) -> dict[str, Any]:
    """Clamps max_tokens / max_completion_tokens to the deployment's output limit (when it declares one)."""
    if limit <= 0:
        return body
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            body = {**body, name: limit}
    return body


def named_output_cap(body: dict[str, Any], name: str) -> dict[str, Any]:
    """``body`` with its output cap under ``name`` (the value already under ``name`` wins when both are sent);
    the body as it is when ``name`` is empty."""
    other = {"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}.get(name)
    if other is None or other not in body:
        return body
    out = {k: v for k, v in body.items() if k != other}
    out.setdefault(name, body[other])
    return out


#: Fields that only the gateway understands; never sent to a provider.
GATEWAY_FIELDS = frozenset({"privacy_tier", "switchboard", "user_api_key"})


def usage_from_openai(raw: dict[str, Any] | None) -> TokenUsage | None:
    if not raw:
        return None
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return TokenUsage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_prompt_tokens=int(prompt_details.get("cached_tokens") or 0),
        cache_write_tokens=int(prompt_details.get("cache_write_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


class OpenAIStreamTranslator:
    """Passes OpenAI chunks through, capturing usage and in-stream errors."""

    __slots__ = ("_decoder", "_include_usage", "usage", "error", "done")

    def __init__(self, include_usage: bool) -> None:
        self._decoder = SSEDataDecoder()
        self._include_usage = include_usage
        self.usage: TokenUsage | None = None
        self.error: UpstreamError | None = None
        self.done = False

    def feed(self, data: bytes) -> list[bytes]:
        return self._handle(self._decoder.feed(data))

    def close(self) -> list[bytes]:
        return self._handle(self._decoder.close())

    def _handle(self, events: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for raw in events:
            if not raw:
                continue
            if raw == b"[DONE]":
                self.done = True
                continue
            if raw[:1] != b"{" or raw[-1:] != b"}":
                raw = raw.strip()
                if raw[:1] != b"{" or raw[-1:] != b"}":  # two byte compares: no parse of what passes through
                    text = raw[:100].decode("utf-8", "replace")
                    self.error = UpstreamError(502, f"The provider sent a stream event that is not a JSON object: "
                                                    f"{text!r}", code="malformed_stream")
                    return out
            raw.decode()  # what goes on is valid UTF-8, or the stream fails here as it always has
            if b'"usage"' in raw or b'"error"' in raw:
                chunk = orjson.loads(raw)
                if isinstance(chunk.get("error"), dict):
                    err = chunk["error"]
                    code = str(err.get("code", ""))
                    self.error = UpstreamError(
                        status=int(code) if code.isdigit() and 400 <= int(code) < 600 else 500,
                        message=str(err.get("message") or "provider stream error"),
                        type=str(err.get("type") or "upstream_error"),
                    )
                    continue
                usage = usage_from_openai(chunk.get("usage"))
                if usage is not None:
                    self.usage = usage
                    if not chunk.get("choices"):
                        if self._include_usage:
                            out.append(raw)
                        continue
                    if not self._include_usage:
                        chunk.pop("usage", None)
                        raw = orjson.dumps(chunk)
            out.append(raw)
        return out


class OpenAICompatAdapter:
    """The adapter for every provider in :data:`FLAVOURS`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.flavour = FLAVOURS[name]

    def url(self, deployment: Deployment) -> str:
        return self.endpoint_url(deployment, "chat/completions")

    def endpoint_url(self, deployment: Deployment, path: str) -> str:
        """The URL of one of the provider's endpoints (``embeddings``, ``completions``, ``moderations``)."""
        base = (deployment.api_base or self.flavour.default_api_base).rstrip("/")
        if self.flavour.azure_urls:
            version = azure_api.api_version(deployment)
            name = quote(deployment.model, safe="")
            return f"{base}/openai/deployments/{name}/{path}?api-version={version}"
        return f"{base}/{path}"

    def _pass_through(self, deployment: Deployment, body: dict[str, Any], path: str) -> UpstreamRequest:
        """The body as the client sent it (gateway fields removed), with the upstream model id."""
        out = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS}
        if self.flavour.azure_urls:
            out.pop("model", None)
        else:
            out["model"] = deployment.model
        return UpstreamRequest("POST", self.endpoint_url(deployment, path), self.headers(deployment),
                               orjson.dumps(out))

    def build_embeddings_request(self, deployment: Deployment, body: dict[str, Any]) -> UpstreamRequest:
        """OpenAI ``/embeddings``: the body passes through with the upstream model id."""
        if "input" not in body:
            raise ValueError("'input' is required: a string or a list of strings or token arrays")
        return self._pass_through(deployment, body, "embeddings")

    def build_text_request(self, deployment: Deployment, body: dict[str, Any]) -> UpstreamRequest:
        """OpenAI's legacy ``/completions``: the body passes through, its output cap within the deployment's."""
        if not self.flavour.text_completions:
            raise EndpointMissing(self.name)
        if "prompt" not in body:
            raise ValueError("'prompt' is required: a string, a list of strings or token arrays")
        body = cap_output_tokens(body, deployment.max_output_tokens)
        body.pop("stream", None)
        body.pop("stream_options", None)
        return self._pass_through(deployment, body, "completions")

    def parse_text_response(self, deployment: Deployment, body: bytes) -> CompletionResult:
        data = orjson.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise ValueError("provider answer is not a text_completion object")
        usage = usage_from_openai(data.get("usage")) or TokenUsage(reported_by_provider=False)
        return CompletionResult(data, usage)

    def build_moderations_request(self, deployment: Deployment, body: dict[str, Any]) -> UpstreamRequest:
        """OpenAI ``/moderations``: the body passes through with the upstream model id."""
        if not self.flavour.moderations:
            raise EndpointMissing(self.name)
        if "input" not in body:
            raise ValueError("'input' is required: a string, a list of strings, or text and image parts")
        return self._pass_through(deployment, body, "moderations")

    def parse_moderations_response(self, deployment: Deployment, body: bytes) -> CompletionResult:
        """A moderation answer; providers report no usage (the gateway counts the input)."""
        data = orjson.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise ValueError("provider answer is not a moderation object")
        return CompletionResult(data, TokenUsage(reported_by_provider=False))

    def parse_embeddings_response(self, deployment: Deployment, body: bytes) -> CompletionResult:
        data = orjson.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise ValueError("provider answer is not an embeddings list")
        raw = data.get("usage") or {}
        usage = TokenUsage(prompt_tokens=int(raw.get("prompt_tokens") or 0), completion_tokens=0,
                           reported_by_provider=bool(raw))
        return CompletionResult(data, usage)

    def headers(self, deployment: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if deployment.api_key:
            if self.flavour.auth == "api-key":
                headers["api-key"] = deployment.api_key
            else:
                headers["authorization"] = f"Bearer {deployment.api_key}"
        for key, value in (deployment.extra.get("headers") or {}).items():
            headers[str(key).lower()] = str(value)
        return headers

    def output_field(self, deployment: Deployment) -> str:
        """The deployment's name for the output cap of a chat body ("": the body's own)."""
        if self.flavour.azure_urls:
            return azure_api.output_field(azure_api.api_version(deployment))
        return self.flavour.output_field

    def build_request(self, deployment: Deployment, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        out = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS and k not in self.flavour.drop_fields}
        out = reasoning_history(out, str(deployment.extra.get("reasoning_history") or self.flavour.reasoning_history))
        if self.flavour.strict_fields:
            out = strip_foreign(out)
        out = cap_output_tokens(out, deployment.max_output_tokens)
        out = named_output_cap(out, self.output_field(deployment))
        if self.flavour.azure_urls:
            out.pop("model", None)
        else:
            out["model"] = deployment.model
        if stream:
            out["stream"] = True
            if self.flavour.stream_usage:
                options = dict(out.get("stream_options") or {})
                options["include_usage"] = True
                out["stream_options"] = options
        else:
            out.pop("stream", None)
            out.pop("stream_options", None)
        return UpstreamRequest("POST", self.url(deployment), self.headers(deployment), orjson.dumps(out))

    def parse_response(self, deployment: Deployment, body: bytes) -> CompletionResult:
        data = orjson.loads(body)
        if not isinstance(data, dict) or "choices" not in data:
            raise ValueError("provider answer is not a chat.completion object")
        usage = usage_from_openai(data.get("usage")) or TokenUsage(reported_by_provider=False)
        return CompletionResult(data, usage)

    def stream_translator(self, deployment: Deployment, options: StreamOptions) -> OpenAIStreamTranslator:
        return OpenAIStreamTranslator(options.include_usage)

    def parse_error(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        message, etype, code = f"provider returned HTTP {status}", "upstream_error", ""
        try:
            data = orjson.loads(body)
            err = data.get("error", data) if isinstance(data, dict) else {}
            if isinstance(err, dict):
                message = str(err.get("message") or message)
                etype = str(err.get("type") or etype)
                code = str(err.get("code") or "")
            elif isinstance(err, str):
                message = err
        except orjson.JSONDecodeError:
            text = body.decode("utf-8", "replace").strip()
            if text:
                message = text[:500]
        retry_after = _retry_after(headers)
        lowered = f"{code} {message}".lower()
        return UpstreamError(
            status=status,
            message=message,
            type=etype,
            code=code,
            retry_after=retry_after,
            content_policy="content_filter" in lowered or "content_policy" in lowered,
            context_window_exceeded="context_length_exceeded" in lowered or "maximum context length" in lowered,
        )


def reasoning_history(body: dict[str, Any], policy: str) -> dict[str, Any]:
    """``body`` with earlier assistant turns' ``reasoning_content`` handled as the flavour needs."""
    if policy == "backfill":
        return backfill_reasoning_content(body)
    if policy == "backfill_tool_calls":
        return backfill_reasoning_content(body, tool_call_turns_only=True)
    if policy == "drop":
        messages = body.get("messages")
        if isinstance(messages, list) and any(isinstance(m, dict) and "reasoning_content" in m for m in messages):
            stripped = [{k: v for k, v in m.items() if k != "reasoning_content"} if isinstance(m, dict) else m
                        for m in messages]
            return {**body, "messages": stripped}
    return body


def _retry_after(headers: dict[str, str]) -> float | None:
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value:
            try:
                seconds = float(value)
            except ValueError:
                return None
            return seconds / 1000 if name == "retry-after-ms" else seconds
    return None
