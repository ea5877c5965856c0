"""Internal services call the router directly: the documented Python client, and what grpcurl relies on
(server reflection, the health service)."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from switchboard_common.errors import Kind, ServiceError
from switchboard_router.client import RouterClient
from tests.harness import Gateway


def router_address(gateway: Gateway) -> str:
    return gateway.env["SWITCHBOARD_ROUTER_ADDRESS"]


async def test_python_client_unary_and_stream(gateway: Gateway) -> None:
    async with RouterClient(router_address(gateway)) as router:
        reply = await router.complete("fake-good", [{"role": "user", "content": "hi"}])
        assert reply.body["choices"][0]["message"]["content"] == "Hello from the fake provider."
        assert reply.route.deployment_id == "fake-good/0" and reply.usage.total_tokens > 0
        text = ""
        async for chunk in router.stream("fake-good", [{"role": "user", "content": "hi"}]):
            if chunk["choices"]:
                text += chunk["choices"][0]["delta"].get("content") or ""
        assert text == "Hello from the fake provider."
        assert router.last_stream_usage is not None and router.last_stream_usage.completion_tokens > 0


async def test_python_client_gets_typed_errors(gateway: Gateway) -> None:
    async with RouterClient(router_address(gateway)) as router:
        with pytest.raises(ServiceError) as info:
            await router.complete("no-such-model", [{"role": "user", "content": "hi"}])
        assert info.value.kind == Kind.ERROR_KIND_MODEL_NOT_FOUND and "fake-good" in info.value.message


async def test_reflection_and_health_as_grpcurl_uses_them(gateway: Gateway) -> None:
    async with grpc.aio.insecure_channel(router_address(gateway)) as channel:
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
