"""A key's limits on one model — LiteLLM's ``model_max_budget``, ``model_rpm_limit`` and ``model_tpm_limit`` — as
its users' scripts set them: the model is rationed, the key's other models keep working, over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.harness import Gateway
from tests.sdk_clients import openai_client

HI = [{"role": "user", "content": "hi"}]


def generate(gateway: Gateway, **body: Any) -> dict[str, Any]:
    answer = httpx.post(f"{gateway.base_url}/key/generate", headers=gateway.admin(), json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def sdk(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai_client(api_key=key, base_url=gateway.base_url + "/v1", max_retries=0, timeout=20)


def test_a_budget_on_one_model_rations_it_and_leaves_the_others(gateway: Gateway) -> None:
    # LiteLLM's per-model budget, as its docs write it: a limit and a reset window per model.
    created = generate(gateway, key_alias="per-model-budget",
                       model_max_budget={"fake-good": {"budget_limit": 0.0003, "time_period": "1d"}})
    assert "model_max_budget" not in created["ignored_fields"]
    assert created["model_max_budget"] == {"fake-good": {"budget_limit": 0.0003, "time_period": "1d"}}
    client = sdk(gateway, created["key"])
    served = 0
    with pytest.raises(openai.RateLimitError) as refused:
        for _ in range(40):
            client.chat.completions.create(model="fake-good", messages=HI, max_tokens=10)  # type: ignore[arg-type]
            served += 1
    error = refused.value.response.json()["error"]
    assert error["code"] == "budget_exceeded" and "on model 'fake-good'" in error["message"], error
    assert "resets at" in error["message"]
    assert served >= 1
    # The key's other models are not rationed.
    for _ in range(3):
        assert client.chat.completions.create(model="fake-echo", messages=HI, max_tokens=10).choices  # type: ignore
    rows = gateway_rows(gateway, created["key_id"], served + 3)
    assert sum(r["cost_micros"] for r in rows if r["model"] == "fake-good") <= 300


def test_a_rate_limit_on_one_model(gateway: Gateway) -> None:
    created = generate(gateway, key_alias="per-model-rpm", model_rpm_limit={"fake-good": 2},
                       model_tpm_limit={"fake-echo": 100000})
    client = sdk(gateway, created["key"])
    for _ in range(2):
        client.chat.completions.create(model="fake-good", messages=HI)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="fake-good", messages=HI)  # type: ignore[arg-type]
    error = refused.value.response.json()["error"]
    assert error["code"] == "rpm_limit_exceeded" and "on model 'fake-good'" in error["message"], error
    assert int(refused.value.response.headers["retry-after"]) >= 1
    for _ in range(5):  # the key itself has no RPM limit: its other models go on
        client.chat.completions.create(model="fake-echo", messages=HI)  # type: ignore[arg-type]
    info = httpx.get(f"{gateway.base_url}/key/info", headers={"Authorization": f"Bearer {created['key']}"},
                     timeout=10).json()["info"]
    assert info["model_rpm_limit"] == {"fake-good": 2} and info["model_tpm_limit"] == {"fake-echo": 100000}


def test_per_model_limits_are_checked_and_can_be_cleared(gateway: Gateway) -> None:
    bad = httpx.post(f"{gateway.base_url}/key/generate", headers=gateway.admin(), timeout=10,
                     json={"model_max_budget": {"fake-good": {"budget_limit": 1, "time_period": "fortnight"}}})
    assert bad.status_code == 400 and "time_period" in bad.json()["error"]["message"], bad.text
    bad = httpx.post(f"{gateway.base_url}/key/generate", headers=gateway.admin(), timeout=10,
                     json={"model_rpm_limit": {"fake-good": -1}})
    assert bad.status_code == 400, bad.text
    created = generate(gateway, model_rpm_limit={"fake-good": 1})
    client = sdk(gateway, created["key"])
    client.chat.completions.create(model="fake-good", messages=HI)  # type: ignore[arg-type]
    cleared = httpx.post(f"{gateway.base_url}/key/update", headers=gateway.admin(), timeout=10,
                         json={"key": created["key_id"], "model_rpm_limit": {}})
    assert cleared.status_code == 200 and cleared.json()["model_rpm_limit"] == {}, cleared.text
    deadline = time.monotonic() + 5
    while True:  # the change reaches the facade's key cache within a second
        try:
            client.chat.completions.create(model="fake-good", messages=HI)  # type: ignore[arg-type]
            break
        except openai.RateLimitError:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def gateway_rows(gateway: Gateway, key_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = httpx.get(f"{gateway.base_url}/spend/logs", params={"api_key": key_id, "limit": 1000},
                         headers=gateway.admin(), timeout=10).json()
        if len(rows) >= count:
            break
        time.sleep(0.1)
    return rows
