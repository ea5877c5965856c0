"""Models added at run time on a replicated gateway: two replicas of every service, billing's on one
PostgreSQL database. A model added through one facade is served through every facade by every router replica
and priced by every billing replica; one deleted through another facade stops everywhere.

Needs SWITCHBOARD_TEST_POSTGRES_URL and SWITCHBOARD_TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from switchboard_common.credential_cipher import CredentialCipher
from tests.conftest import fake_models
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Cluster, start_cluster

POSTGRES_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "")

pytestmark = [
    pytest.mark.postgres, pytest.mark.redis,
    pytest.mark.skipif(not (POSTGRES_URL and REDIS_URL), reason=(
        "needs SWITCHBOARD_TEST_POSTGRES_URL and SWITCHBOARD_TEST_REDIS_URL (e.g. "
        "postgresql://postgres@127.0.0.1:5432/test and redis://127.0.0.1:6379/0)")),
]

SECRET = "sk-replicated-secret-5150"


def _with_database(url: str, name: str) -> str:
    return f"{url.rpartition('/')[0]}/{name}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Cluster]:
    auth_db = "sb_" + secrets.token_hex(6)
    billing_db = auth_db + "_billing"
    prefix = f"sbtest:{secrets.token_hex(6)}:"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for name in (auth_db, billing_db):
            conn.execute(f'CREATE DATABASE "{name}"')
    tmp: Path = tmp_path_factory.mktemp("models-replicas")
    started: Cluster | None = None
    try:
        started = start_cluster(tmp, fake_models(fake_openai[1])[:1], service_env={
            "auth": {"SWITCHBOARD_DATABASE_URL": _with_database(POSTGRES_URL, auth_db),
                     "SWITCHBOARD_REDIS_URL": REDIS_URL, "SWITCHBOARD_REDIS_PREFIX": prefix},
            "billing": {"SWITCHBOARD_BILLING_DATABASE_URL": _with_database(POSTGRES_URL, billing_db),
                        "SWITCHBOARD_ENCRYPTION_KEY": CredentialCipher.generate_key()},
        })
        yield started
    finally:
        if started is not None:
            started.gateway.stop()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            for name in (auth_db, billing_db):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def chat(url: str, key: str, model: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=20,
                      json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


def routers_serving(urls: list[str], key: str, model: str, timeout: float = 10) -> set[str]:
    """The router processes (from the custody path) that answered ``model`` through every facade, asked until
    each facade has been answered by both routers."""
    seen: dict[str, set[str]] = {url: set() for url in urls}
    deadline = time.monotonic() + timeout
    while any(len(routers) < 2 for routers in seen.values()):
        assert time.monotonic() < deadline, seen
        for url in urls:
            answer = chat(url, key, model)
            if answer.status_code == 200:
                hops = answer.headers["x-switchboard-custody-path"].split(">")
                seen[url].add(next(h for h in hops if h.startswith("router@")))
    return set().union(*seen.values())


def test_a_model_added_on_one_facade_is_served_and_priced_everywhere(
        cluster: Cluster, fake_openai: tuple[FakeOpenAI, str]) -> None:
    gw = cluster.gateway
    key = gw.create_key(max_budget=5)
    created = httpx.post(gw.base_urls[0] + "/model/new", headers=gw.admin(), timeout=20, json={
        "model_name": "replicated", "litellm_params": {
            "model": "openai/good", "api_base": fake_openai[1], "api_key": SECRET,
            "input_cost_per_token": 0.000002, "output_cost_per_token": 0.000004}})
    assert created.status_code == 200, created.text
    assert len(routers_serving(gw.base_urls, key, "replicated")) == 2
    assert fake_openai[0].requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    # Every billing replica prices it: the rows the requests settled (on either replica) are all priced.
    ids = [chat(url, key, "replicated").headers["x-request-id"] for url in gw.base_urls * 3]
    rows = [gw.ledger_row(request_id) for request_id in ids]
    assert all(row["spend"] == pytest.approx((row["prompt_tokens"] * 2 + row["completion_tokens"] * 4) / 1e6)
               for row in rows)

    deleted = httpx.post(gw.base_urls[1] + "/model/delete", headers=gw.admin(), timeout=20,
                         json={"id": created.json()["model_id"]})
    assert deleted.status_code == 200, deleted.text
    deadline = time.monotonic() + 10
    while True:
        codes = {chat(url, key, "replicated").status_code for url in gw.base_urls * 2}
        if codes == {400}:
            break
        assert time.monotonic() < deadline, codes


def test_no_replica_shows_the_key(cluster: Cluster) -> None:
    listed = httpx.get(cluster.gateway.base_urls[1] + "/model/info", headers=cluster.gateway.admin(), timeout=20)
    assert SECRET not in listed.text
