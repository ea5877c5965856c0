"""The Anthropic Messages API adapter (``provider: anthropic``).

Requests go to ``{api_base}/v1/messages`` with the ``x-api-key`` and
``anthropic-version`` headers; the body is translated from the canonical
OpenAI chat body by :mod:`switchboard_translate.anthropic`. Anthropic always
reports usage in its streams, so billing needs nothing extra asked for.

Deployment ``extra`` settings read here: ``anthropic_version`` (default
``2023-06-01``), ``anthropic_beta`` (a string or a list, sent as the
``anthropic-beta`` header), ``headers`` (added as they are) and ``prompt_cache``
(see :mod:`switchboard_router.providers.cache_marks`).
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import orjson

from switchboard_router.deployment import Deployment
from switchboard_router.providers.base import (
    CompletionResult,
    StreamOptions,
    TokenUsage,
    UpstreamError,
    UpstreamRequest,
)
from switchboard_router.providers.cache_marks import with_cache_marks
from switchboard_translate.anthropic import (
    AnthropicStreamToChat,
    anthropic_message_to_chat_completion,
    chat_request_to_anthropic,
)
from switchboard_translate.sse import SSEDecoder, SSEEvent

DEFAULT_API_BASE = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"

#: Phrases in Anthropic's 400 messages that mean the prompt does not fit the model's context window.
_CONTEXT_WINDOW_PHRASES = ("prompt is too long", "exceed context limit", "context window", "too many tokens")
_CONTENT_POLICY_PHRASES = ("content filtering policy", "usage policy")


def token_usage(usage: dict[str, Any] | None) -> TokenUsage:
    """The router's usage record for an OpenAI usage object produced by the translation."""
    if not usage:
        return TokenUsage(reported_by_provider=False)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return TokenUsage(
        prompt_tokens=usage.get("prompt_tokens", 0),
        completion_tokens=usage.get("completion_tokens", 0),
        cached_prompt_tokens=prompt_details.get("cached_tokens", 0),
        cache_write_tokens=prompt_details.get("cache_creation_tokens", 0),
        reasoning_tokens=completion_details.get("reasoning_tokens", 0),
    )


def messages_url(api_base: str) -> str:
    """``{api_base}/v1/messages``, also when the configured base already ends in ``/v1``."""
    base = (api_base or DEFAULT_API_BASE).rstrip("/")
    return base + "/messages" if base.endswith("/v1") else base + "/v1/messages"


class AnthropicStreamTranslator:
    """Anthropic SSE bytes in, serialized OpenAI chunks out (see :class:`StreamTranslator`)."""

    def __init__(self, options: StreamOptions) -> None:
        self._decoder = SSEDecoder()
        self._events = AnthropicStreamToChat(model=options.model, include_usage=options.include_usage)
        self.usage: TokenUsage | None = None
        self.error: UpstreamError | None = None
        self._usage_seen: dict[str, Any] | None = None

    def feed(self, data: bytes) -> list[bytes]:
        return self._translate(self._decoder.feed(data))

    def close(self) -> list[bytes]:
        # An event left unterminated at the end is what a cut connection leaves: only a whole one counts.
        chunks = self._translate(self._decoder.close(), final=True)
        chunks.extend(orjson.dumps(chunk) for chunk in self._events.close())
        self._sync()
        return chunks

    def _translate(self, events: list[SSEEvent], *, final: bool = False) -> list[bytes]:
        chunks: list[bytes] = []
        for event in events:
            if not event.data:
                continue
            try:
                payload = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                if not final:
                    self.error = UpstreamError(
                        502, f"Anthropic sent a stream event that is not JSON: {event.data[:200]}"
                    )
                continue
            chunks.extend(orjson.dumps(chunk) for chunk in self._events.event(event.event, payload))
        self._sync()
        return chunks

    def _sync(self) -> None:
        # The translation replaces its usage object when the counts change: convert only then.
        if self._events.usage is not self._usage_seen:
            self._usage_seen = self._events.usage
            self.usage = token_usage(self._usage_seen)
        failure = self._events.failure
        if failure is not None and self.error is None:
            self.error = stream_error(failure.type, failure.message)


