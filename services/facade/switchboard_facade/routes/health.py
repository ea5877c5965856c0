"""Liveness and readiness: ready only when auth, router and billing answer their health checks."""

from __future__ import annotations

import asyncio

import grpc
import orjson
from fastapi import APIRouter
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.requests import Request
from starlette.responses import Response

router = APIRouter()


@router.get("/health/liveness")
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
@router.get("/health")
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
