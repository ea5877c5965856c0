"""One unary attempt against one deployment: build, send, translate or classify the failure."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from switchboard_common.errors import Kind, ServiceError
from switchboard_router.deployment import Deployment
from switchboard_router.operations import Operation
from switchboard_router.outcomes import (
    DEADLINE,
    Attempted,
    AttemptFailed,
    UnaryResult,
    timeout_error,
    unreachable_error,
)
from switchboard_router.providers.base import (
    CACHE_GONE,
    CredentialError,
    EndpointMissing,
    UpstreamError,
    UpstreamRequest,
)
from switchboard_router.providers.openai_shapes import openai_usage
from switchboard_router.providers.registry import adapter_for
from switchboard_router.routing.health import HealthBoard
from switchboard_router.upstream_http import CallTimeout, ConnectTimeout, ReadTimeout, TransportError, UpstreamPool
from switchboard_router.usage_check import credible
from switchboard_router.usage_estimate import answer_estimate


async def complete_once(pool: UpstreamPool, health: HealthBoard, deployment: Deployment, served_model: str,
                        body: dict[str, Any], attempt: int, operation: Operation,
                        deadline: float | None = None) -> UnaryResult:
    """The whole answer of one deployment, or :class:`AttemptFailed` saying whether to try again.

    The deployment's ``total`` timeout bounds the whole call, and so does ``deadline``
    (a ``time.perf_counter()`` instant: the request's deadline, see the engine) when it
    comes sooner; ``connect`` and ``first_byte`` are the pool's own timeouts (see
    :class:`switchboard_router.upstream_http.HttpPool`).
    Usage the provider did not report, or reported beyond belief, is replaced by the gateway's estimate.
    """
    adapter = adapter_for(deployment.provider)
    if operation in _ENDPOINTS:
        request, parse = build_endpoint(adapter, deployment, body, operation)
    else:
        request = build(adapter, deployment, body, stream=False)
        parse = adapter.parse_response
    await authorize(adapter, deployment, request)
    await use_prompt_cache(adapter, deployment, request, pool)
    try:
        state = health.get(deployment.id)
        state.inflight += 1
        started = time.perf_counter()
        limit, which = deployment.timeouts.total, "total"
        if deadline is not None and deadline - started < limit:
            limit, which = max(0.001, deadline - started), DEADLINE
        try:
            answer = await pool.fetch(request, limit)
            if answer.status in CACHE_GONE and request.without_cache():
                answer = await pool.fetch(request, max(0.001, limit - (time.perf_counter() - started)))
        except CallTimeout as exc:
            raise AttemptFailed(timeout_error(deployment, exc, which), retryable=True) from None
        except ConnectTimeout as exc:
            raise AttemptFailed(timeout_error(deployment, exc, "connect"), retryable=True) from None
        except ReadTimeout as exc:
            raise AttemptFailed(timeout_error(deployment, exc, "first_byte"), retryable=True) from None
        except TransportError as exc:
            raise AttemptFailed(unreachable_error(deployment, exc), retryable=True) from None
        finally:
            state.inflight -= 1
        elapsed = time.perf_counter() - started
        if answer.status >= 400:
            raise AttemptFailed.upstream(adapter.parse_error(answer.status, answer.body, answer.headers()))
        try:
            result = parse(deployment, answer.body)
        except (ValueError, KeyError, TypeError) as exc:
            raise AttemptFailed(UpstreamError(502, f"provider sent an answer the gateway cannot read: {exc}"),
                                retryable=True) from None
        health.record_success(deployment.id, elapsed)
        usage = result.usage
        if not usage.reported_by_provider or not credible(usage, body, deployment):
            usage = answer_estimate(body, result.body)
            if operation is Operation.EMBED:
                result.body["usage"] = {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens}
            elif operation is not Operation.MODERATE:  # a moderation answer has no usage on the wire
                result.body["usage"] = openai_usage(usage)
        usage = usage.with_cache_write(request.cache_write)
        return UnaryResult(result.body, usage, Attempted(deployment, attempt, served_model), elapsed * 1000)
    except BaseException:
        if request.cache_write is not None:  # this request will not pay for the cache: the next success will
            request.cache_write.give_back()
        raise


def build(adapter: Any, deployment: Deployment, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
    """The provider request; a body the provider's format cannot express is the client's error (400), naming the
    field at fault when the translation says which (its ``param``); the provider is never called."""
    try:
        return adapter.build_request(deployment, body, stream=stream)  # type: ignore[no-any-return]  # adapters are duck-typed
    except (ValueError, TypeError) as exc:
        param = getattr(exc, "param", None)
        raise ServiceError(
            Kind.ERROR_KIND_INVALID_REQUEST,
            f"The request cannot be sent to {deployment.provider} ({deployment.described}): {exc}",
            code="untranslatable_request", param=param if isinstance(param, str) else "",
        ) from None


async def authorize(adapter: Any, deployment: Deployment, request: UpstreamRequest) -> None:
    """Adds the credential an adapter fetches per call (see :class:`AuthorizingAdapter`); a failure is one attempt's."""
    step = getattr(adapter, "authorize", None)
    if step is None:
        return
    try:
        await step(deployment, request)
    except CredentialError as exc:
        raise AttemptFailed.upstream(exc.error) from None


async def use_prompt_cache(adapter: Any, deployment: Deployment, request: UpstreamRequest,
                           pool: UpstreamPool) -> None:
    """Lets an adapter put the request's repeated prefix in an explicit cache (see :class:`PromptCachingAdapter`)."""
    step = getattr(adapter, "use_prompt_cache", None)
    if step is not None and request.cacheable is not None:
        await step(deployment, request, pool)


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """An adapter's endpoint other than chat: its methods, and what a client is told when a provider lacks it."""

    builder: str
    parser: str
    what: str
    code: str
    instead: str


_ENDPOINTS = {
    Operation.EMBED: _Endpoint("build_embeddings_request", "parse_embeddings_response", "embeddings",
                               "embeddings_not_supported", "use an embedding model"),
    Operation.TEXT_COMPLETE: _Endpoint("build_text_request", "parse_text_response",
                                       "text completions (/v1/completions)", "completions_not_supported",
                                       "use a model of OpenAI or of an OpenAI-compatible server that has them, or "
                                       "/v1/chat/completions"),
    Operation.MODERATE: _Endpoint("build_moderations_request", "parse_moderations_response", "moderations",
                                  "moderations_not_supported", "use an OpenAI moderation model"),
}


def build_endpoint(adapter: Any, deployment: Deployment, body: dict[str, Any],
                   operation: Operation) -> tuple[UpstreamRequest, Any]:
    """The provider request of an embeddings, text completion or moderation call, and the parser of its answer;
    a provider without the endpoint, or a body it cannot take, is the client's error (400)."""
    endpoint = _ENDPOINTS[operation]
    builder = getattr(adapter, endpoint.builder, None)
    try:
        if builder is None:
            raise EndpointMissing(deployment.provider)
        return builder(deployment, body), getattr(adapter, endpoint.parser)
    except EndpointMissing:
        raise ServiceError(
            Kind.ERROR_KIND_INVALID_REQUEST,
            f"The model {deployment.public_model!r} is served by {deployment.provider}, which has no "
            f"{endpoint.what} endpoint in this gateway; {endpoint.instead}.",
            code=endpoint.code, param="model",
        ) from None
    except (ValueError, TypeError) as exc:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"Invalid {endpoint.what} request: {exc}",
                           code="invalid_request") from None
