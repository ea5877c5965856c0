"""Liveness and readiness (ready only when auth, router and billing answer their health checks), under
LiteLLM's paths too; and ``/health`` (admin), LiteLLM's per-deployment report, from the router's circuit
breakers: no provider is called and no budget is charged."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import orjson
from fastapi import APIRouter
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.requests import Request
from starlette.responses import Response

from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.admin_keys import admin_call, reads_all
from switchboard_router.client import RoutingConstraints

router = APIRouter()


@router.get("/health/liveness")
@router.get("/health/liveliness")
@router.get("/health/live")
async def liveness() -> Response:
    return Response(b'{"status":"alive"}', media_type="application/json")


async def _check(channel: grpc.aio.Channel) -> str:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
    except grpc.aio.AioRpcError as exc:
        return f"unreachable ({exc.code().name})"
    return "ok" if reply.status == health_pb2.HealthCheckResponse.SERVING else "not serving"


@router.get("/health/readiness")
@router.get("/health/ready")
async def readiness(request: Request) -> Response:
    channels = request.app.state.gateway.channels
    names = list(channels)
    results = await asyncio.gather(*(_check(channels[n]) for n in names))
    services = dict(zip(names, results, strict=True))
    ready = all(v == "ok" for v in results) and not request.app.state.draining
    body = {"status": "ready" if ready else "not ready", "services": services}
    if not ready:
        down = [n for n, v in services.items() if v != "ok"]
        body["message"] = ("shutting down" if request.app.state.draining
                           else f"waiting for service(s): {', '.join(down)}")
    return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json")


@router.get("/health")
async def deployments_health(request: Request) -> Response:
    """LiteLLM's ``/health``: ``healthy_endpoints``, ``unhealthy_endpoints`` and their counts, one endpoint per
    deployment, as the router's circuit breaker sees it (a deployment cooling down after failures is unhealthy).
    Admins and proxy_admin viewers only."""
    async def work(gw: Gateway, who: str) -> Any:
        healthy: list[dict[str, Any]] = []
        unhealthy: list[dict[str, Any]] = []
        for model in (await gw.router.list_models(RoutingConstraints())).models:
            for d in model.deployments:
                endpoint = {"model": f"{d.provider}/{d.upstream_model}", "model_name": model.name,
                            "model_id": d.deployment_id, "custom_llm_provider": d.provider,
                            "jurisdiction": d.jurisdiction or None, "health": d.health}
                (healthy if d.health == "healthy" else unhealthy).append(endpoint)
        return {"healthy_endpoints": healthy, "unhealthy_endpoints": unhealthy, "healthy_count": len(healthy),
                "unhealthy_count": len(unhealthy)}
    return await admin_call(request, work, allow=reads_all)
