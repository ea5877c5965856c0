"""What one completion produces (answers, stream items) and how a failed attempt is described.

Shared by the engine's orchestration (:mod:`switchboard_router.engine`) and the
single-attempt code (:mod:`switchboard_router.calls`, :mod:`switchboard_router.streaming`),
so that neither has to import the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from switchboard_common.errors import Kind, ServiceError
from switchboard_router.deployment import Deployment
from switchboard_router.providers.base import TokenUsage, UpstreamError
from switchboard_router.redaction import deployment_secrets, redact


@dataclass(slots=True)
class Attempted:
    """Where a request went: the deployment that answered, and how many tries it took."""

    deployment: Deployment
    attempts: int
    served_model: str
    #: The max_tokens the gateway sent because of the call's output bound (0: the client's own, or none).
    output_tokens_sent: int = 0


@dataclass(slots=True)
class UnaryResult:
    body: dict[str, Any]
    usage: TokenUsage
    route: Attempted
    provider_ms: float


@dataclass(slots=True)
class StreamStarted:
    route: Attempted
    #: Milliseconds from sending the provider request to its first byte (the provider's share of TTFT).
    ttfb_ms: float = 0.0


@dataclass(slots=True)
class StreamChunks:
    chunks: list[bytes]


@dataclass(slots=True)
class StreamFinished:
    usage: TokenUsage
    route: Attempted
    provider_ms: float
    ttfb_ms: float
    error: ServiceError | None = None


StreamItem = StreamStarted | StreamChunks | StreamFinished


class AttemptFailed(Exception):
    """One attempt failed before anything reached the client, so another attempt may follow."""

    def __init__(self, error: UpstreamError | ServiceError, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retryable = retryable
        self.retry_after = retry_after

    @classmethod
    def upstream(cls, error: UpstreamError) -> AttemptFailed:
        return cls(error, retryable=error.retryable, retry_after=error.retry_after)


#: ``which`` of :func:`timeout_error` when the request's deadline across attempts cut the wait.
DEADLINE = "deadline"


def timeout_error(deployment: Deployment, exc: BaseException, which: str = "") -> UpstreamError:
    if which == DEADLINE:
        limit = " before the request's deadline (router_settings.request_deadline_seconds)"
    else:
        limit = f" within its {which} timeout" if which else " in time"
    return UpstreamError(504, f"The provider of {deployment.described} did not answer{limit} ({type(exc).__name__}).",
                         type="timeout", code="upstream_timeout")


def unreachable_error(deployment: Deployment, exc: BaseException) -> UpstreamError:
    return UpstreamError(502, f"The provider of {deployment.described} could not be reached: "
                              f"{exc or type(exc).__name__}.", type="connection_error", code="upstream_unreachable")


def service_error_from_upstream(error: UpstreamError, deployment: Deployment) -> ServiceError:
    """The error a client gets for a failed call to ``deployment``.

    This is the one way from a provider's answer to a client's error, so it is where
    credentials are removed from what the provider said (:mod:`switchboard_router.redaction`).
    """
    if error.code == "upstream_timeout":
        kind = Kind.ERROR_KIND_UPSTREAM_TIMEOUT
    elif error.code in ("upstream_unreachable", "upstream_stream_interrupted"):
        kind = Kind.ERROR_KIND_UPSTREAM_UNREACHABLE
    else:
        kind = Kind.ERROR_KIND_UPSTREAM
    headers = {}
    if error.retry_after is not None:
        headers["retry-after"] = str(int(error.retry_after + 0.999))
    secrets = deployment_secrets(deployment)
    return ServiceError(kind, redact(error.message, secrets), code=redact(error.code or error.type, secrets),
                        http_status=error.status, provider=deployment.provider, headers=headers)


def as_service_error(exc: AttemptFailed, deployment: Deployment) -> ServiceError:
    if isinstance(exc.error, ServiceError):
        return exc.error
    return service_error_from_upstream(exc.error, deployment)
