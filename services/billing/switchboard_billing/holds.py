"""One request's hold: its worst case from the rate card, capped when the budget cannot pay for it all.

``Reserve`` lands here. The worst case (:mod:`switchboard_billing.quote`) is
held when it fits; when it does not, the request is held with its output capped
to what the budget affords — never below the floor (the key's or team's
``min_output_tokens``, else the gateway's) — and the answer says so; below the
floor the request is denied with a message that names the budget, what is
left, when it resets and the ``max_tokens`` that would fit.

A denial that money in flight alone causes — holds of requests already answered
whose usage is on its way, other holders' leases about to be returned — is not
final: the reservation waits for that money (:mod:`switchboard_billing.money_freed`)
up to ``wait_seconds`` and is tried again, so a caller is never refused for
money its own previous request no longer needs. A cap that money in flight
alone causes waits the same way, but only up to :data:`CAP_WAIT_SECONDS`: an
agent's next turn (Cursor sends it the moment it has run the last turn's tool)
must not be cut short by the hold of the turn it follows, and a request beside
one that is still running is not kept waiting long for money that will not
come back soon — it is served capped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from switchboard.v1 import billing_pb2
from switchboard_billing.budgets import Budgets, BudgetState, LeaseAsk, Limits, Reservation
from switchboard_billing.money import format_usd
from switchboard_billing.quote import ModelRates, Quote, affordable_output, cap_for, worst_case
from switchboard_billing.rate_card import RateBook
from switchboard_common.errors import Kind, ServiceError


@dataclass(frozen=True, slots=True)
class Held:
    """What Reserve answers."""

    reservation: Reservation
    #: The hold's quote (capped when ``reservation.capped``); zero when nothing was held.
    quote: Quote
    priced: bool


def limits_of(message: billing_pb2.BudgetLimits) -> Limits:
    return Limits(
        max_budget_micros=message.max_budget_micros if message.HasField("max_budget_micros") else None,
        budget_duration=message.budget_duration,
        max_daily_spend_micros=message.max_daily_spend_micros if message.HasField("max_daily_spend_micros") else None,
        anchor_ms=message.anchor_ms,
    )


def floor_of(request: billing_pb2.ReserveRequest, default: int) -> int:
    """The smallest capped answer worth serving: the key's floor, else its team's, else its user's, else the
    gateway's."""
    for limits in (request.key_limits, request.team_limits, request.user_limits):
        if limits.HasField("min_output_tokens"):
            return max(1, limits.min_output_tokens)
    return default


#: Most reservations waiting for money in flight at once; beyond them a denial is final at once (a flood of
#: over-budget requests must not become a flood of re-checks).
MAX_WAITING = 64
#: A waiting reservation re-checks at least this often (settlements in another billing replica do not wake it).
RECHECK_SECONDS = 0.1
#: Longest a request that would be capped only because of money in flight waits for it before it is served capped:
#: a finished request's usage reaches billing within the router's outbox linger (50 ms) and a round trip.
CAP_WAIT_SECONDS = 0.25


