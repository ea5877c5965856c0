"""A provider deployment as the router uses it: where to call, with what, under which policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-deployment timeouts, seconds."""

    connect: float = 10.0
    #: From sending the request to the first byte of the answer.
    first_byte: float = 120.0
    #: Whole call, first byte to last.
    total: float = 600.0
    #: Longest silence between two stream chunks.
    stream_idle: float = 60.0


@dataclass(frozen=True, slots=True)
class Deployment:
    """One way to serve a public model: a provider, its model id and credentials."""

    #: Stable id, "<public model>/<index>" unless the config names it.
    id: str
    #: Public model name clients send.
    public_model: str
    #: Adapter name: "openai", "azure", "anthropic", "gemini", "bedrock", "mistral", "ollama", ...
    provider: str
    #: The provider's own model id (Azure: the deployment name).
    model: str
    #: Base URL of the provider API, e.g. "https://api.openai.com/v1".
    api_base: str
    #: Operator credential for the provider; None when the provider needs none.
    api_key: str | None = None
    #: Provider-specific settings (api_version, aws_region, aws_secret_access_key, headers, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    jurisdiction: str = ""
    privacy_tier: str = "standard"
    weight: float = 1.0
    timeouts: Timeouts = Timeouts()
    context_window: int = 0
    max_output_tokens: int = 0

    @property
    def described(self) -> str:
        """How a client's error names it: the id where that names the model ("gpt-4o/0"), else the model too (a
        deployment added at run time has a generated id)."""
        return self.id if self.id.startswith(self.public_model + "/") else f"{self.public_model} ({self.id})"
