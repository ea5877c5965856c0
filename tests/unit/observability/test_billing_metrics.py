"""Billing's metrics: spend counted by model and team, and budget-remaining gauges for a bounded number of keys
and teams, read back from the Prometheus registry the service exports."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.v1 import billing_pb2, common_pb2
from switchboard_billing.budget_gauges import BudgetGauges
from switchboard_billing.budgets import Budgets
from switchboard_billing.costing import Pricer
from switchboard_billing.ledger import Ledger
from switchboard_billing.priced_models import CatalogSource, parse_models
from switchboard_billing.servicer import BillingServicer
from switchboard_common import metrics
from switchboard_common.database import make_engine

CATALOG = {"models": [{"name": "priced", "deployments": [{"provider": "openai", "model": "gpt-x",
                                                          "input_cost_per_million": "1",
                                                          "output_cost_per_million": "2"}]}]}


def sample(name: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels)


@pytest.fixture
def exported() -> Iterator[None]:
    yield
    metrics.observe_budgets(lambda: [])


@pytest.fixture
async def billing(tmp_path: Path) -> AsyncIterator[tuple[BillingServicer, BudgetGauges]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'billing.db'}")
    ledger = Ledger(engine)
    await ledger.migrate()
    budgets = Budgets(engine)
    gauges = BudgetGauges(budgets, limit=2)
    yield BillingServicer(ledger, budgets, Pricer(CatalogSource.of(parse_models(CATALOG))), gauges=gauges), gauges
    await ledger.close()


def usage(request_id: str, team_id: str, prompt: int, completion: int, source: str = "http") -> billing_pb2.UsageEvent:
    return billing_pb2.UsageEvent(
        request_id=request_id, key_id="key_a", team_id=team_id, model="priced", deployment_id="priced/0",
        source=source, status="success", http_status=200, started_at_ms=int(time.time() * 1000),
        usage=common_pb2.Usage(prompt_tokens=prompt, completion_tokens=completion))


def subject(scope: str, subject_id: str, budget_usd: int | None) -> billing_pb2.BudgetSubject:
    limits = billing_pb2.BudgetLimits(budget_duration="30d")
    if budget_usd is not None:
        limits.max_budget_micros = budget_usd * 1_000_000
    return billing_pb2.BudgetSubject(scope=scope, subject_id=subject_id, limits=limits)


async def test_spend_is_counted_by_model_team_and_source_once_per_request(billing: Any) -> None:
    servicer, _ = billing

    def spent(team: str, source: str = "http") -> float:
        return sample("switchboard_spend_micros_total", model="priced", team=team, source=source) or 0.0

    before, none_before, grpc_before = spent("team-metrics"), spent(""), spent("team-metrics", "grpc")
    settled = usage("req_m1", "team-metrics", 1_000_000, 500_000)  # $1 + $1
    await servicer.Settle(billing_pb2.SettleRequest(event=settled), None)
    await servicer.Settle(billing_pb2.SettleRequest(event=settled), None)  # a replay counts nothing
    await servicer.Settle(billing_pb2.SettleRequest(event=usage("req_m2", "", 1_000_000, 0)), None)
    await servicer.Settle(billing_pb2.SettleRequest(event=usage("req_m3", "team-metrics", 0, 500_000, "grpc")), None)
    assert spent("team-metrics") == before + 2_000_000
    assert spent("") == none_before + 1_000_000
    assert spent("team-metrics", "grpc") == grpc_before + 1_000_000, "an internal service's call is told apart"


async def test_budget_gauges_follow_the_most_recently_seen_subjects(billing: Any, exported: None) -> None:
    servicer, gauges = billing
    metrics.observe_budgets(gauges.values)
    await servicer.Settle(billing_pb2.SettleRequest(event=usage("req_g1", "team-g", 1_000_000, 0)), None)
    await servicer.GetBudgets(billing_pb2.GetBudgetsRequest(subjects=[
        subject("key", "key_a", 5), subject("team", "team-g", 10), subject("key", "key_nobudget", None)]), None)
    await gauges.refresh()
    assert sample("switchboard_budget_remaining_micros", scope="key", subject="key_a", kind="budget") == 4_000_000
    assert sample("switchboard_budget_limit_micros", scope="key", subject="key_a", kind="budget") == 5_000_000
    assert sample("switchboard_budget_remaining_micros", scope="team", subject="team-g", kind="budget") == 9_000_000
    assert sample("switchboard_budget_remaining_micros", scope="key", subject="key_nobudget",
                  kind="budget") is None, "no budget, no gauge"

    # A third subject with a budget: the least recently seen one (key_a) is dropped, the series stay bounded.
    await servicer.GetBudgets(billing_pb2.GetBudgetsRequest(subjects=[subject("key", "key_b", 1),
                                                                      subject("team", "team-g", 10)]), None)
    await gauges.refresh()
    assert sample("switchboard_budget_remaining_micros", scope="key", subject="key_a", kind="budget") is None
    assert sample("switchboard_budget_remaining_micros", scope="key", subject="key_b", kind="budget") == 1_000_000
    shown = {labels for scope, subject_id, kind, _, _ in gauges.values() for labels in [(scope, subject_id)]}
    assert shown == {("key", "key_b"), ("team", "team-g")}


def test_every_budget_gauge_and_team_label_is_in_the_exported_series() -> None:
    series = metrics.series()
    assert series["switchboard_budget_remaining_micros"] == ("scope", "subject", "kind")
    assert series["switchboard_budget_limit_micros"] == ("scope", "subject", "kind")
    assert {"team", "source"} <= set(series["switchboard_spend_micros_total"])
    assert {"team", "source"} <= set(series["switchboard_tokens_total"])