class Holder:
    """Reserve's logic, between the servicer's protobuf and the budgets' transaction."""

    def __init__(self, budgets: Budgets, book: RateBook, min_output_tokens: int, wait_seconds: float = 1.0) -> None:
        self.budgets = budgets
        self.book = book
        self.min_output_tokens = min_output_tokens
        #: Longest a denial caused by money in flight waits for it (see the module's docstring).
        self.wait_seconds = wait_seconds
        self._waiting = 0

    def rates(self, model: str) -> ModelRates:
        """The model's rates; raises the 503 ``model_unpriced`` when billing may not serve it."""
        rates = self.book.rates(model)
        if not rates.servable:
            reason = self.book.pricer.unservable_reason(model) or "a deployment has no price"
            raise ServiceError(Kind.ERROR_KIND_POLICY, f"Model {model!r} cannot be served: it has no known price. "
                               f"{reason}", code="model_unpriced", param="model", http_status=503)
        return rates

    async def reserve(self, request: billing_pb2.ReserveRequest) -> Held:
        if not request.request_id:
            raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "request_id is required", param="request_id")
        if not 0 <= request.prompt_tokens_bound < 1 << 40 or not 0 <= request.max_output_tokens < 1 << 40:
            raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "token bounds must be between 0 and 2^40",
                               param="max_tokens")
        rates = self.rates(request.model)
        byok = set(request.byok_providers) or ({d.provider for d in rates.deployments} if request.byok else set())
        default_output = self.book.pricer.default_output_tokens
        full = worst_case(rates, request.prompt_tokens_bound, request.max_output_tokens, byok, default_output) \
            if rates.priced else Quote(0, 0)
        floor = floor_of(request, self.min_output_tokens)
        capped: list[Quote] = []

        def cap(free: int) -> int | None:
            smaller = cap_for(rates, request.prompt_tokens_bound, free, byok, full, floor, default_output)
            if smaller is None:
                return None
            capped.append(smaller)
            return smaller.micros

        ask = None
        # A lease pays for requests by their start, so only a holder that says when its requests start gets one.
        if request.HasField("lease_ask") and request.lease_ask.lease_id and request.lease_ask.micros > 0 \
                and request.started_at_ms > 0:
            a = request.lease_ask
            ask = LeaseAsk(a.lease_id, a.micros, max(1.0, a.renew_seconds), a.committed_micros, request.holder)
        returned = request.return_lease

        async def attempt(return_lease: tuple[str, int] | None, capping: bool = True) -> Reservation:
            return await self.budgets.reserve(
                request_id=request.request_id, key_id=request.key_id, team_id=request.team_id,
                key_limits=limits_of(request.key_limits),
                team_limits=limits_of(request.team_limits) if request.team_id else Limits(),
                amount_micros=full.micros, ttl_seconds=request.ttl_seconds,
                cap=cap if rates.priced and capping else None,
                return_lease=return_lease, lease_ask=ask, holder=request.holder, user_id=request.user_id,
                user_limits=limits_of(request.user_limits) if request.user_id else Limits(), model=request.model,
                model_limits=limits_of(request.model_limits) if request.HasField("model_limits") else None,
                renew_seconds=max(1.0, request.renew_seconds) if request.renew_seconds > 0 else 0.0,
                started_at_ms=request.started_at_ms)

        def whole_without_money_in_flight(r: Reservation) -> bool:
            denied = r.denied_by
            return denied is not None and denied.held_micros > 0 and \
                full.micros <= denied.remaining_micros + denied.held_micros

        def fits_without_money_in_flight(r: Reservation) -> bool:
            denied = r.denied_by
            if denied is None or denied.held_micros <= 0:
                return False
            free = denied.remaining_micros + denied.held_micros
            return full.micros <= free or (rates.priced and cap_for(
                rates, request.prompt_tokens_bound, free, byok, full, floor, default_output) is not None)

        first_return = (returned.lease_id, returned.micros) if returned.lease_id else None
        # A request that may be capped is first tried whole: when only money in flight stands in the way, it
        # waits a moment for it (see the module's docstring) before it is held capped.
        try_whole = rates.priced and self.wait_seconds > 0 and self._waiting < MAX_WAITING
        reservation = await attempt(first_return, capping=not try_whole)
        if try_whole and reservation.denied_by is not None:
            if whole_without_money_in_flight(reservation):
                reservation = await self._wait_for_money(
                    lambda lease: attempt(lease, capping=False), reservation, whole_without_money_in_flight,
                    min(self.wait_seconds, CAP_WAIT_SECONDS))
            if reservation.denied_by is not None:
                reservation = await attempt(None)
        if fits_without_money_in_flight(reservation):
            reservation = await self._wait_for_money(attempt, reservation, fits_without_money_in_flight)
        if reservation.denied_by is not None:
            raise budget_exceeded(reservation, full, affordable_output(
                rates, request.prompt_tokens_bound, reservation.free_micros, byok, full.output_tokens),
                self.budgets.clock.now().timestamp() * 1000, request.key_alias, request.team_alias)
        quote = capped[-1] if reservation.capped and capped else full
        return Held(reservation, quote if reservation.held else Quote(0, full.output_tokens), rates.priced)

    async def _wait_for_money(self, attempt: Callable[[tuple[str, int] | None], Awaitable[Reservation]],
                              denied: Reservation, worth_it: Callable[[Reservation], bool],
                              seconds: float | None = None) -> Reservation:
        """Tries again each time money is freed, until it is held, its denial no longer depends on money in flight,
        or ``seconds`` (``wait_seconds``) pass. The lease returned with the first attempt is not returned again."""
        if self.wait_seconds <= 0 or self._waiting >= MAX_WAITING:
            return denied
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.wait_seconds if seconds is None else seconds)
        self._waiting += 1
        try:
            reservation = denied
            while worth_it(reservation) and (left := deadline - loop.time()) > 0:
                await self.budgets.freed.wait(min(left, RECHECK_SECONDS))
                reservation = await attempt(None)
            return reservation
        finally:
            self._waiting -= 1


def _iso(state: BudgetState) -> str:
    assert state.resets_at is not None
    return state.resets_at.isoformat().replace("+00:00", "Z")


def budget_exceeded(reservation: Reservation, full: Quote, fits: int, now_ms: float,
                    key_alias: str = "", team_alias: str = "") -> ServiceError:
    """The 429 a denied reservation becomes: which budget, what is left, when it resets, what would fit."""
    b = reservation.denied_by
    assert b is not None
    left = b.remaining_micros
    held = f", ${format_usd(b.held_micros)} held by requests in flight" if b.held_micros else ""
    parts = [f"Budget exceeded: {b.describe(key_alias, team_alias)} has ${format_usd(left)} left "
             f"(spent ${format_usd(b.spent_micros)}{held})"]
    if left > 0 and full.micros > left:
        parts.append(f"; this request may cost up to ${format_usd(full.micros)}")
        if fits >= 1:
            # Chat's field: each HTTP dialect names its own (max_output_tokens on the Responses API).
            parts.append(f" — send max_tokens of at most {fits} to fit what is left")
        else:
            parts.append(" — its prompt alone may cost more than what is left; send a shorter prompt")
    retry_after = 0.0
    headers = {"x-switchboard-budget-scope": b.scope, "x-switchboard-budget-kind": b.kind,
               "x-switchboard-budget-limit": format_usd(b.limit_micros),
               "x-switchboard-budget-remaining": format_usd(left)}
    if fits >= 1 and left > 0:
        headers["x-switchboard-budget-max-tokens"] = str(fits)
    if b.resets_at is not None:
        reset_ms = b.resets_at.timestamp() * 1000
        retry_after = max(1.0, (reset_ms - now_ms) / 1000)
        parts.append(f". It resets at {_iso(b)}.")
        headers["x-switchboard-budget-reset-at"] = _iso(b)
    else:
        parts.append(". This budget does not reset: ask an admin to raise max_budget.")
    return ServiceError(Kind.ERROR_KIND_BUDGET_EXCEEDED, "".join(parts), code="budget_exceeded", http_status=429,
                        retry_after_seconds=retry_after, headers=headers)
