"""The reserve step of a request: hold its worst-case cost against the key's and team's budgets.

Called after authorize and before the router. Billing answers with the budgets'
state (turned into response headers here) or a typed denial (429 budget
exceeded, or 503 for a model whose price is unknown and not allowed unpriced).
The request's settlement, sent later through the outbox with the same request
id, replaces the hold with the real cost.

A request that no budget applies to skips the call when billing's catalog
(cached for a few seconds) says its model is servable: then there is nothing
to hold and nothing to refuse. If billing is unreachable, such a request still
goes ahead (its usage waits in the outbox); a request with a budget does not,
because nothing could then stop it from overspending.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import grpc

from switchboard.v1 import auth_pb2, billing_pb2
from switchboard_common.errors import ServiceError, from_rpc_error

#: How much longer than the completion timeout a hold lives, for the settlement's trip through the outbox.
_TTL_MARGIN_SECONDS = 300.0


class ServableModels:
    """Public model → whether billing will serve it (priced, or allowed unpriced), from its catalog.

    Refreshed in the background at most every ``ttl_seconds``, so a request never waits for it; while
    billing cannot be reached the last known answer is kept (and nothing is known before the first answer).
    """

    def __init__(self, ttl_seconds: float = 10.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._models: dict[str, bool] | None = None
        self._fetched_at = -float("inf")
        self._refresh: asyncio.Task[None] | None = None

    def lookup(self, stub: Any, model: str, timeout: float) -> bool | None:
        """True/False for a model billing knows; None when billing has not answered yet or does not know it."""
        if time.monotonic() - self._fetched_at >= self.ttl_seconds and (self._refresh is None or self._refresh.done()):
            self._fetched_at = time.monotonic()
            self._refresh = asyncio.get_running_loop().create_task(self._fetch(stub, timeout))
        return None if self._models is None else self._models.get(model)

    async def _fetch(self, stub: Any, timeout: float) -> None:
        try:
            catalog = await stub.GetCatalog(billing_pb2.GetCatalogRequest(), timeout=timeout)
        except grpc.aio.AioRpcError:
            return
        self._models = {m.name: m.servable for m in catalog.models}


def budget_limits(limits: auth_pb2.Limits) -> billing_pb2.BudgetLimits:
    out = billing_pb2.BudgetLimits(budget_duration=limits.budget_duration)
    if limits.HasField("max_budget_micros"):
        out.max_budget_micros = limits.max_budget_micros
    if limits.HasField("max_daily_spend_micros"):
        out.max_daily_spend_micros = limits.max_daily_spend_micros
    return out


def has_budget(key: auth_pb2.KeyContext) -> bool:
    own = key.limits.HasField("max_budget_micros") or key.limits.HasField("max_daily_spend_micros")
    team = bool(key.team_id) and (key.team_limits.HasField("max_budget_micros")
                                  or key.team_limits.HasField("max_daily_spend_micros"))
    return own or team


def max_output_tokens(body: dict[str, Any]) -> int:
    """The request's own output cap (``max_completion_tokens`` wins over ``max_tokens``); 0 when absent."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def reserve_request(*, request_id: str, key: auth_pb2.KeyContext, model: str, body: dict[str, Any],
                    body_bytes: int, completion_timeout: float) -> billing_pb2.ReserveRequest:
    request = billing_pb2.ReserveRequest(
        request_id=request_id, key_id=key.key_id, team_id=key.team_id, key_limits=budget_limits(key.limits),
        model=model, prompt_tokens_bound=body_bytes, max_output_tokens=max_output_tokens(body),
        ttl_seconds=completion_timeout + _TTL_MARGIN_SECONDS,
    )
    if key.team_id:
        request.team_limits.CopyFrom(budget_limits(key.team_limits))
    return request


async def reserve(stub: Any, request: billing_pb2.ReserveRequest, key: auth_pb2.KeyContext,
                  timeout: float) -> billing_pb2.ReserveResponse | None:
    """Billing's answer, or None when billing is unreachable and no budget applies. Raises ServiceError."""
    try:
        return await stub.Reserve(request, timeout=timeout)  # type: ignore[no-any-return]
    except grpc.aio.AioRpcError as exc:
        err: ServiceError = from_rpc_error(exc, "billing")
        if err.error.code == "billing_unavailable" and not has_budget(key):
            return None
        raise err from None


def _usd(micros: int) -> str:
    whole, fraction = divmod(micros, 1_000_000)
    return f"{whole}.{fraction:06d}"


_NONE: Mapping[str, str] = MappingProxyType({})
#: The last answer and its headers: every request a budget lease covers carries the lease's one answer.
_last: tuple[billing_pb2.ReserveResponse | None, Mapping[str, str]] = (None, _NONE)


def budget_headers(response: billing_pb2.ReserveResponse | None) -> Mapping[str, str]:
    """x-switchboard-{key,team}-{spend,max-budget,remaining-budget,budget-reset-at} (and -daily-* for daily caps),
    in USD with six decimals; remaining counts what requests in flight hold. Read-only (it may be shared)."""
    global _last
    if response is None:
        return _NONE
    if _last[0] is response:
        return _last[1]
    headers = MappingProxyType(_budget_headers(response))
    _last = (response, headers)
    return headers


def _budget_headers(response: billing_pb2.ReserveResponse) -> dict[str, str]:
    headers: dict[str, str] = {}
    for b in response.budgets:
        prefix = f"x-switchboard-{b.scope}-" + ("daily-" if b.kind == "daily" else "")
        headers[prefix + "spend"] = _usd(b.spent_micros)
        headers[prefix + ("limit" if b.kind == "daily" else "max-budget")] = _usd(b.limit_micros)
        headers[prefix + ("remaining" if b.kind == "daily" else "remaining-budget")] = _usd(b.remaining_micros)
        if b.resets_at_ms:
            headers[prefix + ("reset-at-ms" if b.kind == "daily" else "budget-reset-at-ms")] = str(b.resets_at_ms)
    if response.held_micros:
        headers["x-switchboard-reserved"] = _usd(response.held_micros)
    return headers
