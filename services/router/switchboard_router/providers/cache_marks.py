"""Prompt-cache breakpoints for the deployments whose provider caches on marks (Anthropic's models).

A deployment's ``prompt_cache`` setting decides whether the gateway places marks
of its own (``auto``) or passes only the client's (``off``); see
:mod:`switchboard_translate.prompt_cache` for where they go. Unset, it is ``auto``
for Claude models (Anthropic, Bedrock and Vertex AI deployments alike).
"""

from __future__ import annotations

from typing import Any

from switchboard_router.deployment import Deployment
from switchboard_translate.prompt_cache import with_breakpoints

AUTO, OFF = "auto", "off"
MODES = (AUTO, OFF)


def automatic(deployment: Deployment) -> bool:
    """Whether the gateway places cache marks for this deployment's requests."""
    mode: object = deployment.extra.get("prompt_cache")
    if mode is None:
        return deployment.provider == "anthropic" or "claude" in deployment.model
    return mode == AUTO


def with_cache_marks(deployment: Deployment, body: dict[str, Any]) -> dict[str, Any]:
    """The body with the client's cache marks (no more than the provider takes) and, if automatic, the gateway's."""
    return with_breakpoints(body, model=deployment.model, auto=automatic(deployment))
