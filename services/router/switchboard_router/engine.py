"""The call engine: one completion from choice to answer, with retries and fallbacks.

For each attempt it picks a permitted, healthy deployment, sends the adapter's
request over that deployment's pooled HTTP client, and either returns the
translated answer or decides whether the failure deserves another attempt
(429, 5xx, connection errors, timeouts), honouring Retry-After and backing off
with jitter. When a model's deployments are exhausted it moves to the model's
fallbacks. A stream is retried only before its first byte; after that a
failure ends it with an error event, usage so far included.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from switchboard_common.errors import Kind, ServiceError
from switchboard_router.catalog.config import Catalog, ModelEntry
from switchboard_router.deployment import Deployment
from switchboard_router.providers.base import StreamOptions, TokenUsage, UpstreamError
from switchboard_router.providers.registry import adapter_for
from switchboard_router.routing.access import allowed_models, is_allowed
from switchboard_router.routing.health import HealthBoard
from switchboard_router.routing.selector import choose, permitted
from switchboard_translate.cursor import apply_thinking_suffix

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Constraints:
    allowed_models: Sequence[str] = ()
    privacy_tier: str = ""
    jurisdictions: Sequence[str] = ()


@dataclass(slots=True)
class Attempted:
    """Where a request went: the deployment that answered, and how many tries it took."""

    deployment: Deployment
    attempts: int
    served_model: str


@dataclass(slots=True)
class UnaryResult:
    body: dict[str, Any]
    usage: TokenUsage
    route: Attempted
    provider_ms: float


@dataclass(slots=True)
class StreamStarted:
    route: Attempted


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


@dataclass(slots=True)
class _Plan:
    """The ordered list of models to try and which deployments were already tried."""

    models: list[ModelEntry]
    failed: set[str] = field(default_factory=set)


class _AttemptFailed(Exception):
    def __init__(self, error: UpstreamError | ServiceError, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retryable = retryable
        self.retry_after = retry_after


class Engine:
    """Holds the live catalog, one HTTP pool per deployment and the health board."""

    def __init__(self, catalog: Catalog, max_connections: int = 200) -> None:
        self.catalog = catalog
        self.max_connections = max_connections
        self.health = HealthBoard(catalog.policy.cooldown_failures, catalog.policy.cooldown_seconds)
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._rng = random.Random()

    # -- catalog --------------------------------------------------------------------------

    def replace_catalog(self, catalog: Catalog) -> None:
        """Swaps the catalog; requests in flight keep the deployments they hold."""
        self.catalog = catalog
        self.health.cooldown_failures = catalog.policy.cooldown_failures
        self.health.cooldown_seconds = catalog.policy.cooldown_seconds
        live = {d.id for e in catalog.models.values() for d in e.deployments}
        for dep_id in [k for k in self._clients if k not in live]:
            client = self._clients.pop(dep_id)
            asyncio.get_running_loop().create_task(client.aclose())

    def client_for(self, deployment: Deployment) -> httpx.AsyncClient:
        client = self._clients.get(deployment.id)
        if client is None:
            t = deployment.timeouts
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(connect=t.connect, read=t.first_byte, write=t.first_byte, pool=t.connect),
                limits=httpx.Limits(max_connections=self.max_connections,
                                    max_keepalive_connections=self.max_connections, keepalive_expiry=60),
                follow_redirects=False,
            )
            self._clients[deployment.id] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    # -- planning -------------------------------------------------------------------------

    def _resolve(self, model: str, constraints: Constraints) -> ModelEntry:
        catalog = self.catalog
        entry = catalog.models.get(model)
        visible = allowed_models(catalog.live_models(), constraints.allowed_models, catalog.access_groups)
        if entry is None:
            listing = ", ".join(visible) if visible else "(none)"
            raise ServiceError(
                Kind.ERROR_KIND_MODEL_NOT_FOUND,
                f"The model {model!r} is not served by this gateway. Models this key can use: {listing}.",
                code="model_not_found",
                param="model",
            )
        if not is_allowed(model, constraints.allowed_models, catalog.access_groups):
            listing = ", ".join(visible) if visible else "(none)"
            raise ServiceError(
                Kind.ERROR_KIND_PERMISSION,
                f"This key may not use the model {model!r}. Models this key can use: {listing}.",
                code="model_not_allowed",
                param="model",
            )
        if not entry.deployments:
            reasons = "; ".join(f"{dep}: {why}" for dep, why in entry.unavailable) or "no deployment configured"
            raise ServiceError(
                Kind.ERROR_KIND_NO_HEALTHY_DEPLOYMENT,
                f"The model {model!r} has no live deployment ({reasons}).",
                code="no_live_deployment",
            )
        return entry

    def _candidates(self, entry: ModelEntry, constraints: Constraints, failed: set[str]) -> list[Deployment]:
        allowed = permitted(entry.deployments, constraints.privacy_tier, constraints.jurisdictions,
                            self.catalog.privacy_tiers)
        now = time.monotonic()
        healthy = [d for d in allowed if self.health.is_available(d.id, now)]
        fresh = [d for d in healthy if d.id not in failed]
        return fresh or healthy

    def _next(self, plan: _Plan, constraints: Constraints) -> tuple[ModelEntry, Deployment]:
        any_permitted = False
        for entry in plan.models:
            if permitted(entry.deployments, constraints.privacy_tier, constraints.jurisdictions,
                         self.catalog.privacy_tiers):
                any_permitted = True
            fresh = [d for d in self._candidates(entry, constraints, plan.failed) if d.id not in plan.failed]
            if fresh:
                return entry, choose(fresh, entry.strategy, self.health, self._rng)
        for entry in plan.models:
            again = self._candidates(entry, constraints, set())
            if again:
                return entry, choose(again, entry.strategy, self.health, self._rng)
        if not any_permitted and (constraints.privacy_tier or constraints.jurisdictions):
            raise ServiceError(
                Kind.ERROR_KIND_POLICY,
                f"No deployment of {plan.models[0].name!r} satisfies privacy tier "
                f"{constraints.privacy_tier or 'any'!r}"
                + (f" in jurisdictions {', '.join(constraints.jurisdictions)}" if constraints.jurisdictions else "")
                + ". Use a model that has such a deployment, or a key with a looser tier.",
                code="privacy_tier_unavailable",
            )
        raise ServiceError(
            Kind.ERROR_KIND_NO_HEALTHY_DEPLOYMENT,
            f"Every deployment of {plan.models[0].name!r} is cooling down after repeated failures; retry shortly.",
            code="no_healthy_deployment",
        )

    def _plan(self, entry: ModelEntry, constraints: Constraints) -> _Plan:
        models = [entry]
        for name in entry.fallbacks:
            fb = self.catalog.models.get(name)
            if fb is not None and fb.deployments and is_allowed(name, constraints.allowed_models,
                                                                 self.catalog.access_groups):
                models.append(fb)
        return _Plan(models)

    def _special_fallback(self, plan: _Plan, current: ModelEntry, error: UpstreamError,
                          constraints: Constraints) -> bool:
        names = ()
        if error.context_window_exceeded:
            names = current.context_window_fallbacks
        elif error.content_policy:
            names = current.content_policy_fallbacks
        added = False
        for name in names:
            fb = self.catalog.models.get(name)
            if fb is not None and fb.deployments and fb not in plan.models and is_allowed(
                    name, constraints.allowed_models, self.catalog.access_groups):
                plan.models.insert(plan.models.index(current) + 1, fb)
                added = True
        if added:
            plan.models.remove(current)
        return added

    async def _backoff(self, attempt: int, retry_after: float | None) -> None:
        policy = self.catalog.policy
        delay = min(policy.backoff_max_seconds, policy.backoff_initial_seconds * (2 ** (attempt - 1)))
        delay = delay * (0.5 + self._rng.random() / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, policy.backoff_max_seconds))
        if delay > 0:
            await asyncio.sleep(delay)

    def _fail(self, deployment: Deployment, exc: _AttemptFailed) -> None:
        if exc.retryable:
            if self.health.record_failure(deployment.id):
                log.warning("deployment cooling down", extra={"deployment": deployment.id})

    # -- unary ----------------------------------------------------------------------------

    def _thinking(self, model: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """``<model>-thinking`` (Cursor's reasoning variants) is the base model with reasoning on."""
        if model in self.catalog.models or not model.endswith("-thinking"):
            return model, body
        resolved = apply_thinking_suffix({**body, "model": model}, self.catalog.models.__contains__)
        return str(resolved["model"]), resolved

    async def complete(self, model: str, body: dict[str, Any], constraints: Constraints,
                       operation: str = "chat") -> UnaryResult:
        """One whole answer; ``operation`` is "chat" (Chat Completions) or "embeddings"."""
        if operation == "chat":
            model, body = self._thinking(model, body)
        entry = self._resolve(model, constraints)
        plan = self._plan(entry, constraints)
        max_attempts = max(1, self.catalog.policy.max_attempts)
        attempt = 0
        while True:
            attempt += 1
            current, deployment = self._next(plan, constraints)
            try:
                return await self._complete_once(deployment, current, body, attempt, operation)
            except _AttemptFailed as exc:
                self._fail(deployment, exc)
                plan.failed.add(deployment.id)
                special = isinstance(exc.error, UpstreamError) and self._special_fallback(
                    plan, current, exc.error, constraints)
                if (not exc.retryable and not special) or attempt >= max_attempts + len(plan.models) - 1:
                    raise _as_service_error(exc, deployment) from None
                await self._backoff(attempt, exc.retry_after)

    async def _complete_once(self, deployment: Deployment, entry: ModelEntry, body: dict[str, Any],
                             attempt: int, operation: str) -> UnaryResult:
        adapter = adapter_for(deployment.provider)
        if operation == "embeddings":
            request = _build_embeddings(adapter, deployment, body)
            parse = adapter.parse_embeddings_response  # type: ignore[attr-defined]
        else:
            request = _build(adapter, deployment, body, stream=False)
            parse = adapter.parse_response
        client = self.client_for(deployment)
        health = self.health.get(deployment.id)
        health.inflight += 1
        started = time.perf_counter()
        try:
            async with asyncio.timeout(deployment.timeouts.total):
                response = await client.request(request.method, request.url, headers=request.headers,
                                                content=request.content)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise _AttemptFailed(_timeout_error(deployment, exc), retryable=True) from None
        except httpx.TransportError as exc:
            raise _AttemptFailed(_unreachable_error(deployment, exc), retryable=True) from None
        finally:
            health.inflight -= 1
        elapsed = time.perf_counter() - started
        if response.status_code >= 400:
            error = adapter.parse_error(response.status_code, response.content, dict(response.headers))
            raise _AttemptFailed(error, retryable=error.retryable, retry_after=error.retry_after)
        try:
            result = parse(deployment, response.content)
        except (ValueError, KeyError, TypeError) as exc:
            raise _AttemptFailed(UpstreamError(502, f"provider sent an answer the gateway cannot read: {exc}"),
                                 retryable=True) from None
        self.health.record_success(deployment.id, elapsed)
        return UnaryResult(result.body, result.usage, Attempted(deployment, attempt, entry.name), elapsed * 1000)

    # -- stream ---------------------------------------------------------------------------

    async def stream(self, model: str, body: dict[str, Any], constraints: Constraints,
                     include_usage: bool) -> AsyncIterator[StreamItem]:
        model, body = self._thinking(model, body)
        entry = self._resolve(model, constraints)
        plan = self._plan(entry, constraints)
        max_attempts = max(1, self.catalog.policy.max_attempts)
        attempt = 0
        while True:
            attempt += 1
            current, deployment = self._next(plan, constraints)
            started_stream = False
            try:
                async for item in self._stream_once(deployment, current, body, attempt, include_usage):
                    started_stream = True
                    yield item
                return
            except _AttemptFailed as exc:
                if started_stream:
                    raise  # _stream_once reports failures after the first byte itself
                self._fail(deployment, exc)
                plan.failed.add(deployment.id)
                special = isinstance(exc.error, UpstreamError) and self._special_fallback(
                    plan, current, exc.error, constraints)
                if (not exc.retryable and not special) or attempt >= max_attempts + len(plan.models) - 1:
                    raise _as_service_error(exc, deployment) from None
                await self._backoff(attempt, exc.retry_after)

    async def _stream_once(self, deployment: Deployment, entry: ModelEntry, body: dict[str, Any], attempt: int,
                           include_usage: bool) -> AsyncIterator[StreamItem]:
        adapter = adapter_for(deployment.provider)
        request = _build(adapter, deployment, body, stream=True)
        translator = adapter.stream_translator(deployment, StreamOptions(include_usage=include_usage, model=entry.name))
        client = self.client_for(deployment)
        health = self.health.get(deployment.id)
        route = Attempted(deployment, attempt, entry.name)
        t = deployment.timeouts
        started = time.perf_counter()
        health.inflight += 1
        try:
            http_request = client.build_request(request.method, request.url, headers=request.headers,
                                                content=request.content)
            try:
                async with asyncio.timeout(t.first_byte + t.connect):
                    response = await client.send(http_request, stream=True)
            except (TimeoutError, httpx.TimeoutException) as exc:
                raise _AttemptFailed(_timeout_error(deployment, exc), retryable=True) from None
            except httpx.TransportError as exc:
                raise _AttemptFailed(_unreachable_error(deployment, exc), retryable=True) from None
            try:
                if response.status_code >= 400:
                    content = await response.aread()
                    error = adapter.parse_error(response.status_code, content, dict(response.headers))
                    raise _AttemptFailed(error, retryable=error.retryable, retry_after=error.retry_after)
                async for item in self._pump(response, translator, route, started, deployment):
                    yield item
            finally:
                await response.aclose()
        finally:
            health.inflight -= 1

    async def _pump(self, response: httpx.Response, translator: Any, route: Attempted, started: float,
                    deployment: Deployment) -> AsyncIterator[StreamItem]:
        t = deployment.timeouts
        deadline = started + t.total
        raw = response.aiter_raw()
        ttfb_ms = 0.0
        produced_bytes = 0
        chunk_count = 0
        announced = False
        error: ServiceError | None = None
        while True:
            timeout = min(t.stream_idle if announced else t.first_byte, max(0.001, deadline - time.perf_counter()))
            try:
                async with asyncio.timeout(timeout):
                    data = await anext(raw)
            except StopAsyncIteration:
                chunks = translator.close()
                if chunks:
                    chunk_count += len(chunks)
                    produced_bytes += sum(len(c) for c in chunks)
                    yield StreamChunks(chunks)
                break
            except (TimeoutError, httpx.TimeoutException) as exc:
                if not announced:
                    raise _AttemptFailed(_timeout_error(deployment, exc), retryable=True) from None
                error = _service_error_from_upstream(_timeout_error(deployment, exc), deployment)
                break
            except httpx.TransportError as exc:
                if not announced:
                    raise _AttemptFailed(_unreachable_error(deployment, exc), retryable=True) from None
                error = ServiceError(Kind.ERROR_KIND_UPSTREAM_UNREACHABLE,
                                     f"The provider of {deployment.id} broke the stream off: {exc}",
                                     code="upstream_stream_interrupted", provider=deployment.provider)
                break
            chunks = translator.feed(data)
            if translator.error is not None and not announced and not chunks:
                err = translator.error
                raise _AttemptFailed(err, retryable=err.retryable, retry_after=err.retry_after)
            if not announced and (chunks or data):
                announced = True
                ttfb_ms = (time.perf_counter() - started) * 1000
                self.health.record_success(deployment.id, ttfb_ms / 1000)
                yield StreamStarted(route)
            if chunks:
                chunk_count += len(chunks)
                produced_bytes += sum(len(c) for c in chunks)
                yield StreamChunks(chunks)
            if translator.error is not None:
                error = _service_error_from_upstream(translator.error, deployment)
                break
        if not announced:
            ttfb_ms = (time.perf_counter() - started) * 1000
            yield StreamStarted(route)
        usage = translator.usage
        if usage is None:
            # The stream ended without the provider's usage: bill an estimate of what was produced.
            usage = TokenUsage(completion_tokens=max(0, (produced_bytes - 140 * chunk_count) // 4),
                               reported_by_provider=False)
        provider_ms = (time.perf_counter() - started) * 1000
        yield StreamFinished(usage, route, provider_ms, ttfb_ms, error)


def _build(adapter: Any, deployment: Deployment, body: dict[str, Any], *, stream: bool) -> Any:
    """The provider request; a body the provider's format cannot express is the client's error (400)."""
    try:
        return adapter.build_request(deployment, body, stream=stream)
    except (ValueError, TypeError) as exc:
        raise ServiceError(
            Kind.ERROR_KIND_INVALID_REQUEST,
            f"The request cannot be sent to {deployment.provider} ({deployment.id}): {exc}",
            code="untranslatable_request",
        ) from None


def _build_embeddings(adapter: Any, deployment: Deployment, body: dict[str, Any]) -> Any:
    builder = getattr(adapter, "build_embeddings_request", None)
    if builder is None:
        raise ServiceError(
            Kind.ERROR_KIND_INVALID_REQUEST,
            f"The model {deployment.public_model!r} is served by {deployment.provider}, which has no embeddings "
            "endpoint in this gateway; use an embedding model.",
            code="embeddings_not_supported", param="model",
        )
    try:
        return builder(deployment, body)
    except (ValueError, TypeError) as exc:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"Invalid embeddings request: {exc}",
                           code="invalid_request") from None


def _timeout_error(deployment: Deployment, exc: BaseException) -> UpstreamError:
    return UpstreamError(504, f"The provider of {deployment.id} did not answer in time ({type(exc).__name__}).",
                         type="timeout", code="upstream_timeout")


def _unreachable_error(deployment: Deployment, exc: BaseException) -> UpstreamError:
    return UpstreamError(502, f"The provider of {deployment.id} could not be reached: {exc or type(exc).__name__}.",
                         type="connection_error", code="upstream_unreachable")


def _service_error_from_upstream(error: UpstreamError, deployment: Deployment) -> ServiceError:
    if error.code == "upstream_timeout":
        kind = Kind.ERROR_KIND_UPSTREAM_TIMEOUT
    elif error.code == "upstream_unreachable":
        kind = Kind.ERROR_KIND_UPSTREAM_UNREACHABLE
    else:
        kind = Kind.ERROR_KIND_UPSTREAM
    headers = {}
    if error.retry_after is not None:
        headers["retry-after"] = str(int(error.retry_after + 0.999))
    return ServiceError(kind, error.message, code=error.code or error.type, http_status=error.status,
                        provider=deployment.provider, headers=headers)


def _as_service_error(exc: _AttemptFailed, deployment: Deployment) -> ServiceError:
    if isinstance(exc.error, ServiceError):
        return exc.error
    return _service_error_from_upstream(exc.error, deployment)
