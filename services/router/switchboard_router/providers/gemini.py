"""Google Gemini API adapter (generativelanguage.googleapis.com, ``v1beta``).

``generateContent`` for whole answers, ``streamGenerateContent?alt=sse`` for
streams (without ``alt=sse`` Gemini streams one JSON array, which cannot be
translated incrementally as simply). The API key travels in the
``x-goog-api-key`` header rather than the ``key=`` query parameter so that it
never lands in access logs. Streams report usage in every event, so nothing
extra needs asking for. With ``prompt_cache: explicit`` the repeated prefix of a
conversation is kept in a ``cachedContents`` entry
(:mod:`switchboard_router.providers.gemini_cache`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from switchboard_router.deployment import Deployment
from switchboard_router.providers import gemini_cache
from switchboard_router.providers.base import CompletionResult, StreamOptions, UpstreamError, UpstreamRequest
from switchboard_router.providers.gemini_request import generate_content_marked
from switchboard_router.providers.gemini_response import GeminiStreamTranslator, gemini_error, parse_generate_content
from switchboard_router.upstream_http import UpstreamPool

DEFAULT_API_BASE = "https://generativelanguage.googleapis.com"


def _model_path(model: str) -> str:
    """``gemini-2.5-flash`` and ``models/gemini-2.5-flash`` (or ``tunedModels/x``) both work."""
    if "/" in model:
        return quote(model, safe="/")
    return f"models/{quote(model, safe='')}"


def _versioned_base(deployment: Deployment) -> str:
    base = (deployment.api_base or DEFAULT_API_BASE).rstrip("/")
    return f"{base}/{deployment.extra.get('api_version') or 'v1beta'}"


def generate_action(stream: bool) -> str:
    """The method of a Gemini model called (SSE for streams: without ``alt=sse`` Gemini streams one JSON array)."""
    return "streamGenerateContent?alt=sse" if stream else "generateContent"


def request_headers(stream: bool) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if stream:
        headers["Accept"] = "text/event-stream"
    return headers


def generate_content_request(deployment: Deployment, body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """The generateContent body for a deployment (Gemini API and Vertex AI alike), its safety settings included,
    and how many of its contents the client marked for caching (see :func:`generate_content_marked`)."""
    request, marked = generate_content_marked(body, model=deployment.model)
    safety_settings = deployment.extra.get("safety_settings")
    if safety_settings:
        request["safetySettings"] = safety_settings
    return request, marked


def parse_google_error(status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
    """A ``google.rpc.Status`` error answer (Gemini API and Vertex AI alike)."""
    retry_after = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()[:500]
        return UpstreamError(status=status, message=text or f"Google answered HTTP {status}")
    error = gemini_error(status, payload, retry_after)
    # The HTTP status is authoritative; the body's code only fills in when it is missing.
    error.status = status
    return error


def generate_request(deployment: Deployment, url: str, headers: dict[str, str],
                     body: dict[str, Any]) -> UpstreamRequest:
    """The generateContent request, its body kept for rewriting when the deployment caches explicitly."""
    payload, marked = generate_content_request(deployment, body)
    if not gemini_cache.explicit(deployment):
        return UpstreamRequest("POST", url, headers, orjson.dumps(payload))
    return UpstreamRequest("POST", url, headers, orjson.dumps(payload), cacheable=payload, cache_marked=marked)


class GeminiAdapter:
    """Gemini ``GenerateContent`` wire format."""

    name = "gemini"

    def __init__(self) -> None:
        self.context_caches = gemini_cache.ContextCaches()

    def build_request(self, deployment: Deployment, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        url = f"{_versioned_base(deployment)}/{_model_path(deployment.model)}:{generate_action(stream)}"
        headers = request_headers(stream)
        if deployment.api_key:
            headers["x-goog-api-key"] = deployment.api_key
        return generate_request(deployment, url, headers, body)

    async def use_prompt_cache(self, deployment: Deployment, request: UpstreamRequest, pool: UpstreamPool) -> None:
        await self.context_caches.apply(deployment, request, pool,
                                        create_url=f"{_versioned_base(deployment)}/cachedContents",
                                        model_name=_model_path(deployment.model))

    def parse_response(self, deployment: Deployment, body: bytes) -> CompletionResult:
        return parse_generate_content(body, deployment.public_model or deployment.model)

    def stream_translator(self, deployment: Deployment, options: StreamOptions) -> GeminiStreamTranslator:
        return GeminiStreamTranslator(options.model or deployment.public_model or deployment.model, options)

    def parse_error(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        return parse_google_error(status, body, headers)
