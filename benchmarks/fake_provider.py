"""A fake OpenAI-compatible provider built so that it is never the bottleneck of a benchmark.

It is a raw asyncio protocol (uvloop when available) speaking HTTP/1.1 with keep-alive, so one
core serves tens of thousands of small requests a second. It answers:

- ``POST /v1/chat/completions``: a ``chat.completion`` JSON, or with ``"stream": true`` an SSE
  stream of ``chat.completion.chunk`` events (a role chunk, N content chunks, a finish chunk,
  a usage chunk when ``stream_options.include_usage`` is true, then ``data: [DONE]``);
- ``GET /v1/models``: the model list;
- ``GET /health``: 200.

Behaviour is set on the command line: ``--delay-ms`` before the first byte, ``--chunks`` content
chunks per stream, ``--chunk-delay-ms`` between chunks. Like a model, it writes what the prompt asks
for, up to the request's output cap: a last message that says ``Answer in N words`` gets N chunks
(else ``--chunks``), never more than ``max_completion_tokens`` / ``max_tokens`` — so a "long
stream" scenario goes through any gateway unchanged, and a gateway that sends the provider an
output bound (as Switchboard does for budgeted keys) does not change the answer's length. Every response carries ``x-fake-provider-ms``: the time the provider itself
spent waiting on purpose (the configured delays), so that ``overhead = total - provider time``.

Run it as a process: ``python -m benchmarks.fake_provider --port 9000 --delay-ms 0 --chunks 20``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import time
from collections import deque
from dataclasses import dataclass
from typing import cast

import orjson

_MAX_HEAD_BYTES = 64 * 1024
#: Content of successive chunks. Consecutive chunks differ, as a real model's do (some gateways
#: abort a stream that repeats the same chunk too often).
_WORDS = ("alpha ", "bravo ", "charlie ", "delta ", "echo ", "foxtrot ", "golf ", "hotel ")


def completion_text(chunks: int) -> str:
    """The answer's text: what the streamed chunks concatenate to, and the non-streamed content."""
    return "".join(_WORDS[index % len(_WORDS)] for index in range(chunks))


@dataclass(frozen=True, slots=True)
class FakeProviderConfig:
    """How the fake provider behaves; shared by every connection."""

    delay_ms: float = 0.0
    chunks: int = 20
    chunk_delay_ms: float = 0.0
    models: tuple[str, ...] = ("bench-model",)


@dataclass(slots=True)
class _Request:
    method: str
    path: str
    body: bytes
    keep_alive: bool


class _BadRequest(Exception):
    """The bytes on the connection are not HTTP/1.1 this server understands."""


