"""A request's hold, as its holder sees it: where it came from, what it covers, what billing said.

A hold is taken from one of this holder's leases (``lease_id``, no round
trip) or reserved by billing for the request alone (its reservation id is the
request id), or nothing is held (no budget applies, or the model is
unpriced). Its ``output_tokens`` is the output bound the router must enforce:
the client's ``max_tokens``, else the model's real maximum output, else (when
``capped``) what the budget could still pay for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from switchboard.v1 import billing_pb2
from switchboard_common.per_object import PerObject

if TYPE_CHECKING:  # the key's facts, as auth's client types them (no run-time dependency on auth)
    from switchboard_auth.client import KeyContext, Limits


@dataclass(slots=True)
class Hold:
    request_id: str
    #: The lease it was taken from; "" when reserved alone or nothing was held.
    lease_id: str = ""
    #: Micro-dollars held (0: nothing).
    micros: int = 0
    #: The output bound to enforce (0: none).
    output_tokens: int = 0
    #: The budget could not pay for the full bound: the answer is capped at ``output_tokens``.
    capped: bool = False
    #: Billing's answer (budgets' state for headers); None when billing was not asked and no lease answered.
    answer: billing_pb2.ReserveResponse | None = None
    ended: bool = False
    #: Unix ms the request is charged at: its start, or — when that is far off billing's clock — the instant billing
    #: charged instead (``ReserveResponse.charged_at_ms``). Its usage event must be dated by it (``started_at_ms``).
    started_at_ms: int = 0

    def stamp(self, event: billing_pb2.UsageEvent) -> billing_pb2.UsageEvent:
        """Names the hold in the request's usage event, so that its settlement frees it (a reservation is freed
        by the request id alone)."""
        if self.lease_id:
            event.lease_id = self.lease_id
            event.lease_unit_micros = self.micros
        return event


def budget_limits(limits: Limits) -> billing_pb2.BudgetLimits:
    out = billing_pb2.BudgetLimits(budget_duration=limits.budget_duration)
    if limits.HasField("max_budget_micros"):
        out.max_budget_micros = limits.max_budget_micros
    if limits.HasField("max_daily_spend_micros"):
        out.max_daily_spend_micros = limits.max_daily_spend_micros
    if limits.HasField("min_output_tokens"):
        out.min_output_tokens = limits.min_output_tokens
    return out


def _budgeted(limits: Limits) -> bool:
    return limits.HasField("max_budget_micros") or limits.HasField("max_daily_spend_micros")


def model_budget(key: KeyContext, model: str) -> billing_pb2.BudgetLimits | None:
    """The key's own budget on ``model`` (its model_max_budget entry); None when it has none."""
    budget = key.model_max_budgets.get(model) if key.model_max_budgets else None
    if budget is None:
        return None
    return billing_pb2.BudgetLimits(max_budget_micros=budget.max_budget_micros,
                                    budget_duration=budget.budget_duration)


def has_budget(key: KeyContext, model: str = "") -> bool:
    """Whether a budget of the key, its team or its user — or the key's budget on ``model`` — applies."""
    return (_budgeted(key.limits) or (bool(key.team_id) and _budgeted(key.team_limits))
            or (bool(key.user_id) and _budgeted(key.user_limits)) or model_budget(key, model) is not None)


@dataclass(frozen=True, slots=True)
class KeyBudgets:
    """What a key's requests are held against, as far as it does not depend on the model asked for."""

    #: A budget of the key, its team or its user applies (a budget of the key on a model may apply besides).
    budgeted: bool
    #: The key has budgets of its own on some models: the model decides whether one applies, and the subject.
    per_model: bool
    #: The subject of a request for a model without a budget of its own (see :func:`subject_of`).
    subject: tuple[Any, ...]
    #: The providers the key brings its own credentials for.
    byok: tuple[str, ...]

    def applies(self, key: KeyContext, model: str) -> bool:
        """Whether a budget applies to a request of ``key`` (this one's key) for ``model``."""
        return self.budgeted or (self.per_model and model_budget(key, model) is not None)

    def subject_for(self, key: KeyContext, model: str) -> tuple[Any, ...]:
        return subject_of(key, model) if self.per_model else self.subject


def _key_budgets(key: KeyContext) -> KeyBudgets:
    return KeyBudgets(has_budget(key), bool(key.model_max_budgets), subject_of(key), tuple(key.credential_providers[:]))


#: Worked out once per verified key: the key cache hands out the same object while the key is unchanged.
_KEY_BUDGETS: PerObject[KeyContext, KeyBudgets] = PerObject(_key_budgets)


def key_budgets(key: KeyContext) -> KeyBudgets:
    return _KEY_BUDGETS.of(key)


def subject_of(key: KeyContext, model: str = "") -> tuple[Any, ...]:
    """The budgets a request of ``key`` for ``model`` is held against (a lease covers exactly these: a key with
    a budget on the model has a lease of its own for it)."""
    on_model = model_budget(key, model)
    return (key.key_id, key.team_id, budget_limits(key.limits).SerializeToString(deterministic=True),
            budget_limits(key.team_limits).SerializeToString(deterministic=True) if key.team_id else b"",
            key.user_id, budget_limits(key.user_limits).SerializeToString(deterministic=True) if key.user_id else b"",
            (model, on_model.SerializeToString(deterministic=True)) if on_model is not None else None)
