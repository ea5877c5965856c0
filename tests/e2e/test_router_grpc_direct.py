"""Internal services call the router directly over gRPC, as key holders: authenticated, limited, billed.

The documented Python client (``switchboard_router.client.SwitchboardRouter``) and raw stubs against the four
real services: a call needs a virtual key; the key's models, rate limits and budget apply exactly as over
HTTP; revocation stops it within a second; every call is in the ledger with ``source: grpc``. Also what
grpcurl relies on (server reflection, the health service).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from switchboard.v1 import router_pb2, router_pb2_grpc
from switchboard_common.errors import Kind, ServiceError, from_rpc_error
from switchboard_router.client import SwitchboardRouter
from tests.conftest import FAKE_PRICES, fake_models
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import ROOT, Gateway, python_path, start_gateway

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def ggw(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("grpc-callers")
    # "fake-long" writes every token it is allowed: each call costs about what it holds.
    long = {"name": "fake-long", "deployments": [{"provider": "openai", "model": "long", "api_base": fake_openai[1],
                                                  "api_key": "sk-fake-upstream", **FAKE_PRICES}]}
    gw = start_gateway(tmp, [*fake_models(fake_openai[1]), long])
    yield gw
    gw.stop()


def router_address(gateway: Gateway) -> str:
    return gateway.env["SWITCHBOARD_ROUTER_ADDRESS"]


def rows_of(gw: Gateway, key_id: str, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    """The key's ledger rows, once ``count`` of them are there."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        answer = httpx.get(f"{gw.base_url}/spend/logs", params={"api_key": key_id, "limit": 1000},
                           headers=gw.admin(), timeout=10)
        # A 503 while this facade's channel to a billing that just came back is still reconnecting: ask again.
        rows = answer.json() if answer.status_code == 200 else []
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"{len(rows)} of {count} rows of {key_id} reached the ledger")


def new_key(gw: Gateway, **spec: Any) -> tuple[str, str]:
    """(plain key, key id)."""
    made = httpx.post(f"{gw.base_url}/key/generate", json=spec, headers=gw.admin(), timeout=10)
    assert made.status_code == 200, made.text
    return made.json()["key"], made.json()["key_id"]


