"""Models added at run time on a replicated gateway: two replicas of every service, billing's on one
PostgreSQL database. A model added through one facade is served by every router replica (each asked itself)
and through every facade, and priced by every billing replica; one deleted through another facade stops
everywhere.

Needs SWITCHBOARD_TEST_POSTGRES_URL and SWITCHBOARD_TEST_REDIS_URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from switchboard_common.credential_cipher import CredentialCipher
from switchboard_common.errors import ServiceError
from switchboard_router.client import SwitchboardRouter
from tests.conftest import fake_models
from tests.e2e.replicated import NEEDS_DATASTORES, datastores
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Cluster, start_cluster

pytestmark = NEEDS_DATASTORES

SECRET = "sk-replicated-secret-5150"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Cluster]:
    with datastores() as stores:
        env = stores.service_env()
        env["billing"]["SWITCHBOARD_ENCRYPTION_KEY"] = CredentialCipher.generate_key()
        started = start_cluster(tmp_path_factory.mktemp("models-replicas"), fake_models(fake_openai[1])[:1],
                                service_env=env)
        try:
            yield started
        finally:
            started.gateway.stop()


def chat(url: str, key: str, model: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=20,
                      json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


async def on_every_router(cluster: Cluster, key: str, model: str, served: bool, timeout: float = 10) -> None:
    """Asks each router replica itself (over gRPC, as a key holder) until each serves ``model`` (or, with
    ``served`` false, refuses it as unknown). A replica not listening yet (the cluster is ready when its facades
    are, on a busy machine a router may still be starting) is asked again until the deadline."""
    for address in cluster.gateway.env["SWITCHBOARD_ROUTER_ADDRESS"].split(","):
        deadline = time.monotonic() + timeout
        async with SwitchboardRouter(address, api_key=key, retries=0) as router:
            while True:
                try:
                    await router.complete(model, [{"role": "user", "content": "hi"}])
                    if served:
                        break
                except ServiceError as err:
                    if not served and err.error.code == "model_not_found":
                        break
                    if err.error.code not in ("model_not_found", "router_unavailable"):
                        raise
                assert time.monotonic() < deadline, f"{address} did not follow the change"
                await asyncio.sleep(0.05)


def test_a_model_added_on_one_facade_is_served_and_priced_everywhere(
        cluster: Cluster, fake_openai: tuple[FakeOpenAI, str]) -> None:
    gw = cluster.gateway
    key = gw.create_key(max_budget=5)
    created = httpx.post(gw.base_urls[0] + "/model/new", headers=gw.admin(), timeout=20, json={
        "model_name": "replicated", "litellm_params": {
            "model": "openai/good", "api_base": fake_openai[1], "api_key": SECRET,
            "input_cost_per_token": 0.000002, "output_cost_per_token": 0.000004}})
    assert created.status_code == 200, created.text
    asyncio.run(on_every_router(cluster, key, "replicated", served=True))
    assert {chat(url, key, "replicated").status_code for url in gw.base_urls} == {200}
    assert fake_openai[0].requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    # Every billing replica prices it: the rows the requests settled (on either replica) are all priced.
    ids = [chat(url, key, "replicated").headers["x-request-id"] for url in gw.base_urls * 3]
    rows = [gw.ledger_row(request_id) for request_id in ids]
    assert all(row["spend"] == pytest.approx((row["prompt_tokens"] * 2 + row["completion_tokens"] * 4) / 1e6)
               for row in rows)

    deleted = httpx.post(gw.base_urls[1] + "/model/delete", headers=gw.admin(), timeout=20,
                         json={"id": created.json()["model_id"]})
    assert deleted.status_code == 200, deleted.text
    asyncio.run(on_every_router(cluster, key, "replicated", served=False))
    assert {chat(url, key, "replicated").status_code for url in gw.base_urls} == {400}


def test_no_replica_shows_the_key(cluster: Cluster) -> None:
    listed = httpx.get(cluster.gateway.base_urls[1] + "/model/info", headers=cluster.gateway.admin(), timeout=20)
    assert SECRET not in listed.text
