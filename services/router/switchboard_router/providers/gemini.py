"""Google Gemini API adapter (generativelanguage.googleapis.com, ``v1beta``).

``generateContent`` for whole answers, ``streamGenerateContent?alt=sse`` for
streams (without ``alt=sse`` Gemini streams one JSON array, which cannot be
translated incrementally as simply). The API key travels in the
``x-goog-api-key`` header rather than the ``key=`` query parameter so that it
never lands in access logs. Streams report usage in every event, so nothing
extra needs asking for.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from switchboard_router.deployment import Deployment
from switchboard_router.providers.base import CompletionResult, StreamOptions, UpstreamError, UpstreamRequest
from switchboard_router.providers.gemini_request import generate_content_body
from switchboard_router.providers.gemini_response import GeminiStreamTranslator, gemini_error, parse_generate_content

DEFAULT_API_BASE = "https://generativelanguage.googleapis.com"


def _model_path(model: str) -> str:
    """``gemini-2.5-flash`` and ``models/gemini-2.5-flash`` (or ``tunedModels/x``) both work."""
    if "/" in model:
        return quote(model, safe="/")
    return f"models/{quote(model, safe='')}"


def generate_action(stream: bool) -> str:
    """The method of a Gemini model called (SSE for streams: without ``alt=sse`` Gemini streams one JSON array)."""
    return "streamGenerateContent?alt=sse" if stream else "generateContent"


def request_headers(stream: bool) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if stream:
        headers["Accept"] = "text/event-stream"
    return headers


def generate_content_request(deployment: Deployment, body: dict[str, Any]) -> dict[str, Any]:
    """The generateContent body for a deployment (Gemini API and Vertex AI alike), its safety settings included."""
    request = generate_content_body(body, model=deployment.model)
    safety_settings = deployment.extra.get("safety_settings")
    if safety_settings:
        request["safetySettings"] = safety_settings
    return request


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


class GeminiAdapter:
    """Gemini ``GenerateContent`` wire format."""

    name = "gemini"

    def build_request(self, deployment: Deployment, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        base = (deployment.api_base or DEFAULT_API_BASE).rstrip("/")
        version = str(deployment.extra.get("api_version") or "v1beta")
        url = f"{base}/{version}/{_model_path(deployment.model)}:{generate_action(stream)}"
        headers = request_headers(stream)
        if deployment.api_key:
            headers["x-goog-api-key"] = deployment.api_key
        return UpstreamRequest("POST", url, headers, orjson.dumps(generate_content_request(deployment, body)))

    def parse_response(self, deployment: Deployment, body: bytes) -> CompletionResult:
        return parse_generate_content(body, deployment.public_model or deployment.model)

    def stream_translator(self, deployment: Deployment, options: StreamOptions) -> GeminiStreamTranslator:
        return GeminiStreamTranslator(options.model or deployment.public_model or deployment.model, options)

    def parse_error(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        return parse_google_error(status, body, headers)