async def test_a_call_without_a_key_is_unauthenticated_and_says_what_to_send(ggw: Gateway) -> None:
    async with grpc.aio.insecure_channel(router_address(ggw)) as channel:
        stub = router_pb2_grpc.RouterStub(channel)
        request = router_pb2.CompleteRequest(request_id="req_nokey", model="fake-good",
                                             body=orjson.dumps({"messages": HI}))
        for call in (stub.Complete(request), stub.ListModels(router_pb2.ListModelsRequest())):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "authorization: Bearer sk-" in (refused.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.Complete(request, metadata=(("authorization", "Bearer sk-not-a-key"),))
        assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_client_completes_streams_and_lists_what_its_key_may_use(ggw: Gateway) -> None:
    key, key_id = new_key(ggw, key_alias="batch-job", models=["fake-good", "fake-drip"])
    async with SwitchboardRouter(router_address(ggw), api_key=key) as router:
        reply = await router.complete("fake-good", HI)
        assert reply.text == "Hello from the fake provider."
        assert reply.route.deployment_id == "fake-good/0" and reply.usage.total_tokens > 0
        text = ""
        async for chunk in router.stream("fake-good", HI):
            if chunk["choices"]:
                text += chunk["choices"][0]["delta"].get("content") or ""
        assert text == "Hello from the fake provider."
        assert router.last_stream_usage is not None and router.last_stream_usage.completion_tokens > 0
        assert sorted(m.name for m in await router.list_models()) == ["fake-drip", "fake-good"]
        with pytest.raises(ServiceError) as refused:
            await router.complete("fake-echo", HI)
        assert refused.value.kind == Kind.ERROR_KIND_PERMISSION and "fake-good" in refused.value.message
        with pytest.raises(ServiceError) as unknown:
            await router.complete("no-such-model", HI)
        assert unknown.value.kind == Kind.ERROR_KIND_MODEL_NOT_FOUND
    rows = rows_of(ggw, key_id, 2)
    served = [r for r in rows if r["status"] == "success"]
    assert len(served) == 2 and all(r["source"] == "grpc" for r in served)
    assert all(r["key_alias"] == "batch-job" and r["spend"] > 0 for r in served)
    assert {r["stream"] for r in served} == {True, False}
    assert all(r["custody_path"].startswith("grpc:batch-job>router@") for r in served)


async def test_answers_name_the_model_the_caller_asked_for(ggw: Gateway) -> None:
    """As over HTTP: the catalog name or the key's alias the call named, never the provider's id ("good",
    "embed"), whole, streamed and for embeddings."""
    key, _ = new_key(ggw, models=["fake-good", "fake-embed"], aliases={"my-good": "fake-good"})
    async with SwitchboardRouter(router_address(ggw), api_key=key) as router:
        for asked in ("fake-good", "my-good"):
            assert (await router.complete(asked, HI)).body["model"] == asked
            chunks = [chunk async for chunk in router.stream(asked, HI)]
            assert chunks and {chunk["model"] for chunk in chunks} == {asked}
        assert (await router.embed("fake-embed", ["alpha"]))["model"] == "fake-embed"


async def test_rpm_is_exact_over_grpc(ggw: Gateway) -> None:
    key, _ = new_key(ggw, rpm_limit=3)
    async with SwitchboardRouter(router_address(ggw), api_key=key) as router:
        outcomes = await asyncio.gather(*(router.complete("fake-good", HI) for _ in range(6)),
                                        return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, ServiceError)]
    assert len(outcomes) - len(refused) == 3
    assert all(r.kind == Kind.ERROR_KIND_RATE_LIMITED and r.error.retry_after_seconds > 0 for r in refused)


async def test_a_budget_race_over_grpc_never_overruns(ggw: Gateway) -> None:
    """Twenty concurrent calls at $2.50/$10 per million tokens, each writing all of its max_tokens 100, against a
    budget for about three of them: a few are served, the rest refused, and spend never passes the budget."""
    key, key_id = new_key(ggw, max_budget=0.004)
    async with SwitchboardRouter(router_address(ggw), api_key=key) as router:
        outcomes = await asyncio.gather(*(router.complete("fake-long", HI, max_tokens=100) for _ in range(20)),
                                        return_exceptions=True)
    served = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, ServiceError)]
    assert served and refused and len(served) + len(refused) == 20
    assert all(r.kind == Kind.ERROR_KIND_BUDGET_EXCEEDED for r in refused)
    rows = rows_of(ggw, key_id, len(served))
    assert sum(r["cost_micros"] for r in rows) <= 4_000
    async with httpx.AsyncClient(base_url=ggw.base_url, headers=ggw.admin(), timeout=10) as client:
        info = (await client.get("/key/info", params={"key": key_id})).json()
    assert info["info"]["spend_micros"] == sum(r["cost_micros"] for r in rows)


async def test_a_reused_request_id_is_billed_as_a_new_call_and_the_budget_still_holds(ggw: Gateway) -> None:
    """The documented stub example sends a fixed request_id: each call must still get its own ledger row, and
    reusing one (or another key's) must not make a served call unbilled and the budget passable."""
    key, key_id = new_key(ggw, max_budget=0.004)
    other, other_id = new_key(ggw)
    async with grpc.aio.insecure_channel(router_address(ggw)) as channel:
        stub = router_pb2_grpc.RouterStub(channel)

        async def call(plain: str) -> bool:
            request = router_pb2.CompleteRequest(request_id="req_1", model="fake-long",
                                                 body=orjson.dumps({"messages": HI, "max_tokens": 100}))
            try:
                await stub.Complete(request, metadata=(("authorization", f"Bearer {plain}"),))
                return True
            except grpc.aio.AioRpcError as refused:
                assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                return False

        assert await call(other)
        served = [await call(key) for _ in range(8)]
    assert served[0] and not served[-1]  # the budget covers about three calls, not eight
    rows = rows_of(ggw, key_id, sum(served))
    assert len(rows) == sum(served) and len({r["request_id"] for r in rows}) == len(rows)
    assert all(r["request_id"].startswith("req_1~") for r in rows)
    assert 0 < sum(r["cost_micros"] for r in rows) <= 4_000
    assert len(rows_of(ggw, other_id, 1)) == 1


