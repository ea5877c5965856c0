"""Budget alerts end to end: real traffic through the four services, delivered to a real webhook receiver.

Thresholds crossed by concurrent requests arrive once each (by idempotency key) at a generic JSON webhook (HMAC
signature checked here, independently of the gateway's code), a Slack one and a Teams one; a soft budget alerts and
never refuses; a receiver that is down, then up, gets every alert; billing killed in the middle of a delivery loses
nothing; the /alerts API shows the alerts and their deliveries, every alert to an admin and its own to a key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from switchboard_router.client import SwitchboardRouter
from tests.conftest import fake_models
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.webhook_receiver import Delivery, WebhookReceiver
from tests.harness import Gateway, free_port, start_gateway

SECRET = "whsec-test-0123456789"
#: Every request of these tests is the same body, so each costs the same (measured once: ``unit_cost``).
BODY = {"model": "fake-good", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver().start()
    yield hooks
    hooks.stop()


@pytest.fixture(scope="module")
def agw(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str],
        receiver: WebhookReceiver) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("alerts-gateway")
    webhooks = [{"name": "generic", "url": receiver.url("/json"), "format": "json", "secret": SECRET},
                {"name": "slack", "url": receiver.url("/slack"), "format": "slack"},
                {"name": "teams", "url": receiver.url("/teams"), "format": "teams"}]
    gw = start_gateway(tmp, fake_models(fake_openai[1]), extra_env={
        "SWITCHBOARD_ALERT_WEBHOOKS": orjson.dumps(webhooks).decode(),
        "SWITCHBOARD_ALERT_THRESHOLDS": "10,25,50",
        "SWITCHBOARD_ALERT_RETRY_BASE_SECONDS": "0.2", "SWITCHBOARD_ALERT_RETRY_MAX_SECONDS": "1",
        "SWITCHBOARD_ALERT_POLL_SECONDS": "0.2", "SWITCHBOARD_ALERT_WEBHOOK_TIMEOUT_SECONDS": "4"})
    yield gw
    gw.stop()


def chat(gw: Gateway, key: str) -> httpx.Response:
    return httpx.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=BODY,
                      timeout=30)


@pytest.fixture(scope="module")
def unit_cost(agw: Gateway) -> Decimal:
    """USD one request of BODY costs (from the ledger)."""
    key = agw.create_key(key_alias="measure")
    answer = chat(agw, key)
    assert answer.status_code == 200, answer.text
    cost = agw.ledger_row(answer.headers["x-request-id"])["spend"]
    assert cost > 0
    return Decimal(str(cost))


def new_key(gw: Gateway, **spec: Any) -> tuple[str, str]:
    created = httpx.post(f"{gw.base_url}/key/generate", json=spec, headers=gw.admin(), timeout=10).json()
    return created["key"], created["key_id"]


def of_key(deliveries: list[Delivery], key_id: str) -> list[Delivery]:
    return [d for d in deliveries if d.idempotency_key.startswith(f"key:{key_id}:")]


def wait_keys(receiver: WebhookReceiver, path: str, key_id: str, count: int, timeout: float = 40) -> list[Delivery]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = of_key(receiver.accepted(path), key_id)
        if len({d.idempotency_key for d in found}) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {count} alerts of {key_id} at {path}, got "
                         f"{sorted({d.idempotency_key for d in of_key(receiver.accepted(path), key_id)})}")


def alerts_api(gw: Gateway, token: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{gw.base_url}/alerts", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def signature_ok(d: Delivery) -> bool:
    """The receiver's check: HMAC-SHA256 of "<timestamp>.<body>" with the shared secret, and a fresh timestamp."""
    timestamp = d.headers["x-switchboard-timestamp"]
    expected = "v1=" + hmac.new(SECRET.encode(), f"{timestamp}.".encode() + d.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, d.headers["x-switchboard-signature"]) and \
        abs(time.time() - int(timestamp)) < 300