def _response_head(status: str, content_type: bytes, extra: list[bytes], keep_alive: bool) -> bytes:
    lines = [b"HTTP/1.1 " + status.encode(), b"content-type: " + content_type]
    lines.extend(extra)
    lines.append(b"connection: keep-alive" if keep_alive else b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _json_response(status: str, payload: object, keep_alive: bool, provider_ms: float) -> bytes:
    body = orjson.dumps(payload)
    extra = [b"content-length: " + str(len(body)).encode(), b"x-fake-provider-ms: " + f"{provider_ms:.3f}".encode()]
    return _response_head(status, b"application/json", extra, keep_alive) + body


def _error(status: str, message: str, keep_alive: bool) -> bytes:
    payload = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return _json_response(status, payload, keep_alive, 0.0)


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def _sse(payload: object) -> bytes:
    return _chunked(b"data: " + orjson.dumps(payload) + b"\n\n")


#: How a prompt asks for an answer's length (the long-stream scenario's last message says it).
_ASKED_WORDS = re.compile(r"Answer in (\d{1,6}) words")


def _last_text(messages: list[object]) -> str:
    last = messages[-1] if messages else None
    content = last.get("content") if isinstance(last, dict) else None
    return content if isinstance(content, str) else ""


class _CompletionPlan:
    """What one chat request asks for, decided once from its body."""

    __slots__ = ("chunks", "created", "ident", "include_usage", "model", "prompt_tokens", "stream")

    def __init__(self, body: bytes, config: FakeProviderConfig) -> None:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"body is not JSON: {exc}") from exc
        if not isinstance(parsed, dict) or not isinstance(parsed.get("messages"), list):
            raise ValueError("body must be a JSON object with a 'messages' list")
        self.model = str(parsed.get("model") or config.models[0])
        self.stream = bool(parsed.get("stream"))
        options = parsed.get("stream_options") or {}
        self.include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        asked = _ASKED_WORDS.search(_last_text(parsed["messages"]))
        chunks = int(asked.group(1)) if asked else config.chunks
        cap = parsed.get("max_completion_tokens") or parsed.get("max_tokens")
        self.chunks = max(1, min(chunks, cap) if isinstance(cap, int) else chunks)
        self.prompt_tokens = max(1, len(body) // 4)
        self.created = int(time.time())
        self.ident = f"chatcmpl-fake{time.monotonic_ns():x}"

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.chunks,
            "total_tokens": self.prompt_tokens + self.chunks,
        }

    def completion(self) -> dict[str, object]:
        return {
            "id": self.ident,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": completion_text(self.chunks), "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": self.usage(),
            "system_fingerprint": "fp_fake",
        }

    def chunk(self, delta: dict[str, object], finish_reason: str | None) -> dict[str, object]:
        return {
            "id": self.ident,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def usage_chunk(self) -> dict[str, object]:
        return {
            "id": self.ident,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": self.usage(),
        }


class FakeProviderProtocol(asyncio.Protocol):
    """One client connection: parses pipelined HTTP/1.1 requests and answers them in order.

    Requests that need no waiting are answered synchronously inside ``data_received`` (the
    fast path); the others run as one task per connection so responses keep their order.
    """

    def __init__(self, config: FakeProviderConfig) -> None:
        self._config = config
        self._buffer = bytearray()
        self._queue: deque[_Request] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            while (request := self._parse_one()) is not None:
                self._queue.append(request)
        except _BadRequest as exc:
            self._queue.append(_Request("BAD", str(exc), b"", False))
        if self._worker is None:
            self._drain_fast()

    def _parse_one(self) -> _Request | None:
        buffer = self._buffer
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(buffer) > _MAX_HEAD_BYTES:
                raise _BadRequest("request head too large")
            return None
        head = bytes(buffer[:head_end]).decode("latin-1")
        request_line, _, header_block = head.partition("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(f"malformed request line {request_line[:80]!r}")
        method, target, version = parts
        content_length = 0
        chunked = False
        keep_alive = version == "HTTP/1.1"
        for line in header_block.split("\r\n"):
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                content_length = int(value.strip())
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection":
                token = value.strip().lower()
                keep_alive = token != "close" and (keep_alive or token == "keep-alive")
        body_start = head_end + 4
        if chunked:
            decoded = self._decode_chunked_body(body_start)
            if decoded is None:
                return None
            body, consumed = decoded
            del buffer[:consumed]
        else:
            if len(buffer) < body_start + content_length:
                return None
            body = bytes(buffer[body_start : body_start + content_length])
            del buffer[: body_start + content_length]
        path = target.split("?", 1)[0]
        return _Request(method, path, body, keep_alive)

    def _decode_chunked_body(self, start: int) -> tuple[bytes, int] | None:
        """Decode a chunked request body; ``None`` while it is incomplete."""
        buffer = self._buffer
        pieces: list[bytes] = []
        position = start
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size_text = bytes(buffer[position:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise _BadRequest("malformed chunk size") from exc
            data_start = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return None
                return b"".join(pieces), trailer_end + 4
            if len(buffer) < data_start + size + 2:
                return None
            pieces.append(bytes(buffer[data_start : data_start + size]))
            position = data_start + size + 2

    def _drain_fast(self) -> None:
        """Answer queued requests synchronously until one needs to wait."""
        while self._queue and not self._closed:
            request = self._queue[0]
            immediate = self._immediate_response(request)
            if immediate is None:
                self._worker = asyncio.get_running_loop().create_task(self._drain_slow())
                return
            self._queue.popleft()
            self._write(immediate, request.keep_alive)

    async def _drain_slow(self) -> None:
        try:
            while self._queue and not self._closed:
                request = self._queue.popleft()
                immediate = self._immediate_response(request)
                if immediate is not None:
                    self._write(immediate, request.keep_alive)
                else:
                    await self._answer_chat_with_waits(request)
        finally:
            self._worker = None

    def _write(self, data: bytes, keep_alive: bool) -> None:
        if self._transport is None or self._closed:
            return
        self._transport.write(data)
        if not keep_alive:
            self._transport.close()
            self._closed = True

    def _immediate_response(self, request: _Request) -> bytes | None:
        """The whole response when it needs no waiting, else ``None``."""
        if request.method == "BAD":
            return _error("400 Bad Request", request.path, False)
        if request.method == "GET" and request.path in ("/v1/models", "/models"):
            data = [{"id": name, "object": "model", "created": 0, "owned_by": "fake"} for name in self._config.models]
            return _json_response("200 OK", {"object": "list", "data": data}, request.keep_alive, 0.0)
        if request.method == "GET" and request.path in ("/health", "/"):
            return _json_response("200 OK", {"status": "ok"}, request.keep_alive, 0.0)
        if request.path not in ("/v1/chat/completions", "/chat/completions"):
            return _error("404 Not Found", f"no route {request.method} {request.path}", request.keep_alive)
        if request.method != "POST":
            return _error("405 Method Not Allowed", "use POST", request.keep_alive)
        try:
            plan = _CompletionPlan(request.body, self._config)
        except ValueError as exc:
            return _error("400 Bad Request", str(exc), request.keep_alive)
        if self._config.delay_ms > 0 or (plan.stream and self._config.chunk_delay_ms > 0):
            return None
        if plan.stream:
            return self._stream_head(plan, request.keep_alive) + b"".join(self._stream_events(plan))
        return _json_response("200 OK", plan.completion(), request.keep_alive, 0.0)

    def _provider_ms(self, plan: _CompletionPlan) -> float:
        config = self._config
        if plan.stream:
            return config.delay_ms + config.chunk_delay_ms * plan.chunks
        return config.delay_ms

    def _stream_head(self, plan: _CompletionPlan, keep_alive: bool) -> bytes:
        extra = [
            b"transfer-encoding: chunked",
            b"cache-control: no-cache",
            b"x-fake-provider-ms: " + f"{self._provider_ms(plan):.3f}".encode(),
        ]
        return _response_head("200 OK", b"text/event-stream; charset=utf-8", extra, keep_alive)

    @staticmethod
    def _stream_events(plan: _CompletionPlan) -> list[bytes]:
        events = [_sse(plan.chunk({"role": "assistant", "content": ""}, None))]
        contents = [_sse(plan.chunk({"content": word}, None)) for word in _WORDS[: plan.chunks]]
        events.extend(contents[index % len(contents)] for index in range(plan.chunks))
        events.append(_sse(plan.chunk({}, "stop")))
        if plan.include_usage:
            events.append(_sse(plan.usage_chunk()))
        events.append(_chunked(b"data: [DONE]\n\n"))
        events.append(b"0\r\n\r\n")
        return events

    async def _answer_chat_with_waits(self, request: _Request) -> None:
        plan = _CompletionPlan(request.body, self._config)
        config = self._config
        if config.delay_ms > 0:
            await asyncio.sleep(config.delay_ms / 1000)
        if not plan.stream:
            response = _json_response("200 OK", plan.completion(), request.keep_alive, config.delay_ms)
            self._write(response, request.keep_alive)
            return
        events = self._stream_events(plan)
        # Role chunk together with the head: the first byte leaves after the configured delay.
        self._write(self._stream_head(plan, request.keep_alive) + events[0], True)
        gap = config.chunk_delay_ms / 1000
        for event in events[1:-1]:
            if gap > 0:
                await asyncio.sleep(gap)
            self._write(event, True)
        self._write(events[-1], request.keep_alive)


async def start_fake_provider(
    config: FakeProviderConfig, host: str = "127.0.0.1", port: int = 0
) -> tuple[asyncio.Server, int]:
    """Start serving on the running loop; returns the server and the bound port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: FakeProviderProtocol(config), host, port, reuse_address=True, backlog=1024
    )
    bound_port = server.sockets[0].getsockname()[1]
    return server, bound_port


async def _serve_forever(config: FakeProviderConfig, host: str, port: int, ready_line: bool) -> None:
    server, bound = await start_fake_provider(config, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if ready_line:
        print(f"fake-provider listening on http://{host}:{bound}/v1", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fake_provider", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="wait before the first byte of each answer")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream (max_tokens overrides)")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="wait between stream chunks")
    parser.add_argument("--models", default="bench-model", help="comma-separated names for GET /v1/models")
    parser.add_argument("--quiet", action="store_true", help="do not print the listening line")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    config = FakeProviderConfig(
        delay_ms=args.delay_ms,
        chunks=args.chunks,
        chunk_delay_ms=args.chunk_delay_ms,
        models=tuple(name for name in args.models.split(",") if name),
    )
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency, asyncio still works without it
        runner = asyncio.run
    runner(_serve_forever(config, args.host, args.port, not args.quiet))


if __name__ == "__main__":
    main()
