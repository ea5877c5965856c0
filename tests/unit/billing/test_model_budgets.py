"""A key's budget on one model (LiteLLM's model_max_budget) on real databases: held and spent per model, never
overrun, the key's other models untouched, the denial naming the model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_billing.budgets import Budgets, Limits, Reservation
from switchboard_billing.ledger import Ledger
from switchboard_billing.models import UsageRow
from switchboard_rules.windows import ManualClock
from tests.unit.billing.test_reservations import START, dsn, engines, ledger_on  # noqa: F401

ON_M = Limits(max_budget_micros=1_000, budget_duration="1d")


async def reserve(budgets: Budgets, request_id: str, model: str, amount: int,
                  model_limits: Limits | None = ON_M) -> Reservation:
    return await budgets.reserve(request_id=request_id, key_id="k1", team_id="", key_limits=Limits(),
                                 team_limits=Limits(), amount_micros=amount, model=model,
                                 model_limits=model_limits if model == "m" else None)


def row(request_id: str, model: str, cost: int) -> UsageRow:
    return UsageRow(request_id=request_id, key_id="k1", team_id="", model=model, prompt_tokens=1,
                    completion_tokens=1, cost_micros=cost, started_at_ms=int(START.timestamp() * 1000))


async def test_a_model_budget_holds_and_spends_per_model(
        engines: list[AsyncEngine], ledger_on: Callable[[AsyncEngine], Ledger]) -> None:  # noqa: F811
    clock = ManualClock(START)
    budgets, ledger = Budgets(engines[0], clock), ledger_on(engines[1])
    assert (await reserve(budgets, "a1", "m", 600)).held
    refused = await reserve(budgets, "a2", "m", 600)
    assert refused.denied_by is not None and refused.denied_by.held_micros == 600
    assert "budget on model 'm'" in refused.denied_by.describe()
    # Other models of the key are not rationed by it, and their spend does not count against it.
    assert (await reserve(budgets, "b1", "other", 5_000, model_limits=None)).denied_by is None
    await ledger.record_new([row("b1", "other", 5_000), row("a1", "m", 300)])
    assert (await reserve(budgets, "a3", "m", 700)).held, "300 spent on m: 700 fit"
    assert (await reserve(budgets, "a4", "m", 1)).denied_by is not None
    clock.advance(timedelta(days=1))
    assert (await reserve(budgets, "a5", "m", 1_000)).held, "a new day: the model's window starts empty"
