"""Budgets, prices and the ledger end to end on the embedded default (SQLite), through the official SDK."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from genai_prices import Usage, calc_price

from switchboard_billing.money import usd_to_micros_half_up
from tests.conftest import FAKE_PRICES, fake_models
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import openai_client

MESSAGES = [{"role": "user", "content": "hi"}]


def billing_models(api_base: str) -> list[dict[str, object]]:
    """The standard fake models, plus a model genai-prices knows, an unpriced one allowed and one not."""
    def dep(model: str, **extra: object) -> dict[str, object]:
        return {"provider": "openai", "model": model, "api_base": api_base, "api_key": "sk-fake", "jurisdiction": "ca",
                "privacy_tier": "zero_retention", **extra}
    return [
        *fake_models(api_base),
        {"name": "priced-by-catalog", "deployments": [dep("gpt-4o-mini")]},
        {"name": "free-allowed", "deployments": [dep("local-model", provider="vllm", allow_unpriced=True)]},
        {"name": "free-refused", "deployments": [dep("local-model", provider="vllm")]},
    ]


@pytest.fixture(scope="module")
def bgw(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("budget-gateway")
    gw = start_gateway(tmp, billing_models(fake_openai[1]))
    yield gw
    gw.stop()


def chat(gw: Gateway, key: str, model: str = "fake-good", **body: Any) -> httpx.Response:
    return httpx.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      json={"model": model, "messages": MESSAGES, **body}, timeout=30)


def ledger_rows(gw: Gateway, request_ids: set[str], timeout: float = 15) -> dict[str, dict[str, Any]]:
    """The ledger rows of these requests, once all of them are delivered."""
    deadline = time.monotonic() + timeout
    found: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        rows = httpx.get(f"{gw.base_url}/spend/logs", params={"limit": 1000}, headers=gw.admin(), timeout=10).json()
        found = {r["request_id"]: r for r in rows if r["request_id"] in request_ids}
        if len(found) == len(request_ids):
            return found
        time.sleep(0.1)
    raise AssertionError(f"only {len(found)} of {len(request_ids)} rows reached the ledger")


def test_a_budget_is_never_overrun_and_the_denial_says_why(bgw: Gateway) -> None:
    budget_micros = 3_000
    key = bgw.create_key(key_alias="small-budget", max_budget="0.003")
    ok: list[httpx.Response] = []
    denied = None
    for _ in range(60):
        response = chat(bgw, key, max_tokens=50)
        if response.status_code == 429:
            denied = response
            break
        assert response.status_code == 200, response.text
        assert "x-switchboard-key-spend" in response.headers
        assert "x-switchboard-key-remaining-budget" in response.headers
        assert response.headers["x-switchboard-key-max-budget"] == "0.003000"
        ok.append(response)
    assert ok and denied is not None, "the budget must admit some requests and then deny"
    error = denied.json()["error"]
    assert error["type"] == "budget_exceeded" and error["code"] == "budget_exceeded"
    assert "key 'small-budget' budget" in error["message"]  # by its alias, as rate-limit refusals name it
    assert "$0.003" in error["message"] and "left" in error["message"]
    assert "does not reset" in error["message"]
    rows = ledger_rows(bgw, {r.headers["x-request-id"] for r in ok})
    total = sum(r["cost_micros"] for r in rows.values())
    assert 0 < total <= budget_micros
    assert all(r["cost_micros"] > 0 for r in rows.values())


def test_a_windowed_budget_denial_says_when_it_resets(bgw: Gateway) -> None:
    key = bgw.create_key(key_alias="daily", max_daily_spend="0.000001")
    response = chat(bgw, key, max_tokens=10)
    assert response.status_code == 429
    error = response.json()["error"]
    assert "daily spend cap" in error["message"] and "resets at" in error["message"]
    tomorrow = datetime.now(UTC).date().isoformat()
    assert response.headers["x-switchboard-budget-reset-at"] > tomorrow
    assert 1 <= int(response.headers["retry-after"]) <= 86_400
    sdk = openai_client(api_key=key, base_url=bgw.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model="fake-good", messages=MESSAGES, max_tokens=10)  # type: ignore[arg-type]


def test_a_request_that_cannot_fit_its_worst_case_is_told_to_lower_max_tokens(bgw: Gateway) -> None:
    key = bgw.create_key(max_budget="0.01")
    response = chat(bgw, key, max_tokens=100_000)  # 100k output tokens at $10/M = $1 worst case
    assert response.status_code == 429
    assert "max_tokens" in response.json()["error"]["message"]
    assert chat(bgw, key, max_tokens=20).status_code == 200


def test_cost_of_a_catalog_priced_model_matches_genai_prices(bgw: Gateway) -> None:
    key = bgw.create_key()
    response = chat(bgw, key, model="priced-by-catalog")
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    row = ledger_rows(bgw, {response.headers["x-request-id"]})[response.headers["x-request-id"]]
    reference = calc_price(Usage(input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"]),
                           "gpt-4o-mini", provider_id="openai")
    assert row["cost_micros"] == usd_to_micros_half_up(reference.total_price)
    assert row["jurisdiction"] == "ca" and row["model"] == "priced-by-catalog"


def test_config_prices_are_charged(bgw: Gateway) -> None:
    key = bgw.create_key()
    response = chat(bgw, key)
    usage = response.json()["usage"]
    row = ledger_rows(bgw, {response.headers["x-request-id"]})[response.headers["x-request-id"]]
    # $2.5/M input and $10/M output: micros = 2.5 * prompt + 10 * completion, rounded half up.
    assert float(FAKE_PRICES["input_cost_per_million"]) == 2.5
    assert row["cost_micros"] == (25 * usage["prompt_tokens"] + 100 * usage["completion_tokens"] + 5) // 10


def test_unpriced_models_are_served_only_when_allowed_and_recorded_as_unknown(bgw: Gateway) -> None:
    key = bgw.create_key(max_budget="1")
    refused = chat(bgw, key, model="free-refused")
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "model_unpriced"
    assert "allow_unpriced" in refused.json()["error"]["message"]
    # Keys without a budget skip the reservation, but not the check.
    unbudgeted = bgw.create_key()
    for _ in range(2):
        assert chat(bgw, unbudgeted, model="free-refused").status_code == 503
    allowed = chat(bgw, key, model="free-allowed")
    assert allowed.status_code == 200, allowed.text
    row = ledger_rows(bgw, {allowed.headers["x-request-id"]})[allowed.headers["x-request-id"]]
    assert row["cost_micros"] is None and row["spend"] is None and row["cost_unknown"] is True


def test_streams_cut_short_are_billed_for_what_was_produced(bgw: Gateway) -> None:
    key = bgw.create_key(max_budget="1")
    sdk = openai_client(api_key=key, base_url=bgw.base_url + "/v1", max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(model="fake-cut", messages=MESSAGES,  # type: ignore[arg-type]
                                                        stream=True)
    with pytest.raises(openai.APIError):
        for _ in raw.parse():
            pass
    row = ledger_rows(bgw, {raw.headers["x-request-id"]})[raw.headers["x-request-id"]]
    assert row["status"] == "error" and row["cost_micros"] > 0


def test_usage_api_sums_by_group_with_csv_and_keys_see_only_their_own(bgw: Gateway) -> None:
    key = bgw.create_key(key_alias="usage-reader")
    ids = {chat(bgw, key).headers["x-request-id"] for _ in range(3)}
    rows = ledger_rows(bgw, ids)
    key_id = next(iter(rows.values()))["api_key"]
    mine = httpx.get(f"{bgw.base_url}/usage", params={"group_by": "model"},
                     headers={"Authorization": f"Bearer {key}"}).json()
    assert mine["filters"]["key_id"] == key_id
    assert [g["group"] for g in mine["data"]] == ["fake-good"] and mine["total"]["requests"] == 3
    assert mine["total"]["cost_micros"] == sum(r["cost_micros"] for r in rows.values())
    other = httpx.get(f"{bgw.base_url}/usage", params={"key_id": "someone-else"},
                      headers={"Authorization": f"Bearer {key}"})
    assert other.status_code == 403 and other.json()["error"]["code"] == "not_your_key"
    by_day = httpx.get(f"{bgw.base_url}/usage", params={"group_by": "day", "key_id": key_id, "format": "csv"},
                       headers=bgw.admin())
    assert by_day.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(by_day.text)))
    assert table[0]["group"] == datetime.now(UTC).date().isoformat() and table[0]["requests"] == "3"
    logs = httpx.get(f"{bgw.base_url}/spend/logs", params={"format": "csv"},
                     headers={"Authorization": f"Bearer {key}"})
    assert {r["request_id"] for r in csv.DictReader(io.StringIO(logs.text))} == ids
    later = httpx.get(f"{bgw.base_url}/usage", params={"from": "2999-01-01"}, headers=bgw.admin()).json()
    assert later["total"]["requests"] == 0
    # Per hour, split by model: what the dashboard's charts draw, with errors and latency percentiles.
    hourly = httpx.get(f"{bgw.base_url}/usage", params={"group_by": "hour", "split_by": "model"},
                       headers={"Authorization": f"Bearer {key}"}).json()
    [hour] = hourly["data"]
    assert hour["group"].endswith(":00:00Z") and hour["split"] == "fake-good" and hour["requests"] == 3
    assert hour["errors"] == 0 and 0 < hour["latency_p50_ms"] <= hour["latency_p95_ms"]
    assert all(r["attempts"] == 1 and r["provider_ms"] > 0 for r in rows.values()), "the provider's share is kept"
    same = httpx.get(f"{bgw.base_url}/usage", params={"group_by": "model", "split_by": "model"}, headers=bgw.admin())
    assert same.status_code == 400 and same.json()["error"]["param"] == "split_by"


def test_usage_cli_prints_the_same_sums(bgw: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    from switchboard_facade.cli.usage import main

    key = bgw.create_key(key_alias="cli")
    ledger_rows(bgw, {chat(bgw, key).headers["x-request-id"]})
    assert main(["--url", bgw.base_url, "--api-key", key, "--group-by", "model"]) == 0
    out = capsys.readouterr().out
    assert "fake-good" in out and "TOTAL" in out
    assert main(["--url", bgw.base_url, "--api-key", key, "--format", "csv", "--logs"]) == 0
    assert "request_id" in capsys.readouterr().out
    assert main(["--url", bgw.base_url, "--api-key", "sk-wrong"]) == 1
