"""A small, cheap load client that measures time to first token (TTFT) of SSE streams.

wrk records only whole-response latency, so streams need this client: N workers, each with one
keep-alive HTTP/1.1 connection over raw asyncio streams (uvloop), send the same request in a
loop for a fixed duration and record, per request, the time to the first SSE event that carries
content (TTFT) and the time to the end of the response (total). Non-streaming responses work
too, which makes it the fallback load generator when wrk is missing.

With ``--conversation cursor-agent`` the body file is not sent: each worker replays agent
conversations turn by turn (``benchmarks.agent_conversation``), a new conversation after the
last turn, each with an id no other worker or run uses.

It runs as its own process so its CPU is never counted as the gateway's:
``python -m benchmarks.stream_client --url http://127.0.0.1:4000/v1/chat/completions
--body-file body.json --api-key sk-... --concurrency 16 --duration 3`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

from benchmarks.agent_conversation import agent_turn_bodies
from benchmarks.scenarios import AGENT_LAST_TURN_BYTES, AGENT_TURNS, CONVERSATION_KINDS
from benchmarks.stats import summarize_ms


@dataclass(slots=True)
class RequestSample:
    """What one request cost, in seconds from the first byte sent."""

    status: int
    total_s: float
    ttft_s: float | None
    events: int
    overhead_ms: float | None
    #: Why a 2xx answer still failed: an error event inside the stream, a stream that ended
    #: without ``data: [DONE]``, or a stream that never carried content.
    failure: str | None = None
    #: The answer carried ``Connection: close``: the next request needs a new connection.
    closing: bool = False


@dataclass(slots=True)
class LoadResult:
    """Every sample of one load run, plus the failures that produced no sample."""

    duration_s: float
    samples: list[RequestSample] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def add_error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def summary(self) -> dict[str, object]:
        """JSON-ready numbers: request rate, latency and TTFT percentiles in milliseconds."""
        ok = [sample for sample in self.samples if 200 <= sample.status < 300 and sample.failure is None]
        statuses: dict[str, int] = {}
        errors = dict(self.errors)
        for sample in self.samples:
            statuses[str(sample.status)] = statuses.get(str(sample.status), 0) + 1
            if sample.failure is not None:
                errors[sample.failure] = errors.get(sample.failure, 0) + 1
        ttfts = [sample.ttft_s * 1000 for sample in ok if sample.ttft_s is not None]
        overheads = [sample.overhead_ms for sample in ok if sample.overhead_ms is not None]
        return {
            "requests": len(self.samples),
            "ok": len(ok),
            "duration_s": round(self.duration_s, 4),
            "requests_per_s": round(len(ok) / self.duration_s, 2) if self.duration_s > 0 else 0.0,
            "latency_ms": summarize_ms([sample.total_s * 1000 for sample in ok]),
            "ttft_ms": summarize_ms(ttfts),
            "overhead_header_ms": summarize_ms(overheads),
            "events_mean": round(sum(sample.events for sample in ok) / len(ok), 2) if ok else 0.0,
            "statuses": statuses,
            "errors": errors,
            # Every request that did not succeed: bad status, broken stream, or no answer at all.
            "failures": len(self.samples) - len(ok) + sum(self.errors.values()),
        }


class _ResponseReader:
    """Reads one HTTP/1.1 response off a keep-alive connection and times its first token."""

    def __init__(self, reader: asyncio.StreamReader, overhead_header: bytes | None) -> None:
        self._reader = reader
        self._overhead_header = overhead_header

    async def read(self, started: float) -> RequestSample:
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        content_length = -1
        chunked = False
        event_stream = False
        closing = False
        overhead_ms: float | None = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                content_length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"content-type" and b"text/event-stream" in value.lower():
                event_stream = True
            elif name == b"connection" and b"close" in value.lower():
                closing = True
            elif self._overhead_header is not None and name == self._overhead_header:
                try:
                    overhead_ms = float(value)
                except ValueError:
                    overhead_ms = None
        tracker = _FirstTokenTracker(started)
        if chunked:
            await self._read_chunked(tracker)
        elif content_length >= 0:
            tracker.feed(await self._reader.readexactly(content_length))
        else:
            raise ConnectionError("response without length on a keep-alive connection")
        total = time.perf_counter() - started
        failure = None
        if event_stream and 200 <= status < 300:
            if tracker.error_seen:
                failure = "stream_error_event"
            elif not tracker.done_seen:
                failure = "stream_without_done"
            elif tracker.ttft_s is None:
                failure = "stream_without_content"
        return RequestSample(status, total, tracker.ttft_s, tracker.events, overhead_ms, failure, closing)

    async def _read_chunked(self, tracker: _FirstTokenTracker) -> None:
        reader = self._reader
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                # Trailers (normally none) end with an empty line.
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return
            data = await reader.readexactly(size + 2)
            tracker.feed(data[:-2])


class _FirstTokenTracker:
    """Finds the first SSE event whose delta carries content; counts events after that cheaply.

    Events are parsed with orjson only until the first token is seen; afterwards only ``data:``
    prefixes are counted and the bytes are scanned for ``[DONE]`` and error events, so the
    client spends little CPU on long streams.
    """

    __slots__ = ("_pending", "_started", "_tail", "done_seen", "error_seen", "events", "ttft_s")

    def __init__(self, started: float) -> None:
        self._started = started
        self._pending = b""
        self._tail = b""
        self.ttft_s: float | None = None
        self.events = 0
        self.done_seen = False
        self.error_seen = False

    def feed(self, data: bytes) -> None:
        window = self._tail + data
        if b"[DONE]" in window:
            self.done_seen = True
        if b'{"error"' in window or b"event: error" in window:
            self.error_seen = True
        self._tail = window[-24:]
        if self.ttft_s is not None:
            self.events += data.count(b"data:")
            return
        self._pending += data
        *complete, self._pending = self._pending.replace(b"\r\n", b"\n").split(b"\n\n")
        for raw_event in complete:
            for line in raw_event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                self.events += 1
                if self.ttft_s is None and _carries_content(line[5:].strip()):
                    self.ttft_s = time.perf_counter() - self._started


def _carries_content(payload: bytes) -> bool:
    if not payload or payload == b"[DONE]":
        return False
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(event, dict):
        return False
    choices = event.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")):
                return True
    return False


def _target(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"only plain http:// URLs are supported, got {url!r}")
    return parts.hostname, parts.port or 80, parts.path or "/"


def _request_bytes(host: str, port: int, path: str, body: bytes, api_key: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        "Accept: application/json, text/event-stream\r\n"
        f"Authorization: Bearer {api_key}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    ).encode()
    return head + body


def _build_request(url: str, body: bytes, api_key: str) -> tuple[str, int, bytes]:
    host, port, path = _target(url)
    return host, port, _request_bytes(host, port, path, body, api_key)


def conversation_requests(url: str, api_key: str, kind: str, model: str, worker: str) -> Iterator[bytes]:
    """Endless requests of agent conversations, turn by turn; conversation ids start with ``worker``."""
    if kind not in CONVERSATION_KINDS:
        raise ValueError(f"unknown conversation kind {kind!r}; choose from {', '.join(CONVERSATION_KINDS)}")
    host, port, path = _target(url)
    for number in itertools.count():
        for body in agent_turn_bodies(model, f"{worker}-{number}", AGENT_TURNS, AGENT_LAST_TURN_BYTES):
            yield _request_bytes(host, port, path, body, api_key)


async def _worker(
    host: str, port: int, requests: Iterator[bytes], deadline: float, result: LoadResult,
    overhead_header: bytes | None,
) -> None:
    writer: asyncio.StreamWriter | None = None
    response: _ResponseReader | None = None
    while time.perf_counter() < deadline:
        request = next(requests)
        try:
            if writer is None or response is None:
                reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
                response = _ResponseReader(reader, overhead_header)
            started = time.perf_counter()
            writer.write(request)
            sample = await asyncio.wait_for(response.read(started), timeout=max(deadline - started, 0) + 30)
            result.samples.append(sample)
            if sample.closing:  # the server said this answer ends the connection (e.g. its per-connection limit)
                await _close(writer)
                writer, response = None, None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            result.add_error(type(exc).__name__)
            await _close(writer)
            writer, response = None, None
            await asyncio.sleep(0.01)
        except TimeoutError:
            result.add_error("timeout")
            await _close(writer)
            writer, response = None, None
    await _close(writer)


async def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is None:
        return
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass
    return


async def run_load(
    url: str,
    body: bytes,
    api_key: str,
    concurrency: int,
    duration_s: float,
    overhead_header: str | None = None,
    conversation: str | None = None,
    model: str = "",
) -> LoadResult:
    """Send ``body`` to ``url`` from ``concurrency`` keep-alive connections for ``duration_s``.

    With ``conversation`` (a kind of ``CONVERSATION_KINDS``) each connection sends the turns of
    fresh agent conversations for ``model`` instead of ``body``.
    """
    host, port, request = _build_request(url, body, api_key)
    run = secrets.token_hex(4)  # conversations of this run are new to the gateway
    streams = [
        conversation_requests(url, api_key, conversation, model, f"{run}-{worker}") if conversation
        else itertools.repeat(request)
        for worker in range(concurrency)
    ]
    header = overhead_header.lower().encode() if overhead_header else None
    started = time.perf_counter()
    deadline = started + duration_s
    result = LoadResult(duration_s=duration_s)
    await asyncio.gather(*(_worker(host, port, stream, deadline, result, header) for stream in streams))
    result.duration_s = time.perf_counter() - started
    return result


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream_client", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="http://host:port/v1/chat/completions")
    parser.add_argument("--body-file", required=True, help="file holding the JSON request body")
    parser.add_argument("--api-key", default="x")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument(
        "--overhead-header", default=None, help="response header to collect, e.g. x-switchboard-overhead-ms"
    )
    parser.add_argument("--conversation", default=None, choices=CONVERSATION_KINDS,
                        help="replay agent conversations turn by turn instead of sending the body file")
    parser.add_argument("--model", default="bench-model", help="model of the conversations' requests")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    with open(args.body_file, "rb") as handle:
        body = handle.read()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency, asyncio still works without it
        runner = asyncio.run
    result = runner(run_load(args.url, body, args.api_key, args.concurrency, args.duration, args.overhead_header,
                             conversation=args.conversation, model=args.model))
    sys.stdout.write(orjson.dumps(result.summary()).decode() + "\n")


if __name__ == "__main__":
    main()
