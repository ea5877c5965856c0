"""AWS Bedrock Runtime adapter: the Converse and ConverseStream APIs.

Converse is Bedrock's model-independent chat API, so one translation serves
every model family Bedrock hosts. Calls are signed with SigV4 (credentials
in the deployment's ``extra``) or carry a Bedrock API key as a bearer token.
Streams come back in the binary AWS event-stream framing, not SSE.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from switchboard_router.deployment import Deployment
from switchboard_router.providers.base import CompletionResult, StreamOptions, UpstreamError, UpstreamRequest
from switchboard_router.providers.bedrock_messages import converse_body
from switchboard_router.providers.bedrock_response import BedrockStreamTranslator, converse_error, parse_converse
from switchboard_router.providers.bedrock_sigv4 import sign_headers
from switchboard_router.providers.cache_marks import with_cache_marks

DEFAULT_REGION = "us-east-1"


def bedrock_base_url(deployment: Deployment) -> str:
    region = str(deployment.extra.get("aws_region") or DEFAULT_REGION)
    return (deployment.api_base or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")


class BedrockAdapter:
    """Bedrock Converse wire format."""

    name = "bedrock"

    def build_request(self, deployment: Deployment, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        url = f"{bedrock_base_url(deployment)}/model/{quote(deployment.model, safe='')}/"
        url += "converse-stream" if stream else "converse"
        content = orjson.dumps(converse_body(with_cache_marks(deployment, body), model=deployment.model,
                                             default_max_tokens=deployment.max_output_tokens or None))
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/vnd.amazon.eventstream" if stream else "application/json",
        }
        extra = deployment.extra
        if extra.get("aws_access_key_id") and extra.get("aws_secret_access_key"):
            headers = sign_headers(
                method="POST",
                url=url,
                headers=headers,
                body=content,
                region=str(extra.get("aws_region") or DEFAULT_REGION),
                access_key_id=str(extra["aws_access_key_id"]),
                secret_access_key=str(extra["aws_secret_access_key"]),
                session_token=extra.get("aws_session_token"),
            )
        elif deployment.api_key:
            headers["Authorization"] = f"Bearer {deployment.api_key}"
        else:
            raise ValueError(
                f"Bedrock deployment {deployment.id!r} has no credentials: set aws_access_key_id and "
                "aws_secret_access_key in its extra settings, or a Bedrock API key as its api_key"
            )
        return UpstreamRequest("POST", url, headers, content)

    def parse_response(self, deployment: Deployment, body: bytes) -> CompletionResult:
        return parse_converse(body, deployment.public_model or deployment.model)

    def stream_translator(self, deployment: Deployment, options: StreamOptions) -> BedrockStreamTranslator:
        return BedrockStreamTranslator(options.model or deployment.public_model or deployment.model, options)

    def parse_error(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        return converse_error(status, body, headers)
