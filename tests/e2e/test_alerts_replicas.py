"""Budget alerts on a replicated gateway: two replicas of every service, billing's on one PostgreSQL database.

Concurrent traffic spread over both facades is settled by both routers into both billing replicas at once; each
threshold still reaches the webhook receiver exactly once (the crossing is raised in the settlement transaction,
under the subject's lock and the alert's unique key), and both billing replicas' delivery workers share the queue
without sending anything twice. Needs SWITCHBOARD_TEST_POSTGRES_URL and SWITCHBOARD_TEST_REDIS_URL.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import fake_models
from tests.e2e.replicated import NEEDS_DATASTORES, datastores
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.harness import Cluster, start_cluster

pytestmark = NEEDS_DATASTORES

BODY = {"model": "fake-good", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver().start()
    yield hooks
    hooks.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str],
            receiver: WebhookReceiver) -> Iterator[Cluster]:
    tmp: Path = tmp_path_factory.mktemp("alerts-replicas")
    hooks = orjson.dumps([{"name": "generic", "url": receiver.url("/json"), "secret": "s"}]).decode()
    with datastores() as stores:
        env = stores.service_env()
        env["billing"] = {**env["billing"], "SWITCHBOARD_ALERT_WEBHOOKS": hooks,
                          "SWITCHBOARD_ALERT_THRESHOLDS": "10,20,30,40,50", "SWITCHBOARD_ALERT_POLL_SECONDS": "0.2"}
        made = start_cluster(tmp, fake_models(fake_openai[1]), service_env=env)
        try:
            yield made
        finally:
            made.gateway.stop()


def chat(url: str, key: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=BODY, timeout=30)


def test_each_threshold_arrives_once_from_two_billing_replicas(cluster: Cluster, receiver: WebhookReceiver) -> None:
    gw = cluster.gateway
    admin = {"Authorization": f"Bearer {gw.master_key}"}
    probe = httpx.post(f"{gw.base_url}/key/generate", json={}, headers=admin, timeout=10).json()["key"]
    first = chat(gw.base_urls[0], probe)
    assert first.status_code == 200, first.text
    cost = Decimal(str(gw.ledger_row(first.headers["x-request-id"])["spend"]))
    made = httpx.post(f"{gw.base_url}/key/generate", json={"max_budget": float(cost * 60)}, headers=admin,
                      timeout=10).json()
    key, key_id = made["key"], made["key_id"]
    with ThreadPoolExecutor(16) as pool:  # 36 of 60 (60%): past 10, 20, 30, 40 and 50%
        statuses = list(pool.map(lambda i: chat(gw.base_urls[i % 2], key).status_code, range(36)))
    assert statuses == [200] * 36
    deadline = time.monotonic() + 40
    mine: list[str] = []
    while time.monotonic() < deadline:
        mine = [d.idempotency_key for d in receiver.accepted("/json") if d.idempotency_key.startswith(f"key:{key_id}:")]
        if len(set(mine)) >= 5:
            break
        time.sleep(0.1)
    time.sleep(1.5)  # a second copy from the other replica would have arrived by now
    mine = [d.idempotency_key for d in receiver.accepted("/json") if d.idempotency_key.startswith(f"key:{key_id}:")]
    counts = Counter(mine)
    assert sorted(k.split(":")[3] for k in counts) == ["10%", "20%", "30%", "40%", "50%"], counts
    assert set(counts.values()) == {1}, f"each alert exactly once: {counts}"
