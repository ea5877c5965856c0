"""The call engine: one completion from choice to answer, with retries and fallbacks.

For each attempt it picks a permitted, healthy deployment, sends the adapter's
request over that deployment's HTTP pool (:mod:`switchboard_router.upstream_http`), and either returns the
translated answer or decides whether the failure deserves another attempt
(429, 5xx, connection errors, timeouts), honouring Retry-After and backing off
with jitter. When a model's deployments are exhausted it moves to the model's
fallbacks. A stream is retried only before its first byte; after that a
failure ends it with an error event, usage so far included.

A request's deadline (``router_settings.request_deadline_seconds``) bounds the
retrying: no attempt starts and no backoff ends past it, and an attempt after the
first waits for its answer (a stream: its first byte) only until then. The first
attempt keeps its deployment's own timeouts, so a deployment configured to wait
long for a slow model still can; a stream that has started runs to its end.

This module is the orchestration; one attempt is :mod:`switchboard_router.calls`
(unary) or :mod:`switchboard_router.streaming` (stream), and the result types
live in :mod:`switchboard_router.outcomes`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from switchboard_common import metrics, tracing
from switchboard_common.errors import Kind, ServiceError
from switchboard_router import request_id
from switchboard_router.byok import with_own_credential
from switchboard_router.calls import complete_once
from switchboard_router.catalog.config import Catalog, ModelEntry
from switchboard_router.deployment import Deployment, Timeouts
from switchboard_router.operations import Operation
from switchboard_router.outcomes import (
    Attempted,
    AttemptFailed,
    StreamChunks,
    StreamFinished,
    StreamItem,
    StreamStarted,
    UnaryResult,
    as_service_error,
)
from switchboard_router.providers.base import UpstreamError
from switchboard_router.providers.registry import pool_factory_for
from switchboard_router.routing.access import allowed_models, is_allowed
from switchboard_router.routing.health import HealthBoard
from switchboard_router.routing.selector import choose, permitted, tier_allows
from switchboard_router.streaming import stream_once
from switchboard_router.upstream_http import HttpPool, PoolFactory, UpstreamPool
from switchboard_translate.cursor import apply_thinking_suffix
from switchboard_translate.output_bound import bounded

__all__ = ["Attempted", "Constraints", "Engine", "StreamChunks", "StreamFinished", "StreamItem", "StreamStarted",
           "UnaryResult"]

log = logging.getLogger(__name__)
#: The attempt "span" when tracing is off: nothing to record.
_UNTRACED: AbstractContextManager[None] = nullcontext()


@dataclass(slots=True)
class Constraints:
    allowed_models: Sequence[str] = ()
    privacy_tier: str = ""
    jurisdictions: Sequence[str] = ()
    #: Provider -> the caller's own API key (bring your own key; see byok.py). Never logged.
    credentials: Mapping[str, str] = field(default_factory=dict)
    #: The most output tokens the call may produce (its budget hold's bound); 0: no bound. Each attempt sends
    #: the provider min(this, the deployment's output limit) when the client asked for more or nothing.
    output_bound: int = 0
    #: The key's own tier ("" none), and whether ``privacy_tier`` is the request's ask rather than that pin (a
    #: stricter ask, or any ask of an unpinned key): a refusal then advises a looser ask, not a looser key.
    key_privacy_tier: str = ""
    tier_asked: bool = False
    #: The key's own jurisdictions (empty: anywhere), and whether ``jurisdictions`` is the request's narrowing of
    #: them: a refusal then advises a wider ask, not another key.
    key_jurisdictions: Sequence[str] = ()
    jurisdictions_asked: bool = False


def _looser(constraints: Constraints) -> str:
    """The other way out of a tier no deployment meets: the request's own ask loosened when the tier is its ask
    (a looser key could not help), else a key with a looser tier."""
    if not constraints.tier_asked:
        return "a key with a looser tier."
    if constraints.key_privacy_tier:
        return (f"ask for a looser privacy tier (this key is pinned to {constraints.key_privacy_tier!r}, which "
                "applies when the request asks for none).")
    return "ask for a looser privacy tier, or none."


def _wider(constraints: Constraints) -> str:
    """The other way out of jurisdictions no deployment is in: the request's own narrowing widened when it
    narrowed them (another key could not help), else a key allowed there."""
    if constraints.jurisdictions_asked:
        allowed = ", ".join(constraints.key_jurisdictions) if constraints.key_jurisdictions else "any"
        return f"ask for jurisdictions it can be served in, or none (this key allows: {allowed})."
    return "a key allowed there (a request may narrow its key's jurisdictions, never widen them)."


def bounded_for(body: dict[str, Any], output_bound: int, deployment: Deployment) -> tuple[dict[str, Any], int]:
    """The body one attempt sends, its output cap lowered to the call's bound (never above the deployment's own
    output limit), and the cap the gateway set (0: the client's own applies, or there is no bound)."""
    if output_bound <= 0:
        return body, 0
    limit = deployment.max_output_tokens
    return bounded(body, min(output_bound, limit) if limit else output_bound)


@dataclass(slots=True)
class _Plan:
    """The ordered list of models to try and which deployments were already tried."""

    models: list[ModelEntry]
    failed: set[str] = field(default_factory=set)
    #: Models put in the plan by a context-window or content-policy fallback: one that fails the same way
    #: hands over to the next of them.
    special: list[ModelEntry] = field(default_factory=list)
    #: Models taken out of the plan after failing (each had its attempt).
    dropped: int = 0


class Engine:
    """Holds the live catalog, one HTTP pool per deployment and the health board.

    ``pool_factory`` builds a deployment's pool from its timeouts and the connection limit;
    tests hand in one that answers without sockets. A provider that answers inside the router
    (``demo``) brings its own (:func:`~switchboard_router.providers.registry.pool_factory_for`).
    """

    def __init__(self, catalog: Catalog, max_connections: int = 200, pool_factory: PoolFactory = HttpPool) -> None:
        self.catalog = catalog
        self.max_connections = max_connections
        self.health = HealthBoard(catalog.policy.cooldown_failures, catalog.policy.cooldown_seconds)
        self._pool_factory = pool_factory
        self._pools: dict[str, UpstreamPool] = {}
        self._pool_timeouts: dict[str, Timeouts] = {}
        #: Pools a reload replaced, closed once their calls are past their timeout (or at shutdown).
        self._retired: set[UpstreamPool] = set()
        self._rng = random.Random()

    # -- catalog --------------------------------------------------------------------------

    def replace_catalog(self, catalog: Catalog) -> None:
        """Swaps the catalog; requests in flight keep the deployments they hold."""
        self.catalog = catalog
        self.health.cooldown_failures = catalog.policy.cooldown_failures
        self.health.cooldown_seconds = catalog.policy.cooldown_seconds
        live = {d.id for e in catalog.models.values() for d in e.deployments}
        for dep_id in [k for k in self._pools if k not in live]:
            self._retire(self._pools.pop(dep_id), self._pool_timeouts.pop(dep_id))

    def _retire(self, pool: UpstreamPool, timeouts: Timeouts) -> None:
        """Closes a pool no longer handed out once the calls it may still carry are past their timeout."""
        self._retired.add(pool)
        loop = asyncio.get_running_loop()

        def close() -> None:
            if pool in self._retired:
                self._retired.discard(pool)
                loop.create_task(pool.aclose())

        loop.call_later(timeouts.total + timeouts.connect, close)

    def pool_for(self, deployment: Deployment) -> UpstreamPool:
        """The deployment's HTTP pool; rebuilt when a reload changed the deployment's timeouts."""
        pool = self._pools.get(deployment.id)
        if pool is not None:
            held = self._pool_timeouts[deployment.id]
            # Identity first: the same catalog hands out the same Timeouts object, no field compare needed.
            if held is deployment.timeouts or held == deployment.timeouts:
                return pool
            self._retire(pool, held)
        pool = pool_factory_for(deployment.provider, self._pool_factory)(deployment.timeouts, self.max_connections)
        if tracing.enabled():
            from switchboard_router.upstream_spans import TracedPool

            pool = TracedPool(pool)
        self._pools[deployment.id] = pool
        self._pool_timeouts[deployment.id] = deployment.timeouts
        return pool

    async def aclose(self) -> None:
        pools = [*self._pools.values(), *self._retired]
        self._pools.clear()
        self._retired.clear()
        for pool in pools:
            await pool.aclose()

    # -- planning -------------------------------------------------------------------------

    def _resolve(self, model: str, constraints: Constraints) -> ModelEntry:
        catalog = self.catalog
        entry = catalog.resolve(model)
        if entry is None:
            listing = self._listing(constraints)
            raise ServiceError(
                Kind.ERROR_KIND_MODEL_NOT_FOUND,
                f"The model {model!r} is not served by this gateway. Models this key can use: {listing}.",
                code="model_not_found",
                param="model",
            )
        if not is_allowed(model, constraints.allowed_models, catalog.access_groups):
            listing = self._listing(constraints)
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

    def _listing(self, constraints: Constraints) -> str:
        """The models this caller may use, for error messages."""
        visible = self.reachable_models(constraints)
        return ", ".join(visible) if visible else "(none)"

    def _permitted(self, entry: ModelEntry, constraints: Constraints) -> list[Deployment]:
        return permitted(entry.deployments, constraints.privacy_tier, constraints.jurisdictions,
                         self.catalog.privacy_tiers)

    def permitted_deployments(self, model: str, constraints: Constraints) -> list[Deployment]:
        """The deployments of ``model`` (a live public name, or one a wildcard entry serves) that may serve a
        request under ``constraints``."""
        entry = self.catalog.models.get(model) or self.catalog.resolve(model)
        return self._permitted(entry, constraints) if entry is not None else []

    def reachable_models(self, constraints: Constraints, names: Iterable[str] | None = None) -> list[str]:
        """The live models a request under ``constraints`` can be served by: allowed to the caller, with a
        deployment within its privacy tier and jurisdictions, its own or one of its fallbacks' (the same plan a
        request follows). What model lists show, so that they list what succeeds. ``names``: the names to
        consider (the catalog's listing with its wildcard entries' models); default the live entries."""
        catalog = self.catalog
        visible = allowed_models(catalog.live_models() if names is None else names, constraints.allowed_models,
                                 catalog.access_groups)
        reachable = []
        for name in visible:
            entry = catalog.models.get(name) or catalog.resolve(name)
            if entry is not None and any(self._permitted(e, constraints) for e in self._plan(entry,
                                                                                           constraints).models):
                reachable.append(name)
        return reachable

    def _candidates(self, entry: ModelEntry, constraints: Constraints, failed: set[str]) -> list[Deployment]:
        allowed = self._permitted(entry, constraints)
        now = time.monotonic()
        healthy = [d for d in allowed if self.health.is_available(d.id, now)]
        fresh = [d for d in healthy if d.id not in failed]
        return fresh or healthy

    def _next(self, plan: _Plan, constraints: Constraints) -> tuple[ModelEntry, Deployment]:
        any_permitted = False
        for entry in plan.models:
            if self._permitted(entry, constraints):
                any_permitted = True
            fresh = [d for d in self._candidates(entry, constraints, plan.failed) if d.id not in plan.failed]
            if fresh:
                return entry, choose(fresh, entry.strategy, self.health, self._rng)
        for entry in plan.models:
            again = self._candidates(entry, constraints, set())
            if again:
                return entry, choose(again, entry.strategy, self.health, self._rng)
        if not any_permitted and (constraints.privacy_tier or constraints.jurisdictions):
            raise self._unservable(plan, constraints)
        now = time.monotonic()
        waits = [self.health.get(d.id).cooldown_until - now for entry in plan.models
                 for d in self._permitted(entry, constraints)]
        wait = max(1, math.ceil(min(waits, default=1.0)))
        raise ServiceError(
            Kind.ERROR_KIND_NO_HEALTHY_DEPLOYMENT,
            f"Every deployment of {plan.models[0].name!r} is cooling down after repeated failures; "
            f"the first returns in about {wait} s. Retry then, or use another model.",
            code="no_healthy_deployment",
            headers={"retry-after": str(wait)},
        )

    def _unservable(self, plan: _Plan, constraints: Constraints) -> ServiceError:
        """The refusal of a request no deployment of its model (or fallbacks) may serve: by jurisdiction when
        the tier alone would be met (naming the jurisdictions that could serve it), else by tier."""
        tiers, tier = self.catalog.privacy_tiers, constraints.privacy_tier
        name = plan.models[0].name
        which = f"{name!r}" + (" or its fallbacks" if len(plan.models) > 1 else "")
        at_tier = [d for entry in plan.models for d in entry.deployments if tier_allows(d.privacy_tier, tier, tiers)]
        if constraints.jurisdictions and at_tier:
            could = sorted({d.jurisdiction for d in at_tier if d.jurisdiction})
            where = (f"It can be served in: {', '.join(could)}. Use another model, or "
                     + _wider(constraints) if could else "None of its deployments declares a jurisdiction.")
            return ServiceError(
                Kind.ERROR_KIND_POLICY,
                f"No deployment of {which} is in jurisdictions {', '.join(constraints.jurisdictions)}"
                + (f" at privacy tier {tier!r}" if tier else "") + f". {where}",
                code="jurisdiction_unavailable", param="jurisdiction")
        offered = sorted({f"{d.privacy_tier} in {d.jurisdiction or 'no declared jurisdiction'}"
                          for entry in plan.models for d in entry.deployments})
        return ServiceError(
            Kind.ERROR_KIND_POLICY,
            f"No deployment of {which} satisfies privacy tier {tier or 'any'!r}"
            + (f" in jurisdictions {', '.join(constraints.jurisdictions)}" if constraints.jurisdictions else "")
            + f" (it is served at: {'; '.join(offered)}). Use a model that has such a deployment, or "
            + _looser(constraints), code="privacy_tier_unavailable")

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
        """After a context-window or content-policy error: the model's fallbacks for it go next, in their order,
        in place of the model (one also listed in ``fallbacks`` further on is moved up; one tried before is not
        tried again). Only fallbacks the request may be served by count: when there is none, the provider's
        error is the answer, not a policy error naming a model the client never asked for."""
        names: tuple[str, ...] = ()
        if error.context_window_exceeded:
            names = current.context_window_fallbacks
        elif error.content_policy:
            names = current.content_policy_fallbacks
        else:
            return False
        position = plan.models.index(current)
        if not names and current in plan.special:
            # A fallback that fails the same way: the next fallback of the same list, if one is left.
            following = [m for m in plan.models[position + 1:] if m in plan.special]
            if following:
                plan.models.remove(current)
                plan.dropped += 1
                return True
            return False
        added = 0
        for name in names:
            fb = self.catalog.models.get(name)
            if (fb is None or not fb.deployments or fb is current
                    or not is_allowed(name, constraints.allowed_models, self.catalog.access_groups)
                    or not self._permitted(fb, constraints)):
                continue
            if fb in plan.models:
                if plan.models.index(fb) < position:
                    continue  # tried before the failing model
                plan.models.remove(fb)
            plan.models.insert(position + 1 + added, fb)
            plan.special.append(fb)
            added += 1
        if added:
            plan.models.remove(current)
            plan.dropped += 1
        return added > 0

    def _retry(self, plan: _Plan, current: ModelEntry, deployment: Deployment, exc: AttemptFailed,
               constraints: Constraints, attempt: int, deadline: float | None) -> float:
        """After a failed attempt: the seconds to wait before the next one, or the error to give up with.

        A retryable failure counts toward the deployment's circuit breaker. The
        next attempt goes to a deployment not yet tried when there is one, with
        no wait; when only the failing deployment is left, it is retried after
        an exponential backoff with jitter, or after the provider's Retry-After
        — unless that is longer than ``backoff_max_seconds``, in which case the
        provider's answer (with its Retry-After) goes to the client at once.
        No attempt starts, and no wait ends, past the request's ``deadline``.
        """
        error = as_service_error(exc, deployment)
        log.log(logging.WARNING if exc.retryable else logging.INFO, "provider attempt failed", extra={
            "request_id": request_id.current(), "deployment": deployment.id, "attempt": attempt,
            "http_status": error.error.http_status, "code": error.error.code, "error": error.message})
        if exc.retryable and self.health.record_failure(deployment.id):
            log.warning("deployment cooling down", extra={"deployment": deployment.id})
            metrics.COOLDOWNS.labels(deployment.id).inc()
        plan.failed.add(deployment.id)
        special = isinstance(exc.error, UpstreamError) and self._special_fallback(plan, current, exc.error,
                                                                                   constraints)
        policy = self.catalog.policy
        servable = sum(1 for entry in plan.models if self._permitted(entry, constraints))  # out-of-tier: no tries
        if (not exc.retryable and not special) or attempt >= max(1, policy.max_attempts) + servable + plan.dropped - 1:
            raise error from None
        if special or self._has_fresh(plan, constraints):
            delay = 0.0
        elif not any(self._candidates(entry, constraints, set()) for entry in plan.models):
            # This failure put the last deployment into cool-down: the provider's error says more than a 503.
            raise error from None
        elif exc.retry_after is not None and exc.retry_after > policy.backoff_max_seconds:
            raise error from None
        else:
            delay = min(policy.backoff_max_seconds, policy.backoff_initial_seconds * (2 ** (attempt - 1)))
            delay = max(delay * (0.5 + self._rng.random() / 2), exc.retry_after or 0.0)
        if deadline is not None and time.perf_counter() + delay >= deadline:
            raise error from None
        return delay

    def _deadline(self) -> float | None:
        """The ``time.perf_counter()`` instant past which no attempt of a request starting now may wait."""
        seconds = self.catalog.policy.request_deadline_seconds
        return time.perf_counter() + seconds if seconds > 0 else None

    def _has_fresh(self, plan: _Plan, constraints: Constraints) -> bool:
        return any(d.id not in plan.failed for entry in plan.models
                   for d in self._candidates(entry, constraints, plan.failed))

    # -- unary ----------------------------------------------------------------------------

    @staticmethod
    def _traced(deployment: Deployment, served_model: str, operation: Operation,
                body: dict[str, Any]) -> AbstractContextManager[Any]:
        """The attempt's GenAI span when tracing is on (:mod:`switchboard_router.genai_spans`); else nothing."""
        if not tracing.enabled():
            return _UNTRACED
        from switchboard_router.genai_spans import unary_attempt

        return unary_attempt(deployment, served_model, operation, body)

    def _thinking(self, model: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """``<model>-thinking`` (Cursor's reasoning variants) is the base model with reasoning on."""
        if model in self.catalog.models or not model.endswith("-thinking"):
            return model, body
        resolved = apply_thinking_suffix({**body, "model": model}, self.catalog.models.__contains__)
        return str(resolved["model"]), resolved

    async def complete(self, model: str, body: dict[str, Any], constraints: Constraints,
                       operation: Operation = Operation.COMPLETE) -> UnaryResult:
        """One whole answer: a Chat Completion, embeddings, a legacy text completion or a moderation."""
        if operation is Operation.COMPLETE:
            model, body = self._thinking(model, body)
        plan = self._plan(self._resolve(model, constraints), constraints)
        deadline = self._deadline()
        attempt = 0
        while True:
            attempt += 1
            current, deployment = self._next(plan, constraints)
            deployment = with_own_credential(deployment, constraints.credentials)
            sent_body, bound = (bounded_for(body, constraints.output_bound, deployment)
                                if operation.bounded else (body, 0))
            try:
                with self._traced(deployment, current.name, operation, sent_body) as record:
                    result = await complete_once(self.pool_for(deployment), self.health, deployment, current.name,
                                                 sent_body, attempt, operation, None if attempt == 1 else deadline)
                    if record is not None:
                        record(result)
                result.route.output_tokens_sent = bound
                return result
            except AttemptFailed as exc:
                delay = self._retry(plan, current, deployment, exc, constraints, attempt, deadline)
            if delay > 0:
                await asyncio.sleep(delay)

    # -- stream ---------------------------------------------------------------------------

    async def stream(self, model: str, body: dict[str, Any], constraints: Constraints,
                     include_usage: bool) -> AsyncIterator[StreamItem]:
        """The stream's items; attempts that fail before their first byte are retried invisibly."""
        model, body = self._thinking(model, body)
        plan = self._plan(self._resolve(model, constraints), constraints)
        deadline = self._deadline()
        attempt = 0
        while True:
            attempt += 1
            current, deployment = self._next(plan, constraints)
            deployment = with_own_credential(deployment, constraints.credentials)
            sent_body, bound = bounded_for(body, constraints.output_bound, deployment)
            items = stream_once(self.pool_for(deployment), self.health, deployment, current.name, sent_body, attempt,
                                include_usage, None if attempt == 1 else deadline)
            if tracing.enabled():
                from switchboard_router.genai_spans import stream_attempt

                items = stream_attempt(items, deployment, current.name, sent_body)
            try:
                async for item in items:
                    if isinstance(item, StreamStarted | StreamFinished):
                        item.route.output_tokens_sent = bound
                    yield item
                return
            except AttemptFailed as exc:
                # stream_once raises only before its first item; later failures end the stream in-band.
                delay = self._retry(plan, current, deployment, exc, constraints, attempt, deadline)
            if delay > 0:
                await asyncio.sleep(delay)