def test_concurrent_traffic_fires_each_threshold_once_to_every_webhook(
        agw: Gateway, receiver: WebhookReceiver, unit_cost: Decimal) -> None:
    key, key_id = new_key(agw, key_alias="alerted", max_budget=float(unit_cost * 40))
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: chat(agw, key), range(24)))  # 24 of 40: 60%, past 10%, 25% and 50%
    assert [a.status_code for a in answers] == [200] * 24
    generic = wait_keys(receiver, "/json", key_id, 3)
    time.sleep(1.0)  # anything sent twice would have arrived by now
    generic = of_key(receiver.accepted("/json"), key_id)
    assert sorted(Counter(d.idempotency_key for d in generic).values()) == [1, 1, 1], "each alert exactly once"
    bodies = sorted((d.json() for d in generic), key=lambda b: b["threshold_percent"])
    assert [b["threshold_percent"] for b in bodies] == [10, 25, 50]
    for body, percent in zip(bodies, (10, 25, 50), strict=True):
        assert body["type"] == "switchboard.budget_alert" and body["kind"] == "threshold"
        assert body["scope"] == "key" and body["subject_id"] == key_id and body["alias"] == "alerted"
        assert body["budget"] == "budget" and body["limit_micros"] == int(unit_cost * 40 * 1_000_000)
        assert body["limit_micros"] * percent <= body["spent_micros"] * 100, "raised once the spend reached it"
        assert body["idempotency_key"] in {d.idempotency_key for d in generic}
    assert all(signature_ok(d) for d in generic)
    tampered = generic[0]
    assert not signature_ok(Delivery(tampered.path, tampered.headers, tampered.body + b" ", tampered.status))

    slack = wait_keys(receiver, "/slack", key_id, 3)
    for d in slack:
        body = d.json()
        assert isinstance(body["text"], str) and key_id in body["text"]
        assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
        assert "x-switchboard-signature" not in d.headers, "a webhook without a secret is not signed"
    teams = wait_keys(receiver, "/teams", key_id, 3)
    for d in teams:
        body = d.json()
        assert body["type"] == "message"
        card = body["attachments"][0]
        assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert card["content"]["type"] == "AdaptiveCard" and card["content"]["body"][0]["type"] == "TextBlock"

    listed = alerts_api(agw, agw.master_key, scope="key", subject_id=key_id).json()["data"]
    assert sorted(a["threshold_percent"] for a in listed) == [10, 25, 50]
    for alert in listed:
        assert {d["webhook"]: d["status"] for d in alert["deliveries"]} == \
            {"generic": "delivered", "slack": "delivered", "teams": "delivered"}
    own = alerts_api(agw, key).json()["data"]
    assert {a["idempotency_key"] for a in own} == {a["idempotency_key"] for a in listed}, "a key reads its own"
    stranger, _ = new_key(agw, key_alias="stranger")
    assert alerts_api(agw, stranger).json()["data"] == [], "and nobody else's"
    bad = alerts_api(agw, agw.master_key, kind="nope")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "kind"
    assert alerts_api(agw, "sk-not-a-key").status_code == 401


def test_soft_budget_alerts_and_never_refuses(agw: Gateway, receiver: WebhookReceiver, unit_cost: Decimal) -> None:
    key, key_id = new_key(agw, key_alias="soft", soft_budget=float(unit_cost * 3))
    info = httpx.get(f"{agw.base_url}/key/info", params={"key": key_id}, headers=agw.admin(), timeout=10).json()
    assert Decimal(str(info["info"]["soft_budget"])) == unit_cost * 3
    assert [chat(agw, key).status_code for _ in range(6)] == [200] * 6, "past the soft budget, still served"
    found = wait_keys(receiver, "/json", key_id, 1)
    time.sleep(0.5)
    found = of_key(receiver.accepted("/json"), key_id)
    assert len(found) == 1
    body = found[0].json()
    assert body["kind"] == "soft_budget" and body["budget"] == "soft" and "still served" in body["message"]


def test_receiver_down_then_up_gets_every_alert(agw: Gateway, receiver: WebhookReceiver,
                                                unit_cost: Decimal) -> None:
    key, key_id = new_key(agw, key_alias="down", max_budget=float(unit_cost * 40))
    receiver.go_down()
    try:
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(lambda _: chat(agw, key).status_code, range(24))) == {200}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # billing retries, and says why it failed
            listed = alerts_api(agw, agw.master_key, subject_id=key_id).json()["data"]
            if len(listed) == 3 and all(d["attempts"] >= 2 and d["last_error"] for a in listed
                                        for d in a["deliveries"]):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no retries seen: {listed}")
        assert all(d["status"] == "pending" for a in listed for d in a["deliveries"])
    finally:
        receiver.come_up()
    for path in ("/json", "/slack", "/teams"):
        wait_keys(receiver, path, key_id, 3)
    time.sleep(1.5)
    for path in ("/json", "/slack", "/teams"):
        keys = Counter(d.idempotency_key for d in of_key(receiver.accepted(path), key_id))
        assert len(keys) == 3 and set(keys.values()) == {1}, (path, keys)


