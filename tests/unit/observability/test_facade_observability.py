"""The facade's /metrics, request metrics and access log, on the real four-process gateway."""

from __future__ import annotations

import json
import secrets
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import Gateway


def scrape(gateway: Gateway) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"{gateway.base_url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def chat(gateway: Gateway, key: str, text: str, stream: bool = False) -> httpx.Response:
    body = {"model": "fake-good", "messages": [{"role": "user", "content": text}], "stream": stream}
    return httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {key}"}, timeout=30)


def access_lines(gateway: Gateway) -> list[dict[str, object]]:
    out = []
    for line in gateway.processes["facade"].log().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "switchboard.access":
                out.append(record)
    return out


def test_requests_latency_and_time_to_first_token_are_exported(gateway: Gateway) -> None:
    key = gateway.create_key(key_alias="obs-metrics")
    before = scrape(gateway)

    unary = chat(gateway, key, "count me")
    streamed = chat(gateway, key, "stream me", stream=True)
    denied = chat(gateway, "sk-not-a-key", "refuse me")

    after = scrape(gateway)
    assert unary.status_code == 200 and streamed.status_code == 200 and denied.status_code == 401
    deployment = unary.headers["x-switchboard-deployment"]
    route = "/v1/chat/completions"
    ok = {"route": route, "model": "fake-good", "deployment": deployment, "status": "200", "method": "POST"}
    assert value(after, "switchboard_requests_total", **ok) == value(before, "switchboard_requests_total", **ok) + 2
    refused = {"route": route, "model": "", "status": "401"}
    assert value(after, "switchboard_requests_total", **refused) == \
        value(before, "switchboard_requests_total", **refused) + 1
    assert value(after, "switchboard_request_duration_seconds_count", route=route, model="fake-good") == \
        value(before, "switchboard_request_duration_seconds_count", route=route, model="fake-good") + 2
    assert value(after, "switchboard_time_to_first_token_seconds_count", model="fake-good") == \
        value(before, "switchboard_time_to_first_token_seconds_count", model="fake-good") + 1
    assert ("switchboard_outbox_depth", frozenset()) in after
    assert value(after, "switchboard_inflight_requests") == 0


def test_metrics_are_not_served_through_a_proxy(gateway: Gateway) -> None:
    response = httpx.get(f"{gateway.base_url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert response.status_code == 404


def test_access_log_has_request_key_alias_model_and_no_prompt(gateway: Gateway) -> None:
    alias = "obs-log-" + secrets.token_hex(3)
    key = gateway.create_key(key_alias=alias)
    marker = "prompt-marker-" + secrets.token_hex(8)

    response = chat(gateway, key, marker)

    request_id = response.headers["x-request-id"]
    deadline = time.monotonic() + 5
    line = None
    while line is None and time.monotonic() < deadline:
        line = next((r for r in access_lines(gateway) if r.get("request_id") == request_id), None)
        time.sleep(0.05)
    assert line is not None, "no access-log line for the request"
    assert line["key_alias"] == alias and line["model"] == "fake-good" and line["status"] == 200
    assert line["deployment"] == response.headers["x-switchboard-deployment"]
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] > 0
    assert key not in gateway.logs(), "the plain key must never be logged"
    assert marker not in gateway.logs(), "prompts are not logged"