async def test_several_answers_in_one_call_are_refused_under_a_budget(ggw: Gateway) -> None:
    key, _ = new_key(ggw, max_budget=1)
    async with SwitchboardRouter(router_address(ggw), api_key=key) as router:
        with pytest.raises(ServiceError) as refused:
            await router.complete("fake-good", HI, n=4)
    assert refused.value.kind == Kind.ERROR_KIND_INVALID_REQUEST and refused.value.error.param == "n"
    unbudgeted, _ = new_key(ggw)
    async with SwitchboardRouter(router_address(ggw), api_key=unbudgeted) as router:
        assert await router.complete("fake-good", HI, n=2)


async def test_a_revoked_key_is_refused_within_a_second(ggw: Gateway) -> None:
    key, key_id = new_key(ggw)
    async with SwitchboardRouter(router_address(ggw), api_key=key, retries=0) as router:
        await router.complete("fake-good", HI)  # verified: now cached in the router
        async with httpx.AsyncClient(base_url=ggw.base_url, headers=ggw.admin(), timeout=10) as client:
            deleted = await client.post("/key/delete", json={"keys": [key_id]})
        assert deleted.status_code == 200
        revoked_at = time.monotonic()
        while True:
            try:
                await router.complete("fake-good", HI)
            except ServiceError as err:
                assert err.kind == Kind.ERROR_KIND_AUTHENTICATION
                break
            assert time.monotonic() - revoked_at < 1.0, "a revoked key still served after a second"
            await asyncio.sleep(0.02)


async def test_every_call_is_billed_once_cancelled_streams_included(ggw: Gateway) -> None:
    key, key_id = new_key(ggw)
    async with SwitchboardRouter(router_address(ggw), api_key=key) as router:
        for _ in range(3):
            await router.complete("fake-good", HI)
        async for _chunk in router.stream("fake-good", HI):
            pass
        received = 0
        async for chunk in router.stream("fake-drip", HI):  # fifty pieces, 50 ms apart: leave after three
            received += bool(chunk["choices"])
            if received == 3:
                break
    rows = rows_of(ggw, key_id, 5)
    await asyncio.sleep(0.5)
    rows = rows_of(ggw, key_id, 5)
    assert len(rows) == 5 and len({r["request_id"] for r in rows}) == 5
    cancelled = [r for r in rows if r["status"] == "cancelled"]
    assert len(cancelled) == 1 and cancelled[0]["http_status"] == 499
    assert 0 < cancelled[0]["completion_tokens"] < 50, "billed from what was delivered before the caller left"