def stream_error(error_type: str, message: str) -> UpstreamError:
    """An ``error`` event inside a stream (or a cut stream) as the error the HTTP status would have given."""
    status = _STATUS_BY_TYPE.get(error_type, 502)
    return _classify(UpstreamError(status=status, message=message, type=error_type, code=error_type))


_STATUS_BY_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def _classify(error: UpstreamError) -> UpstreamError:
    """Marks context-window and content-policy refusals, which the router may answer with a fallback.

    Anthropic gives these no code of their own, so the message is read (as its SDKs' users do).
    """
    lowered = error.message.lower()
    if error.status in (400, 413) and any(phrase in lowered for phrase in _CONTEXT_WINDOW_PHRASES):
        error.context_window_exceeded = True
        error.code = "context_length_exceeded"
    if any(phrase in lowered for phrase in _CONTENT_POLICY_PHRASES):
        error.content_policy = True
        error.code = "content_filter"
    return error


def retry_after_seconds(headers: dict[str, str]) -> float | None:
    """Seconds from ``retry-after`` (seconds or an HTTP date), if present and sensible."""
    lowered = {key.lower(): value for key, value in headers.items()}
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def messages_request(deployment: Deployment, body: dict[str, Any]) -> dict[str, Any]:
    """The Messages body for a deployment (Anthropic's API and Vertex AI alike), with its cache marks."""
    return chat_request_to_anthropic(
        with_cache_marks(deployment, body), model=deployment.model,
        default_max_tokens=deployment.max_output_tokens or None,
    )


class AnthropicAdapter:
    """``provider: anthropic``: the Anthropic Messages API."""

    name = "anthropic"

    def build_request(self, deployment: Deployment, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        payload = messages_request(deployment, body)
        if stream:
            payload["stream"] = True
        extra = deployment.extra or {}
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "anthropic-version": str(extra.get("anthropic_version") or ANTHROPIC_VERSION),
        }
        if deployment.api_key:
            headers["x-api-key"] = deployment.api_key
        beta = extra.get("anthropic_beta")
        if beta:
            headers["anthropic-beta"] = beta if isinstance(beta, str) else ",".join(beta)
        headers.update({str(k).lower(): str(v) for k, v in (extra.get("headers") or {}).items()})
        return UpstreamRequest("POST", messages_url(deployment.api_base), headers, orjson.dumps(payload))

    def parse_response(self, deployment: Deployment, body: bytes) -> CompletionResult:
        completion = anthropic_message_to_chat_completion(orjson.loads(body), model=deployment.public_model)
        return CompletionResult(body=completion, usage=token_usage(completion["usage"]))

    def stream_translator(self, deployment: Deployment, options: StreamOptions) -> AnthropicStreamTranslator:
        if not options.model:
            options = StreamOptions(
                include_usage=options.include_usage, model=deployment.public_model, extras=options.extras
            )
        return AnthropicStreamTranslator(options)

    def parse_error(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        error_type, message = "api_error", ""
        try:
            payload = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            payload = {}
        error = payload.get("error") if isinstance(payload, dict) else None
        error_code = ""
        if isinstance(error, dict):
            error_type = str(error.get("type") or error_type)
            message = str(error.get("message") or "")
            # ``details.error_code`` names the cause more precisely than the type
            # (e.g. ``enforced_spend_limit_reached`` behind a 429 that no retry will cure).
            details = error.get("details")
            if isinstance(details, dict) and isinstance(details.get("error_code"), str):
                error_code = details["error_code"]
        if not message:
            text = body.decode("utf-8", "replace").strip()[:500]
            message = f"Anthropic answered HTTP {status}" + (f": {text}" if text else "")
        upstream = UpstreamError(
            status=status,
            message=message,
            type=error_type,
            code=error_code or error_type,
            retry_after=retry_after_seconds(headers),
        )
        return _classify(upstream)