def test_billing_killed_mid_delivery_loses_nothing(agw: Gateway, receiver: WebhookReceiver,
                                                   unit_cost: Decimal) -> None:
    key, key_id = new_key(agw, key_alias="crash", max_budget=float(unit_cost * 40))
    receiver.hold(2.5)  # every delivery stays in flight for a while
    arrived = receiver.arrived
    try:
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(lambda _: chat(agw, key).status_code, range(24))) == {200}
        deadline = time.monotonic() + 20
        while receiver.arrived == arrived and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.arrived > arrived, "a delivery is in flight"
        agw.processes["billing"].terminate(signal.SIGKILL)
    finally:
        receiver.hold(0)
    metrics_port = free_port()
    agw.start_service("billing", {"SWITCHBOARD_METRICS_PORT": str(metrics_port)})
    agw.wait_ready()
    for path in ("/json", "/slack", "/teams"):
        found = wait_keys(receiver, path, key_id, 3, timeout=60)
        assert len({d.idempotency_key for d in found}) == 3, "every alert arrives (a repeat has the same key)"
    listed = alerts_api(agw, agw.master_key, subject_id=key_id).json()["data"]
    deadline = time.monotonic() + 30
    while any(d["status"] != "delivered" for a in listed for d in a["deliveries"]) and time.monotonic() < deadline:
        time.sleep(0.3)
        listed = alerts_api(agw, agw.master_key, subject_id=key_id).json()["data"]
    assert len(listed) == 3 and all(d["status"] == "delivered" for a in listed for d in a["deliveries"])
    exposition = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    delivered = [line for line in exposition.splitlines()
                 if line.startswith('switchboard_alert_deliveries_total{') and 'outcome="delivered"' in line]
    assert delivered and sum(float(line.rsplit(" ", 1)[1]) for line in delivered) >= 1, \
        "the restarted billing delivered what the killed one had in flight"


def test_team_and_user_budgets_alert_under_their_own_scope(agw: Gateway, receiver: WebhookReceiver,
                                                           unit_cost: Decimal) -> None:
    suffix = secrets.token_hex(3)
    team = httpx.post(f"{agw.base_url}/team/new", headers=agw.admin(), timeout=10, json={
        "team_alias": f"alerts-{suffix}", "max_budget": float(unit_cost * 100)}).json()
    user = httpx.post(f"{agw.base_url}/user/new", headers=agw.admin(), timeout=10, json={
        "user_id": f"alerts-user-{suffix}", "soft_budget": float(unit_cost * 2)}).json()
    assert Decimal(str(user["soft_budget"])) == unit_cost * 2
    key, _ = new_key(agw, team_id=team["team_id"], user_id=user["user_id"])
    assert {chat(agw, key).status_code for _ in range(12)} == {200}
    deadline = time.monotonic() + 30
    scopes: set[tuple[str, str, int | None]] = set()
    while time.monotonic() < deadline:
        got = [d.json() for d in receiver.accepted("/json")]
        scopes = {(b["scope"], b["kind"], b["threshold_percent"]) for b in got
                  if b["subject_id"] in (team["team_id"], user["user_id"])}
        if scopes >= {("team", "threshold", 10), ("user", "soft_budget", None)}:
            break
        time.sleep(0.1)
    assert scopes == {("team", "threshold", 10), ("user", "soft_budget", None)}, scopes
    own = alerts_api(agw, key).json()["data"]  # a key reads its team's and its user's alerts
    assert {a["scope"] for a in own} == {"team", "user"}


async def test_an_internal_service_calling_the_router_over_grpc_is_watched_too(
        agw: Gateway, receiver: WebhookReceiver, unit_cost: Decimal) -> None:
    key, key_id = new_key(agw, key_alias="grpc-caller", soft_budget=float(unit_cost))
    async with SwitchboardRouter(agw.env["SWITCHBOARD_ROUTER_ADDRESS"], api_key=key) as router:
        for _ in range(3):
            await router.complete("fake-good", BODY["messages"], max_tokens=8)
    found = await asyncio.to_thread(wait_keys, receiver, "/json", key_id, 1)
    assert [d.json()["kind"] for d in found] == ["soft_budget"]


def test_a_keys_own_thresholds_win_and_bad_ones_are_refused(agw: Gateway, receiver: WebhookReceiver,
                                                            unit_cost: Decimal) -> None:
    bad = httpx.post(f"{agw.base_url}/key/generate", json={"alert_thresholds": [0, 50]}, headers=agw.admin(),
                     timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "alert_thresholds"
    assert "1 to 1000" in bad.json()["error"]["message"]
    key, key_id = new_key(agw, key_alias="own-thresholds", max_budget=float(unit_cost * 40),
                          alert_thresholds="5, 95")
    info = httpx.get(f"{agw.base_url}/key/info", params={"key": key_id}, headers=agw.admin(), timeout=10).json()
    assert info["info"]["alert_thresholds"] == [5, 95]
    assert {chat(agw, key).status_code for _ in range(6)} == {200}  # 15%: past 5 (and the gateway's 10 and 25%)
    found = wait_keys(receiver, "/json", key_id, 1)
    time.sleep(0.5)
    found = of_key(receiver.accepted("/json"), key_id)
    assert [d.json()["threshold_percent"] for d in found] == [5]
    cleared = httpx.post(f"{agw.base_url}/key/update", json={"key": key_id, "alert_thresholds": None},
                         headers=agw.admin(), timeout=10).json()
    assert cleared["alert_thresholds"] is None
