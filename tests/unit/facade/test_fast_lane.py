"""The fast lane answers the hot routes as the framework path would, plus its own guarantees.

The app is the real one (``create_app``) with a stub gateway in place of the
gRPC peers; requests are raw ASGI calls, so headers are checked exactly as
the server would write them. Where the lane replaces a framework layer (CORS,
routing), its answer is compared with the framework's for the same request.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from switchboard.v1 import common_pb2
from switchboard_auth.client import Admitted, KeyContext
from switchboard_billing.client import Hold
from switchboard_common import http_metrics, metrics
from switchboard_common.access_log import AccessLog
from switchboard_common.errors import Kind, ServiceError, service_unavailable
from switchboard_facade.app import FacadeApp, create_app
from switchboard_facade.settings import FacadeSettings
from switchboard_router.client import CompleteResponse, Operation, RouteInfo, StreamEvent

GOOD_KEY = "sk-good"
ROUTE = RouteInfo(deployment_id="dep-1", provider="openai", served_model="m", jurisdiction="us",
                             privacy_tier="standard", attempts=1, router_instance="host:1")
USAGE = common_pb2.Usage(prompt_tokens=3, completion_tokens=5, total_tokens=8, reported_by_provider=True)
COMPLETION = orjson.dumps({"id": "c1", "object": "chat.completion", "model": "m", "created": 1,
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                        "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}})


def chunk(text: str) -> bytes:
    return orjson.dumps({"id": "c1", "object": "chat.completion.chunk", "model": "m", "created": 1,
                         "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})


class StubRpc:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class StubAuth:
    def __init__(self, gateway: StubGateway) -> None:
        self.gateway = gateway

    async def admit(self, api_key: str, **request: Any) -> Admitted:
        return Admitted(await self.verify(api_key))

    async def verify(self, api_key: str) -> KeyContext:
        if self.gateway.failure is not None:
            raise self.gateway.failure
        if api_key != GOOD_KEY:
            raise ServiceError(Kind.ERROR_KIND_AUTHENTICATION, "Invalid API key.", code="invalid_api_key")
        key = KeyContext(key_id="k1", key_alias="alias-1", models=["m"])
        http_metrics.note(key_alias=key.key_alias)
        return key

    def release(self, admitted: Any, usage: Any = None) -> None:
        self.gateway.released.append(usage)


class StubBilling:
    def __init__(self, gateway: StubGateway) -> None:
        self.gateway = gateway
        #: The instant billing charges requests at, when not their start (a facade's clock far off billing's).
        self.charged_at_ms = 0

    async def hold(self, *, request_id: str, started_at_ms: int, **request: Any) -> Hold:
        return Hold(request_id, started_at_ms=self.charged_at_ms or started_at_ms)

    def end(self, hold: Any) -> None:
        self.gateway.ended.append(hold.request_id)

    def settle(self, event: Any) -> None:
        self.gateway.settled.append(event)


class StubRouter:
    def __init__(self, gateway: StubGateway) -> None:
        self.gateway = gateway

    async def answer(self, request: Any, operation: Operation = Operation.COMPLETE) -> CompleteResponse:
        self.gateway.routed.append(request)
        await self.gateway.working()
        if operation is Operation.EMBED:
            return CompleteResponse(body=b'{"object":"list","data":[]}', route=ROUTE, usage=USAGE)
        return CompleteResponse(body=COMPLETION, route=ROUTE, usage=USAGE, provider_ms=1.0)

    async def stream(self, request: Any) -> tuple[RouteInfo, AsyncIterator[StreamEvent], StubRpc]:
        gateway = self.gateway
        await gateway.working()

        async def events() -> AsyncIterator[StreamEvent]:
            for text in gateway.stream_texts:
                event = StreamEvent()
                event.chunks.chunks.append(chunk(text))
                yield event
            if gateway.hang:
                await asyncio.Event().wait()
            if gateway.router_lost:
                raise service_unavailable("router")
            event = StreamEvent()
            event.end.usage.CopyFrom(USAGE)
            if gateway.stream_error is not None:
                event.end.error.CopyFrom(gateway.stream_error)
            yield event
        return ROUTE, events(), gateway.rpc


class StubGateway:
    """The clients the routes use, answered in memory."""

    def __init__(self, max_body_bytes: int = 1 << 20) -> None:
        self.settings = SimpleNamespace(max_body_bytes=max_body_bytes, completion_timeout_seconds=60.0)
        #: What the facade settled itself (calls the router never answered), the admissions it gave back (their
        #: usage) and the holds it ended (their request ids).
        self.settled: list[Any] = []
        #: The requests the router was asked to answer.
        self.routed: list[Any] = []
        self.released: list[Any] = []
        self.ended: list[str] = []
        self.failure: BaseException | None = None
        #: Whether the server's shutdown grace ran out (requests cut from then on are this facade's doing).
        self.grace_expired = False
        #: Stream: chunk texts sent, then (hang=True) wait until cancelled, else end with usage.
        self.stream_texts = ["a", "b"]
        self.hang = False
        #: The error the stream ends with (the provider broke it off), if any.
        self.stream_error: common_pb2.Error | None = None
        #: The router works on an answer until cancelled (before anything is sent); whether it was.
        self.slow_router = False
        #: The router is lost mid-stream (its connection broke).
        self.router_lost = False
        self.router_cancelled = False
        self.rpc = StubRpc()
        self.auth = StubAuth(self)
        self.billing = StubBilling(self)
        self.router = StubRouter(self)

    async def verify(self, api_key: str) -> KeyContext:
        return await self.auth.verify(api_key)

    async def working(self) -> None:
        if self.slow_router:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.router_cancelled = True
                raise


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: Request body messages the app asked for.
    reads: int = 0

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.encode():
                return value.decode("latin-1")
        return None

    def json(self) -> Any:
        return json.loads(self.body)


async def call(app: Any, path: str, body: bytes | list[bytes] = b"{}", headers: dict[str, str] | None = None,
               method: str = "POST", disconnect_after_body_messages: int | None = None,
               leave_before_answer: bool = False, leave_mid_body: bool = False) -> Answer:
    """One raw ASGI request, as uvicorn would hand it over (``leave_before_answer``: the client disconnects
    once its body is sent, before any answer; ``leave_mid_body``: once the chunks given are sent, before the rest
    of its body)."""
    chunks = body if isinstance(body, list) else [body]
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if not isinstance(body, list):
        raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "server": ("127.0.0.1", 4000), "client": ("127.0.0.1", 50000), "scheme": "http", "method": method,
             "root_path": "", "path": path, "raw_path": path.encode(), "query_string": b"", "headers": raw_headers,
             "state": {}}
    gone = asyncio.Event()
    answer = Answer(0, [], b"")

    async def receive() -> dict[str, Any]:
        if answer.reads < len(chunks):
            answer.reads += 1
            return {"type": "http.request", "body": chunks[answer.reads - 1],
                    "more_body": leave_mid_body or answer.reads < len(chunks)}
        if leave_mid_body:
            gone.set()
        if leave_before_answer:
            await asyncio.sleep(0.01)
            gone.set()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        answer.messages.append(message)
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = list(message["headers"])
        else:
            answer.body += message.get("body", b"")
            bodies = sum(1 for m in answer.messages if m["type"] == "http.response.body")
            if not message.get("more_body", False) or bodies == disconnect_after_body_messages:
                gone.set()

    await app(scope, receive, send)
    gone.set()
    return answer


def make_app(gateway: StubGateway, **settings: Any) -> FacadeApp:
    app = create_app(FacadeSettings(**settings))
    app.state.gateway = gateway
    app.state.draining = False
    app.fast_lane.gateway = gateway
    return app


def chat_body(**extra: Any) -> bytes:
    return orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}], **extra})


AUTH = {"authorization": f"Bearer {GOOD_KEY}", "content-type": "application/json"}


def test_every_hot_path_is_the_frameworks_post_route_and_in_the_schema() -> None:
    app = make_app(StubGateway())
    lane = app.fast_lane
    paths = {*lane.exact, "/openai/deployments/m/chat/completions", "/cursor/openai/deployments/m/chat/completions"}
    assert {"/v1/chat/completions", "/cursor/chat/completions", "/v1/messages", "/v1/responses",
            "/v1/embeddings"} <= paths
    schema = app.openapi()["paths"]
    for path in paths:
        hot = lane.match(path)
        assert hot is not None, path
        assert "post" in schema[hot[0].template], hot[0].template
        # The same request through FastAPI's own routing reaches the endpoint that names the same handler.
        scopes: list[dict[str, Any]] = []

        async def spy(scope: dict[str, Any], receive: Any, send: Any, scopes: list[dict[str, Any]] = scopes) -> None:
            scopes.append(scope)
            await app.framework(scope, receive, send)

        asyncio.run(call(spy, path, chat_body(), {"authorization": "Bearer sk-wrong"}))
        assert scopes[0]["route"].endpoint.hot_route[0] is hot[0].handler, path
    assert lane.match("/v1/chat/completions/") is None  # the framework redirects it
    # A provider/model deployment name spans a slash (sent as is or as %2F, which the server decodes).
    slashed = lane.match("/openai/deployments/openai/gpt-4o/chat/completions")
    assert slashed is not None and slashed[1] == {"deployment": "openai/gpt-4o"}
    assert slashed[0].template == "/openai/deployments/{deployment}/chat/completions"


@pytest.mark.parametrize("origins", ["*", "https://app.example,https://other.example"])
@pytest.mark.parametrize("origin", [None, "https://app.example", "https://evil.example"])
async def test_cors_headers_are_the_middlewares(origins: str, origin: str | None) -> None:
    app = make_app(StubGateway(), cors_origins=origins)
    headers = {"authorization": "Bearer sk-wrong"}
    if origin is not None:
        headers["origin"] = origin
    lane = await call(app, "/v1/chat/completions", chat_body(), headers)
    framework = await call(app.framework, "/v1/chat/completions", chat_body(), headers)

    def comparable(answer: Answer) -> list[tuple[bytes, bytes]]:
        return sorted((k, b"<id>" if k in (b"x-request-id", b"x-switchboard-request-id") else v)
                      for k, v in answer.headers)

    assert lane.status == framework.status == 401
    assert comparable(lane) == comparable(framework)
    assert lane.body == framework.body
    assert lane.header("vary") == "Origin"
    if origin is not None:
        assert "x-request-id" in (lane.header("access-control-expose-headers") or "")


async def test_a_successful_answer_carries_cors_route_and_request_id_headers() -> None:
    gateway = StubGateway()
    app = make_app(gateway)
    answer = await call(app, "/v1/chat/completions", chat_body(), {**AUTH, "origin": "https://app.example"})
    assert answer.status == 200
    assert answer.json()["choices"][0]["message"]["content"] == "hi"
    assert answer.header("access-control-allow-origin") == "*"
    assert answer.header("content-type") == "application/json"
    assert answer.header("content-length") == str(len(answer.body))
    assert answer.header("x-switchboard-deployment") == "dep-1"
    request_id = answer.header("x-request-id")
    assert request_id is not None and request_id.startswith("req_")
    assert gateway.ended == [request_id] and gateway.released == [USAGE], "the admission and hold given back"
    assert gateway.settled == [], "the router settles what it served"


@pytest.mark.parametrize("path", ["lane", "framework"])
async def test_a_whole_answer_goes_out_before_its_admission_and_hold_are_given_back(path: str) -> None:
    """They are given back once, after the answer is written: the answer does not wait for them."""
    gateway = StubGateway()
    app = make_app(gateway)
    given_back_when_sent: list[tuple[int, int]] = []
    target = app if path == "lane" else app.framework

    async def watching(scope: Any, receive: Any, send: Any) -> None:
        async def noting(message: dict[str, Any]) -> None:
            given_back_when_sent.append((len(gateway.released), len(gateway.ended)))
            await send(message)
        await target(scope, receive, noting)

    answer = await call(watching, "/v1/chat/completions", chat_body(), AUTH)
    assert answer.status == 200
    assert given_back_when_sent == [(0, 0), (0, 0)], "the head and the body went out first"
    assert gateway.released == [USAGE] and gateway.ended == [answer.header("x-request-id")]


@pytest.mark.parametrize("path", ["lane", "framework"])
async def test_an_answer_that_cannot_be_written_still_gives_back_its_admission_and_hold(path: str) -> None:
    gateway = StubGateway()
    app = make_app(gateway)
    target = app if path == "lane" else app.framework

    async def breaking(scope: Any, receive: Any, send: Any) -> None:
        async def broken(message: dict[str, Any]) -> None:
            raise OSError("the connection broke")
        await target(scope, receive, broken)

    with pytest.raises(OSError):
        await call(breaking, "/v1/chat/completions", chat_body(), AUTH)
    assert gateway.released == [USAGE] and len(gateway.ended) == 1, "given back once, all the same"


async def test_a_request_is_dated_by_the_instant_billing_charges_it_at() -> None:
    """Its start as this facade read it, unless billing charged another instant (a clock far off billing's)."""
    gateway = StubGateway()
    app = make_app(gateway)
    before = int(time.time() * 1000)
    assert (await call(app, "/v1/chat/completions", chat_body(), AUTH)).status == 200
    assert before <= gateway.routed[0].payer.started_at_ms <= int(time.time() * 1000)
    gateway.billing.charged_at_ms = before - 60_000
    assert (await call(app, "/v1/chat/completions", chat_body(), AUTH)).status == 200
    assert gateway.routed[1].payer.started_at_ms == before - 60_000


async def test_an_unexpected_exception_is_a_500_in_the_openai_dialect(caplog: pytest.LogCaptureFixture) -> None:
    gateway = StubGateway()
    gateway.failure = RuntimeError("a bug")
    app = make_app(gateway)
    with caplog.at_level(logging.ERROR, logger="switchboard_facade.fast_lane"):
        answer = await call(app, "/v1/chat/completions", chat_body(), {**AUTH, "origin": "https://app.example"})
    request_id = answer.header("x-request-id")
    assert answer.status == 500 and request_id
    error = answer.json()["error"]
    assert error["type"] == "api_error" and error["code"] == "internal_error" and request_id in error["message"]
    assert answer.header("access-control-allow-origin") == "*"
    assert any(getattr(r, "request_id", None) == request_id and r.exc_info for r in caplog.records)


async def test_an_unexpected_exception_is_a_500_in_the_anthropic_dialect() -> None:
    gateway = StubGateway()
    gateway.failure = RuntimeError("a bug")
    app = make_app(gateway)
    body = orjson.dumps({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    answer = await call(app, "/v1/messages", body, {"x-api-key": GOOD_KEY})
    assert answer.status == 500
    assert answer.json()["type"] == "error" and answer.json()["error"]["type"] == "api_error"
    assert answer.header("request-id") == answer.header("x-request-id") is not None


@pytest.mark.parametrize("declared", [True, False])
async def test_a_body_over_the_limit_is_a_413_in_the_routes_dialect(declared: bool) -> None:
    app = make_app(StubGateway(max_body_bytes=100))
    big = b"x" * 80
    openai = await call(app, "/v1/chat/completions", big * 2 if declared else [big, big, big], AUTH)
    assert openai.status == 413
    assert openai.json()["error"]["code"] == "request_too_large" and openai.header("x-request-id")
    if declared:
        assert openai.reads == 0, "a declared length over the limit is refused before reading"
    anthropic = await call(app, "/v1/messages", big * 2 if declared else [big, big, big], {"x-api-key": GOOD_KEY})
    assert anthropic.status == 413
    assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["type"] == "request_too_large"
    assert anthropic.header("request-id") == anthropic.header("x-request-id") is not None


async def test_requests_are_counted_timed_and_logged() -> None:
    app = make_app(StubGateway())
    lines = io.StringIO()
    app.fast_lane.observer.access_log = AccessLog("facade", stream=lines)
    template = "/openai/deployments/{deployment}/chat/completions"
    ok = (template, "POST", "m", "dep-1", "200")
    refused = (template, "POST", "", "", "401")
    before = dict(metrics.REQUESTS._values)
    latency_before = metrics.REQUEST_LATENCY._values.get((template, "m"), [0.0])[-1]
    logger = logging.getLogger("switchboard.access")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        answer = await call(app, "/openai/deployments/m/chat/completions", chat_body(), AUTH)
        await call(app, "/openai/deployments/m/chat/completions", chat_body(), {"api-key": "sk-wrong"})
        app.fast_lane.observer.access_log.close()
    finally:
        logger.setLevel(level)
    assert answer.status == 200
    assert metrics.REQUESTS._values[ok] == before.get(ok, 0) + 1
    assert metrics.REQUESTS._values[refused] == before.get(refused, 0) + 1
    assert metrics.REQUEST_LATENCY._values[(template, "m")][-1] > latency_before
    assert metrics.INFLIGHT._values[()] == 0
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    line = next(r for r in records if r["request_id"] == answer.header("x-request-id"))
    assert line["route"] == template and line["status"] == 200 and line["key_alias"] == "alias-1"
    assert line["deployment"] == "dep-1" and line["stream"] is False


async def test_a_stream_is_sent_frame_by_frame() -> None:
    gateway = StubGateway()
    gateway.stream_texts = ["a", "b", "c"]
    app = make_app(gateway)
    ttft_before = sum(metrics.TIME_TO_FIRST_TOKEN._values.get(("m",), [0.0])[:-1])
    answer = await call(app, "/v1/chat/completions", chat_body(stream=True), AUTH)
    assert answer.status == 200 and answer.header("content-type") == "text/event-stream; charset=utf-8"
    assert answer.header("content-length") is None and answer.header("vary") == "Origin"
    bodies = [m for m in answer.messages if m["type"] == "http.response.body"]
    assert [m["more_body"] for m in bodies] == [True, True, True, True, False]
    assert [orjson.loads(m["body"][6:])["choices"][0]["delta"]["content"] for m in bodies[:3]] == ["a", "b", "c"]
    assert bodies[3]["body"].endswith(b"data: [DONE]\n\n")
    assert gateway.released == [USAGE] and len(gateway.ended) == 1
    assert sum(metrics.TIME_TO_FIRST_TOKEN._values[("m",)][:-1]) == ttft_before + 1  # bucket counts, then the sum


async def test_a_client_that_leaves_mid_stream_cancels_the_upstream_call() -> None:
    gateway = StubGateway()
    gateway.hang = True
    app = make_app(gateway)
    answer = await asyncio.wait_for(
        call(app, "/v1/chat/completions", chat_body(stream=True), AUTH, disconnect_after_body_messages=2), 5)
    assert answer.status == 200
    assert sum(1 for m in answer.messages if m["type"] == "http.response.body") == 2
    assert gateway.rpc.cancelled, "the router's call is cancelled (the router settles what it delivered)"
    assert gateway.released == [None] and len(gateway.ended) == 1
    assert metrics.INFLIGHT._values[()] == 0


async def test_the_framework_path_reads_forwarded_headers_only_from_trusted_proxies() -> None:
    for trusted, scheme in (("127.0.0.1", "https"), ("10.9.9.9", "http")):
        app = make_app(StubGateway())

        async def where(request: Request) -> PlainTextResponse:
            return PlainTextResponse(request.url.scheme)

        app.add_route("/scheme", where, methods=["GET"])
        app.trust_forwarded_headers(trusted)
        answer = await call(app, "/scheme", b"", {"x-forwarded-proto": "https"}, method="GET")
        assert answer.body.decode() == scheme


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("path", ["lane", "framework"])
async def test_a_client_that_leaves_before_the_answer_cancels_it_and_is_recorded_as_gone(
        stream: bool, path: str) -> None:
    gateway = StubGateway()
    gateway.slow_router = True
    app = make_app(gateway)
    lines = io.StringIO()
    app.fast_lane.observer.access_log = AccessLog("facade", stream=lines)
    logger = logging.getLogger("switchboard.access")
    level = logger.level
    if path == "lane":  # the framework path logs through its middleware, not the lane
        logger.setLevel(logging.INFO)
    try:
        answer = await asyncio.wait_for(call(app if path == "lane" else app.framework, "/v1/chat/completions",
                                             chat_body(stream=stream), AUTH, leave_before_answer=True), 5)
        app.fast_lane.observer.access_log.close()
    finally:
        logger.setLevel(level)
    assert gateway.router_cancelled, "the router's call is cancelled, not left running for no one"
    assert answer.status == 499, "recorded as the client's leaving (the server drops the answer)"
    request_id = answer.header("x-request-id")
    # The router settles a call it took; this facade's record, provisional, stands for one it never took.
    [event] = gateway.settled
    assert (event.status, event.http_status, event.error_code, event.provisional) == (
        "cancelled", 499, "client_disconnected", True)
    assert event.request_id == request_id
    assert gateway.released == [None] and gateway.ended == [request_id], "the admission and the hold given back"
    assert metrics.INFLIGHT._values[()] == 0
    if path == "lane":
        [line] = [json.loads(line) for line in lines.getvalue().splitlines()]
        assert line["status"] == 499 and line["request_id"] == request_id


@pytest.mark.parametrize("path", ["lane", "framework"])
async def test_a_client_that_leaves_while_sending_its_body_is_recorded_as_gone(path: str) -> None:
    gateway = StubGateway()
    app = make_app(gateway)
    lines = io.StringIO()
    app.fast_lane.observer.access_log = AccessLog("facade", stream=lines)
    logger = logging.getLogger("switchboard.access")
    level = logger.level
    if path == "lane":
        logger.setLevel(logging.INFO)
    try:
        answer = await asyncio.wait_for(call(app if path == "lane" else app.framework, "/v1/chat/completions",
                                             [chat_body()[:20]], AUTH, leave_mid_body=True), 5)
        app.fast_lane.observer.access_log.close()
    finally:
        logger.setLevel(level)
    assert answer.status == 499, "its leaving, not a gateway fault"
    assert gateway.settled == [] and gateway.ended == [], "nothing was held or served"
    if path == "lane":
        [line] = [json.loads(line) for line in lines.getvalue().splitlines()]
        assert line["status"] == 499


async def test_a_broken_stream_tells_the_billed_usage_before_its_error_when_asked() -> None:
    gateway = StubGateway()
    gateway.stream_error = common_pb2.Error(message="The provider broke the stream off.",
                                            code="upstream_stream_interrupted")
    app = make_app(gateway)
    asked = await call(app, "/v1/chat/completions", chat_body(stream=True, stream_options={"include_usage": True}),
                       AUTH)
    frames = [frame for frame in asked.body.split(b"\n\n") if frame.startswith(b"data: {")]
    events = [orjson.loads(frame[6:]) for frame in frames]
    assert [e["choices"][0]["delta"]["content"] for e in events[:2]] == ["a", "b"]
    assert events[2] == {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8,
                                   "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 0,
                                                             "cache_write_tokens": 0},
                                   "completion_tokens_details": {"reasoning_tokens": 0}}}
    assert events[3]["error"]["code"] == "upstream_stream_interrupted" and len(events) == 4
    assert asked.body.endswith(b"data: [DONE]\n\n")
    unasked = await call(app, "/v1/chat/completions", chat_body(stream=True), AUTH)
    assert b'"usage"' not in unasked.body and b"upstream_stream_interrupted" in unasked.body
    anthropic = await call(app, "/v1/messages", orjson.dumps(
        {"model": "m", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "hi"}]}),
        {"x-api-key": GOOD_KEY})
    kinds = [line[7:] for line in anthropic.body.decode().splitlines() if line.startswith("event: ")]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "error"]
    delta = json.loads(anthropic.body.decode().split("event: message_delta\ndata: ")[1].split("\n")[0])
    assert delta["delta"]["stop_reason"] is None and delta["usage"]["output_tokens"] == 5


async def test_a_stream_cut_off_from_the_router_tells_the_usage_this_facade_billed() -> None:
    gateway = StubGateway()
    gateway.router_lost = True
    gateway.stream_texts = ["abcd" * 10]
    app = make_app(gateway)
    answer = await call(app, "/v1/chat/completions", chat_body(stream=True, stream_options={"include_usage": True}),
                        AUTH)
    events = [orjson.loads(frame[6:]) for frame in answer.body.split(b"\n\n") if frame.startswith(b"data: {")]
    [settled] = gateway.settled  # the router never settled it: this facade's record is the bill
    assert settled.provisional and settled.usage.completion_tokens == 10
    assert events[-2]["choices"] == [] and events[-1]["error"]["code"] == "router_unavailable"
    assert (events[-2]["usage"]["prompt_tokens"], events[-2]["usage"]["completion_tokens"]) == (
        settled.usage.prompt_tokens, settled.usage.completion_tokens)
