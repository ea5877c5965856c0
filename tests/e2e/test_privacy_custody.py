"""Custody records: the facts of the custody headers are stored in the ledger, shown in the usage API
and retrievable per request (``GET /api/usage/custody/{request_id}``) by the key that made it or the admin."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.harness import Gateway

EMAIL = "custody.person@example.com"
CARD = "5555 5555 5555 4444"


def custody(gw: Gateway, key: str, request_id: str, timeout: float = 10) -> httpx.Response:
    """The custody record, waiting for the outbox to settle the request."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{gw.base_url}/api/usage/custody/{request_id}",
                             headers={"Authorization": f"Bearer {key}"}, timeout=10)
        if response.status_code != 404 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def chat(gw: Gateway, key: str, **body: Any) -> httpx.Response:
    payload = {"model": "fake-echo", "messages": [{"role": "user", "content": f"Mail {EMAIL}, card {CARD}"}], **body}
    if body.get("stream"):
        with httpx.stream("POST", f"{gw.base_url}/v1/chat/completions", json=payload, timeout=20,
                          headers={"Authorization": f"Bearer {key}"}) as response:
            response.read()
            return response
    return httpx.post(f"{gw.base_url}/v1/chat/completions", json=payload, timeout=20,
                      headers={"Authorization": f"Bearer {key}"})


def test_custody_record_matches_the_headers_for_unary_and_streamed_answers(gateway: Gateway) -> None:
    key = gateway.create_key(pii_policy="substitute", privacy_tier="standard", key_alias="custody")
    for stream in (False, True):
        answer = chat(gateway, key, stream=stream)
        assert answer.status_code == 200
        assert EMAIL in answer.text  # restored for the client
        headers = answer.headers
        record = custody(gateway, key, headers["x-switchboard-request-id"])
        assert record.status_code == 200, record.text
        data = record.json()
        assert data["request_id"] == headers["x-switchboard-request-id"]
        assert ">".join(data["custody_path"]) == headers["x-switchboard-custody-path"]
        assert data["custody_path"][0].startswith("facade@") and data["custody_path"][1].startswith("router@")
        assert data["custody_path"][-1] == "openai:" + headers["x-switchboard-deployment"]
        assert data["deployment"]["jurisdiction"] == headers["x-switchboard-resolved-jurisdiction"] == "us"
        assert data["deployment"]["privacy_tier"] == headers["x-switchboard-privacy-tier"] == "standard"
        assert data["required_privacy_tier"] == "standard"
        assert data["pii_policy"] == "substitute"
        assert data["pii"] == {"card": 1, "email": 1}
        assert headers["x-switchboard-pii"] == "card=1,email=1"
        assert EMAIL not in record.text and CARD not in record.text


def test_custody_record_is_the_keys_own_or_the_admins(gateway: Gateway) -> None:
    owner = gateway.create_key(pii_policy="mask")
    other = gateway.create_key()
    request_id = chat(gateway, owner).headers["x-switchboard-request-id"]
    mine = custody(gateway, owner, request_id)
    assert mine.status_code == 200 and mine.json()["pii_policy"] == "mask"
    assert custody(gateway, gateway.master_key, request_id).json() == mine.json()
    theirs = custody(gateway, other, request_id, timeout=0)
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "custody_record_not_found"
    assert custody(gateway, owner, "req_does_not_exist", timeout=0).status_code == 404
    assert httpx.get(f"{gateway.base_url}/api/usage/custody/{request_id}", timeout=10).status_code == 401


def test_usage_api_shows_the_custody_facts(gateway: Gateway) -> None:
    key = gateway.create_key(pii_policy="substitute")
    request_id = chat(gateway, key).headers["x-switchboard-request-id"]
    assert custody(gateway, key, request_id).status_code == 200
    rows = httpx.get(f"{gateway.base_url}/spend/logs", headers={"Authorization": f"Bearer {key}"}, timeout=10).json()
    row = next(r for r in rows if r["request_id"] == request_id)
    assert row["pii"] == "card=1,email=1" and row["pii_policy"] == "substitute"
    assert row["custody_path"].endswith(">openai:" + row["model_id"])
    off = gateway.create_key()
    off_id = chat(gateway, off).headers["x-switchboard-request-id"]
    record = custody(gateway, off, off_id).json()
    assert record["pii_policy"] == "off" and record["pii"] is None