async def test_reflection_and_health_as_grpcurl_uses_them(ggw: Gateway) -> None:
    async with grpc.aio.insecure_channel(router_address(ggw)) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def requests():  # type: ignore[no-untyped-def]
            yield reflection_pb2.ServerReflectionRequest(list_services="")
            yield reflection_pb2.ServerReflectionRequest(file_containing_symbol="switchboard.v1.Router")

        replies = [r async for r in stub.ServerReflectionInfo(requests())]
        services = {s.name for s in replies[0].list_services_response.service}
        assert {"switchboard.v1.Router", "grpc.health.v1.Health"} <= services
        assert replies[1].file_descriptor_response.file_descriptor_proto
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_odd_shapes_from_a_direct_caller_are_served_or_refused_never_crash(ggw: Gateway) -> None:
    """The facade checks HTTP bodies; a gRPC caller's body reaches the router as it was written."""
    key, key_id = new_key(ggw, rpm_limit=100)
    async with SwitchboardRouter(router_address(ggw), api_key=key, retries=0) as router:
        calls = [(lambda: router.stream("fake-good", HI, stream_options="yes").__anext__(), "stream_options"),
                 (lambda: router.complete("fake-good", []), "messages"),
                 (lambda: router.complete("fake-good", [None]), "messages[0]"),  # type: ignore[list-item]
                 (lambda: router.complete("fake-good", HI, max_tokens=0), "max_tokens")]
        for call, param in calls:
            with pytest.raises(ServiceError) as refused:
                await call()
            assert refused.value.kind == Kind.ERROR_KIND_INVALID_REQUEST and refused.value.error.param == param
            assert "'" + param.split("[")[0] in refused.value.message
        served = await router.complete("fake-good", HI)
        assert served.text
    rows = rows_of(ggw, key_id, 1)
    assert len(rows) == 1, "refused bodies are neither billed nor counted"


def test_the_kubernetes_example_client_is_served_and_billed(ggw: Gateway) -> None:
    """deploy/k8s/examples/router-client/client.py, run as its Deployment runs it (two calls, then it stops)."""
    key, key_id = new_key(ggw, key_alias="report-writer")
    env = {**os.environ, "PYTHONPATH": python_path(), "SWITCHBOARD_ROUTER_ADDRESS": router_address(ggw),
           "SWITCHBOARD_API_KEY": key, "SWITCHBOARD_MODEL": "fake-good", "PERIOD_SECONDS": "0", "CALLS": "2"}
    done = subprocess.run([sys.executable, str(ROOT / "deploy/k8s/examples/router-client/client.py")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Hello from the fake provider.") == 2, done.stdout
    rows = rows_of(ggw, key_id, 2)
    assert {r["source"] for r in rows} == {"grpc"} and all(r["key_alias"] == "report-writer" for r in rows)


async def test_billing_down_is_unavailable_over_grpc_and_the_client_retries_until_it_is_back(
        tmp_path: Path, fake_openai: tuple[FakeOpenAI, str]) -> None:
    gw = start_gateway(tmp_path, fake_models(fake_openai[1]))
    try:
        key, key_id = new_key(gw, key_alias="billing-down", max_budget=5)  # a budget: every call asks billing
        gw.processes["billing"].terminate()
        async with grpc.aio.insecure_channel(router_address(gw)) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await router_pb2_grpc.RouterStub(channel).Complete(router_pb2.CompleteRequest(
                    request_id="req_billing_down", model="fake-good",
                    body=orjson.dumps({"messages": [{"role": "user", "content": "hi"}]})),
                    metadata=(("authorization", f"Bearer {key}"),), timeout=30)
        # A dependency down is UNAVAILABLE (retryable by gRPC convention), not INTERNAL; the typed detail says which.
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE, raised.value
        typed = from_rpc_error(raised.value, "router")
        assert typed.kind == Kind.ERROR_KIND_SERVICE_UNAVAILABLE and typed.error.code == "billing_unavailable", typed
        assert "Retry" in typed.message
        # The client package retries it (nothing was served or held), each attempt a new request id, until billing
        # is back; the call is then served and billed once.
        async with SwitchboardRouter(router_address(gw), api_key=key, retries=40) as router:
            loop = asyncio.get_running_loop()
            back = loop.run_in_executor(None, lambda: (time.sleep(1.0), gw.start_service("billing")))
            reply = await router.complete("fake-good", [{"role": "user", "content": "hi"}])
            await back
        assert reply.text == "Hello from the fake provider."
        rows = rows_of(gw, key_id, 1)
        assert [r["status"] for r in rows] == ["success"], rows
    finally:
        gw.stop()
