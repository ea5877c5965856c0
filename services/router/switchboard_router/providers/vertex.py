"""Google Vertex AI adapter (``provider: vertex``): Gemini, and Claude, in a chosen Google Cloud location.

Vertex AI serves models from regional endpoints, which is how a gateway keeps a
request in a jurisdiction (``europe-west4``, ``northamerica-northeast1``, ...),
and from the ``global`` endpoint::

    https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/...
    https://aiplatform.googleapis.com/v1/projects/{project}/locations/global/publishers/...

- Gemini models (``publishers/google/models/{model}``): ``:generateContent`` and
  ``:streamGenerateContent?alt=sse``, the Gemini API's wire format (the same
  translation as :mod:`switchboard_router.providers.gemini`);
- Claude models, any model id naming ``claude`` (``publishers/anthropic/models/{model}``):
  ``:rawPredict`` and ``:streamRawPredict``, Anthropic's Messages format with
  ``anthropic_version: vertex-2023-10-16`` in the body instead of a ``model``
  (the same translation as :mod:`switchboard_router.providers.anthropic`, cache marks included).

Calls carry an OAuth2 access token (``Authorization: Bearer``), from
:mod:`switchboard_router.providers.google_auth`. Deployment settings read here:
``vertex_project``, ``vertex_location`` (both required; checked when the catalog
loads), ``vertex_credentials``, ``safety_settings`` (Gemini), ``prompt_cache`` (Claude:
``auto`` or ``off``; Gemini: ``explicit``, with ``prompt_cache_ttl``) and ``api_base``
(replaces the endpoint's scheme and host, e.g. for a private endpoint or a proxy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from switchboard_router.deployment import Deployment
from switchboard_router.providers.anthropic import AnthropicAdapter, messages_request
from switchboard_router.providers.base import CompletionResult, StreamOptions, UpstreamError, UpstreamRequest
from switchboard_router.providers.gemini import (
    GeminiAdapter,
    generate_action,
    generate_request,
    parse_google_error,
    request_headers,
)
from switchboard_translate.chat_params import is_claude as is_claude_model

if TYPE_CHECKING:
    from switchboard_router.providers.google_auth import GoogleTokens
    from switchboard_router.upstream_http import UpstreamPool

#: What Vertex AI wants in the body of a Claude call in place of Anthropic's ``anthropic-version`` header.
ANTHROPIC_VERSION = "vertex-2023-10-16"


def is_claude(deployment: Deployment) -> bool:
    """Claude is served in Anthropic's format; the same test tells the parameters it takes (see chat_params)."""
    return is_claude_model(deployment.model)


def endpoint(deployment: Deployment) -> str:
    """The scheme and host of the deployment's location (``api_base`` replaces them)."""
    if deployment.api_base:
        return deployment.api_base.rstrip("/")
    location = str(deployment.extra["vertex_location"])
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    return f"https://{host}"


def _location_path(deployment: Deployment) -> str:
    project = quote(str(deployment.extra["vertex_project"]), safe="")
    location = quote(str(deployment.extra["vertex_location"]), safe="")
    return f"projects/{project}/locations/{location}"


def cached_contents_url(deployment: Deployment) -> str:
    """Where a Gemini model's context caches are made (``prompt_cache: explicit``)."""
    return f"{endpoint(deployment)}/v1/{_location_path(deployment)}/cachedContents"


def model_url(deployment: Deployment) -> str:
    publisher = "anthropic" if is_claude(deployment) else "google"
    model = quote(deployment.model, safe="@")
    return f"{endpoint(deployment)}/v1/{_location_path(deployment)}/publishers/{publisher}/models/{model}"


class VertexAdapter:
    """``provider: vertex``: Gemini and Claude models on Vertex AI."""

    name = "vertex"

    def __init__(self) -> None:
        self._gemini = GeminiAdapter()
        self._claude = AnthropicAdapter()
        self._google_tokens: GoogleTokens | None = None

    @property
    def _tokens(self) -> GoogleTokens:
        """The token sources, made at the first Vertex call: google-auth (with requests and cryptography, about
        10 MB) is loaded only by a router that has a Vertex deployment to call."""
        if self._google_tokens is None:
            from switchboard_router.providers.google_auth import GoogleTokens
            self._google_tokens = GoogleTokens()
        return self._google_tokens

    def build_request(self, deployment: Deployment, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        headers = request_headers(stream)
        if is_claude(deployment):
            payload = messages_request(deployment, body)
            del payload["model"]
            payload["anthropic_version"] = ANTHROPIC_VERSION
            if stream:
                payload["stream"] = True
            url = f"{model_url(deployment)}:{'streamRawPredict' if stream else 'rawPredict'}"
        else:
            return generate_request(deployment, f"{model_url(deployment)}:{generate_action(stream)}", headers, body)
        return UpstreamRequest("POST", url, headers, orjson.dumps(payload))

    async def authorize(self, deployment: Deployment, request: UpstreamRequest) -> None:
        request.headers["Authorization"] = f"Bearer {await self._tokens.token(deployment)}"

    async def use_prompt_cache(self, deployment: Deployment, request: UpstreamRequest, pool: UpstreamPool) -> None:
        """Gemini models' explicit caching, in the deployment's project and location."""
        await self._gemini.context_caches.apply(deployment, request, pool, create_url=cached_contents_url(deployment),
                                                model_name=model_url(deployment).split("/v1/", 1)[1])

    def parse_response(self, deployment: Deployment, body: bytes) -> CompletionResult:
        publisher = self._claude if is_claude(deployment) else self._gemini
        return publisher.parse_response(deployment, body)

    def stream_translator(self, deployment: Deployment, options: StreamOptions) -> Any:
        publisher = self._claude if is_claude(deployment) else self._gemini
        return publisher.stream_translator(deployment, options)

    def parse_error(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        """Vertex AI's own errors are ``google.rpc.Status``; a Claude model's refusals keep Anthropic's shape."""
        if body.lstrip().startswith(b"{") and b'"type"' in body:
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError:
                payload = None
            if isinstance(payload, dict) and payload.get("type") == "error":
                return self._claude.parse_error(status, body, headers)
        return parse_google_error(status, body, headers)
