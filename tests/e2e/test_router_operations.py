"""Operating the router: config reload without dropping requests, a broken config rejected, client
disconnects cancelling the provider call."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import FAKE_PRICES, fake_models
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway


@pytest.fixture(scope="module")
def own_gateway(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("ops-gateway")
    gw = start_gateway(tmp, fake_models(fake_openai[1]))
    yield gw
    gw.stop()


def model_ids(gw: Gateway, key: str) -> set[str]:
    r = httpx.get(f"{gw.base_url}/v1/models", headers={"Authorization": f"Bearer {key}"})
    return {m["id"] for m in r.json()["data"]}


def wait_until(predicate, timeout: float = 10) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sighup_reloads_the_catalog_without_dropping_requests_in_flight(
        own_gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    key = own_gateway.create_key()
    results: list[int] = []

    def slow_request() -> None:
        r = httpx.post(f"{own_gateway.base_url}/v1/chat/completions", timeout=30,
                       headers={"Authorization": f"Bearer {key}"},
                       json={"model": "fake-drip", "messages": [{"role": "user", "content": "x"}], "stream": True})
        results.append(r.status_code if r.text.rstrip().endswith("data: [DONE]") else -1)

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.5)
    config = yaml.safe_load(own_gateway.config_path.read_text())
    config["models"].append({"name": "fake-new", "deployments": [
        {"provider": "openai", "model": "good", "api_base": fake_openai[1], "api_key": "x", **FAKE_PRICES}]})
    own_gateway.config_path.write_text(yaml.safe_dump(config))
    own_gateway.processes["router"].proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "fake-new" in model_ids(own_gateway, key))
    thread.join(30)
    assert results == [200], "the stream in flight during the reload completes"


def test_an_edited_config_file_is_served_without_a_signal(
        own_gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    """Billing re-reads the file when it changes; the router does too, so that the two never disagree on
    which models exist (a model only the router knew was served without a hold or a price)."""
    key = own_gateway.create_key()
    config = yaml.safe_load(own_gateway.config_path.read_text())
    config["models"].append({"name": "fake-edited", "deployments": [
        {"provider": "openai", "model": "good", "api_base": fake_openai[1], "api_key": "x", **FAKE_PRICES}]})
    own_gateway.config_path.write_text(yaml.safe_dump(config))
    assert wait_until(lambda: "fake-edited" in model_ids(own_gateway, key), timeout=15)
    answer = httpx.post(f"{own_gateway.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                        json={"model": "fake-edited", "messages": [{"role": "user", "content": "x"}]}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert own_gateway.ledger_row(answer.headers["x-request-id"])["cost_micros"] > 0
    assert "catalog reloaded (config file change)" in own_gateway.processes["router"].log()


def test_a_broken_config_is_rejected_and_the_old_catalog_stays(own_gateway: Gateway) -> None:
    key = own_gateway.create_key()
    before = model_ids(own_gateway, key)
    good = own_gateway.config_path.read_text()
    own_gateway.config_path.write_text("models:\n  - name: broken\n    deployments: [{provider: nope, model: x}]\n")
    try:
        own_gateway.processes["router"].proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "config reload rejected" in own_gateway.processes["router"].log())
        assert "models[0].deployments[0].provider" in own_gateway.processes["router"].log()
        assert model_ids(own_gateway, key) == before
        r = httpx.post(f"{own_gateway.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                       json={"model": "fake-good", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 200
    finally:
        own_gateway.config_path.write_text(good)


def test_a_client_that_disconnects_cancels_the_provider_request(
        own_gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    key = own_gateway.create_key()
    before = fake_openai[0].cancelled.count("drip")
    with httpx.stream("POST", f"{own_gateway.base_url}/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": "fake-drip", "messages": [{"role": "user", "content": "x"}],
                            "stream": True}) as response:
        lines = response.iter_lines()
        for _ in range(3):
            next(lines)
    # The stream is closed after three lines; 50 chunks at 50 ms would take 2.5 s more.
    assert wait_until(lambda: fake_openai[0].cancelled.count("drip") > before, timeout=3)


def test_a_cancelled_stream_is_billed_for_the_text_delivered_not_for_its_json(own_gateway: Gateway) -> None:
    """``fake-drip`` streams 200 characters in 50 chunks of 4; the client leaves after about 40 of them."""
    key = own_gateway.create_key()
    received = ""
    with httpx.stream("POST", f"{own_gateway.base_url}/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": "fake-drip", "messages": [{"role": "user", "content": "x"}],
                            "stream": True}) as response:
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if line.startswith("data: {"):
                received += json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
            if len(received) >= 40:
                break
    def ledger() -> list[dict[str, Any]]:
        rows = httpx.get(f"{own_gateway.base_url}/spend/logs", headers=own_gateway.admin()).json()
        return [r for r in rows if r["request_id"] == request_id]

    assert wait_until(lambda: bool(ledger()))
    [row] = ledger()
    assert row["status"] == "cancelled" and row["usage_reported_by_provider"] is False
    # 40 characters were read, a few more may have been on their way: about ten tokens, never the 100+ that the
    # chunks' JSON would make, nor more than all 200 characters (50 tokens).
    assert 10 <= row["completion_tokens"] <= 50, row


def test_a_broken_catalog_at_start_is_a_one_line_error_naming_the_place(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.harness import ROOT, python_path

    config = tmp_path / "broken.yaml"
    config.write_text("models:\n  - name: m\n    deployments: [{provider: openai}]\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")},
           "PYTHONPATH": python_path(), "SWITCHBOARD_CONFIG": str(config), "SWITCHBOARD_GRPC_LISTEN": "127.0.0.1:0",
           "SWITCHBOARD_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "switchboard_router"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "models[0].deployments[0].model" in done.stderr and "Traceback" not in done.stderr
