"""The same fake OpenAI provider as ``fake_provider``, served the ordinary way: Starlette on uvicorn.

``fake_provider`` is a raw asyncio protocol built to never be the bottleneck; this one is what an
independent harness would write in ten lines (a Starlette app under uvicorn with uvloop and
httptools), answering the same bodies (the same ``_CompletionPlan``). The benchmark measures
LiteLLM against both, because a gateway's HTTP client can behave differently with the two
servers (see docs/performance.md, "LiteLLM and the fake provider").

Run it as a process: ``python -m benchmarks.fake_provider_asgi --port 9001 --chunks 20``; it takes
the same ``--delay-ms`` and ``--chunk-delay-ms`` as ``fake_provider``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from benchmarks.fake_provider import _WORDS, FakeProviderConfig, _CompletionPlan


def _sse(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _stream_events(plan: _CompletionPlan) -> list[bytes]:
    """The events ``fake_provider`` sends, without its own chunked framing (uvicorn adds it)."""
    events = [_sse(plan.chunk({"role": "assistant", "content": ""}, None))]
    events += [_sse(plan.chunk({"content": _WORDS[index % len(_WORDS)]}, None)) for index in range(plan.chunks)]
    events.append(_sse(plan.chunk({}, "stop")))
    if plan.include_usage:
        events.append(_sse(plan.usage_chunk()))
    events.append(b"data: [DONE]\n\n")
    return events


class _OrjsonResponse(JSONResponse):
    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


def build_app(config: FakeProviderConfig) -> Starlette:
    """The Starlette app: chat completions (JSON or SSE), the model list, a health check."""

    async def chat(request: Request) -> Response:
        try:
            plan = _CompletionPlan(await request.body(), config)
        except ValueError as exc:
            error = {"message": str(exc), "type": "invalid_request_error", "param": None, "code": None}
            return _OrjsonResponse({"error": error}, status_code=400)
        provider_ms = config.delay_ms + (config.chunk_delay_ms * plan.chunks if plan.stream else 0.0)
        headers = {"x-fake-provider-ms": f"{provider_ms:.3f}"}
        if config.delay_ms > 0:
            await asyncio.sleep(config.delay_ms / 1000)
        if not plan.stream:
            return _OrjsonResponse(plan.completion(), headers=headers)
        events = _stream_events(plan)

        async def body() -> AsyncIterator[bytes]:
            yield events[0]
            for event in events[1:]:
                if config.chunk_delay_ms > 0:
                    await asyncio.sleep(config.chunk_delay_ms / 1000)
                yield event

        return StreamingResponse(body(), media_type="text/event-stream; charset=utf-8",
                                 headers={**headers, "cache-control": "no-cache"})

    async def models(_request: Request) -> Response:
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "fake"} for name in config.models]
        return _OrjsonResponse({"object": "list", "data": data})

    async def health(_request: Request) -> Response:
        return _OrjsonResponse({"status": "ok"})

    return Starlette(routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/chat/completions", chat, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ])


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m benchmarks.fake_provider_asgi", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="wait before the first byte of each answer")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream (max_tokens overrides)")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="wait between stream chunks")
    parser.add_argument("--models", default="bench-model", help="comma-separated names for GET /v1/models")
    args = parser.parse_args(argv)
    config = FakeProviderConfig(delay_ms=args.delay_ms, chunks=args.chunks, chunk_delay_ms=args.chunk_delay_ms,
                                models=tuple(name for name in args.models.split(",") if name))
    uvicorn.run(build_app(config), host=args.host, port=args.port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
