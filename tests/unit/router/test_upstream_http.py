"""The provider HTTP seam against a scripted HTTP server on loopback.

Each test gives the server a script (what to answer, when to fall silent, when to
hang up) and checks what the pool reports: the answer as sent, or the failure in
the seam's own terms, on which the router's retry and error rules depend.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from switchboard_router.catalog.config import parse_catalog
from switchboard_router.catalog.probe import drop_unreachable
from switchboard_router.deployment import Timeouts
from switchboard_router.providers.base import UpstreamRequest
from switchboard_router.upstream_env import tls_context
from switchboard_router.upstream_http import CallTimeout, ConnectTimeout, HttpPool, ReadTimeout, TransportError
from tests.fakes.tls import Authority, make_authority
from tests.fakes.unanswered import unanswered_port as silent_port

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


@dataclass
class Server:
    """A loopback HTTP/1.1 server running ``script`` for every request; records what it saw."""

    script: Script
    port: int = 0
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)
    connections: int = 0
    #: Set when a client hung up while the script still had more to say.
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)

    async def read_request(self, reader: asyncio.StreamReader) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        self.requests.append((head, await reader.readexactly(length)))
        return True

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    await self.read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                await self.script(reader, writer, self)
        except asyncio.CancelledError:
            return  # the test is over
        finally:
            writer.close()

    def url(self, path: str = "/v1/chat/completions", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(script: Script, tls: ssl.SSLContext | None = None) -> Server:
        server = Server(script)
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
        server.port = listener.sockets[0].getsockname()[1]
        servers.append(listener)
        return server

    yield start
    for listener in servers:
        listener.close()


@contextlib.asynccontextmanager
async def pool_of(timeouts: Timeouts, connections: int) -> AsyncIterator[HttpPool]:
    """A pool closed when the block ends, whatever happens in it."""
    pool = HttpPool(timeouts, connections)
    try:
        yield pool
    finally:
        await pool.aclose()


@pytest.fixture
async def pool() -> AsyncIterator[HttpPool]:
    async with pool_of(Timeouts(connect=0.3, first_byte=0.3, total=5, stream_idle=5), 10) as pool:
        yield pool


def post(url: str, body: bytes = b'{"model":"m"}', **headers: str) -> UpstreamRequest:
    return UpstreamRequest("POST", url, {"authorization": "Bearer sk-x", **headers}, body)


def answer(status: str, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def test_the_body_goes_out_as_is_and_the_answer_comes_back_with_lower_case_headers(
        serve: Callable[[Script], Awaitable[Server]], pool: HttpPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        writer.write(answer("429 Too Many Requests", b'{"error":{}}', "Retry-After: 3", "X-Dup: a", "X-Dup: b",
                            "Set-Cookie: session=1"))
        await writer.drain()

    server = await serve(script)
    url = server.url().replace("127.0.0.1", "localhost")  # a host name: cookie jars ignore cookies of IPs
    body = b'{"messages":[{"role":"user","content":"h\xc3\xa9"}]}'
    first = await pool.fetch(post(url, body))
    assert (first.status, first.body) == (429, b'{"error":{}}')
    headers = first.headers()
    assert headers["retry-after"] == "3" and headers["x-dup"] == "a, b"
    await pool.fetch(post(url, body))

    head, sent = server.requests[0]
    assert sent == body
    lines = head.decode().lower().split("\r\n")
    assert "authorization: bearer sk-x" in lines
    assert not any(line.startswith("content-type:") for line in lines), "no content type the adapter did not set"
    assert not any(line.startswith("cookie:") for line in server.requests[1][0].decode().lower().split("\r\n"))
    assert server.connections == 1, "the second call reused the pooled connection"


async def test_the_url_goes_out_byte_for_byte(serve: Callable[[Script], Awaitable[Server]], pool: HttpPool) -> None:
    """A signed request (Bedrock's SigV4) must keep its escapes: ``%3A`` is not turned back into ``:``."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        writer.write(answer("200 OK", b"{}"))
        await writer.drain()

    server = await serve(script)
    await pool.fetch(post(server.url("/model/anthropic.claude-v2%3A1/converse?x=a%2Fb")))
    await pool.fetch(post(server.url("/v1/with space")))
    assert server.requests[0][0].startswith(b"POST /model/anthropic.claude-v2%3A1/converse?x=a%2Fb HTTP/1.1")
    assert server.requests[1][0].startswith(b"POST /v1/with%20space HTTP/1.1")


async def test_a_redirect_is_the_answer_not_followed(serve: Callable[[Script], Awaitable[Server]],
                                                     pool: HttpPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        writer.write(answer("302 Found", b"", f"Location: {server.url('/elsewhere')}"))
        await writer.drain()

    server = await serve(script)
    assert (await pool.fetch(post(server.url()))).status == 302
    assert len(server.requests) == 1


async def test_a_refused_connection_is_a_transport_error(pool: HttpPool) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError):
        await pool.fetch(post(f"http://127.0.0.1:{port}/v1/chat/completions"))
    with pytest.raises(TransportError):
        await pool.open_stream(post(f"http://127.0.0.1:{port}/v1/chat/completions"))


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new SYNs, so connecting hangs."""
    with silent_port() as port:
        yield port


async def test_no_connection_within_the_connect_timeout_is_a_connect_timeout(unanswered_port: int,
                                                                            pool: HttpPool) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConnectTimeout):
        await pool.fetch(post(f"http://127.0.0.1:{unanswered_port}/v1/chat/completions"))
    assert 0.3 <= loop.time() - started < 2


async def test_silence_before_the_answer_is_a_read_timeout_for_calls_and_streams(
        serve: Callable[[Script], Awaitable[Server]], pool: HttpPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await asyncio.sleep(2)

    server = await serve(script)
    with pytest.raises(ReadTimeout):
        await pool.fetch(post(server.url()))
    with pytest.raises(ReadTimeout):
        await pool.open_stream(post(server.url()))


async def chunked(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    await writer.drain()


STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


async def test_a_stream_delivers_chunks_as_they_come_and_leaves_silences_to_the_caller(
        serve: Callable[[Script], Awaitable[Server]], pool: HttpPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        if len(server.requests) > 1:
            writer.write(answer("200 OK", b"{}"))
            await writer.drain()
            return
        writer.write(STREAM_HEAD)
        await chunked(writer, b"data: one\n\n")
        await asyncio.sleep(0.6)  # twice first_byte: the stream pump, not the pool, times silences
        await chunked(writer, b"data: two\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    server = await serve(script)
    stream = await pool.open_stream(post(server.url()))
    try:
        assert stream.status == 200 and stream.headers()["content-type"] == "text/event-stream"
        assert await stream.next_chunk() == b"data: one\n\n"
        assert await stream.next_chunk() == b"data: two\n\n"
        assert await stream.next_chunk() == b""
    finally:
        stream.close()
    await pool.fetch(post(server.url()))
    assert server.connections == 1, "a stream read to its end gives its connection back to the pool"


async def test_closing_a_stream_before_its_end_hangs_up_on_the_provider(
        serve: Callable[[Script], Awaitable[Server]], pool: HttpPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        writer.write(STREAM_HEAD)
        await chunked(writer, b"data: one\n\n")
        if await reader.read(1) == b"":
            server.hung_up.set()

    server = await serve(script)
    stream = await pool.open_stream(post(server.url()))
    assert await stream.next_chunk() == b"data: one\n\n"
    stream.close()
    await asyncio.wait_for(server.hung_up.wait(), 2)


async def test_a_stream_cut_mid_way_is_a_transport_error(serve: Callable[[Script], Awaitable[Server]],
                                                         pool: HttpPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        writer.write(STREAM_HEAD)
        await chunked(writer, b"data: one\n\n")
        writer.transport.abort()

    server = await serve(script)
    stream = await pool.open_stream(post(server.url()))
    try:
        chunks = [await stream.next_chunk()]
        with pytest.raises(TransportError):
            while chunks[-1]:
                chunks.append(await stream.next_chunk())
    finally:
        stream.close()
    assert chunks[0] == b"data: one\n\n"


async def test_deployments_only_if_reachable_are_dropped_when_their_server_does_not_answer(
        serve: Callable[[Script], Awaitable[Server]]) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        writer.write(answer("200 OK", b'{"data":[]}'))
        await writer.drain()

    server = await serve(script)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    catalog = parse_catalog({"models": [{"name": "local", "deployments": [
        {"id": "up", "provider": "ollama", "model": "m", "api_base": f"http://127.0.0.1:{server.port}/v1",
         "only_if_reachable": True},
        {"id": "down", "provider": "ollama", "model": "m", "api_base": f"http://127.0.0.1:{closed}/v1",
         "only_if_reachable": True},
    ]}]})
    probed = await drop_unreachable(catalog)
    entry = probed.models["local"]
    assert [d.id for d in entry.deployments] == ["up"]
    assert [dep for dep, _ in entry.unavailable] == ["down"]
    assert server.requests[0][0].startswith(b"GET /v1/models ")


async def test_the_proxy_of_the_environment_is_used_with_its_credentials(
        serve: Callable[[Script], Awaitable[Server]], monkeypatch: pytest.MonkeyPatch) -> None:
    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        writer.write(answer("200 OK", b"{}"))
        await writer.drain()

    async def tunnel_refused(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        writer.write(answer("403 Forbidden", b""))
        await writer.drain()

    server, tunnel = await serve(proxy), await serve(tunnel_refused)
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://me:p%40ss@127.0.0.1:{server.port}")
    monkeypatch.setenv("HTTPS_PROXY", f"http://me:p%40ss@127.0.0.1:{tunnel.port}")
    monkeypatch.setenv("NO_PROXY", "direct.invalid")
    pool = HttpPool(Timeouts(connect=1, first_byte=1), 10)
    try:
        assert (await pool.fetch(post("http://provider.invalid/v1/chat/completions"))).status == 200
        with pytest.raises(TransportError):  # NO_PROXY: straight to a host that does not exist
            await pool.fetch(post("http://direct.invalid/v1/chat/completions"))
        with pytest.raises(TransportError):  # the proxy refuses the tunnel
            await pool.fetch(post("https://provider.invalid/v1/chat/completions"))
    finally:
        await pool.aclose()
    head = server.requests[0][0].decode()
    assert head.startswith("POST http://provider.invalid/v1/chat/completions HTTP/1.1")
    assert "\r\nProxy-Authorization: Basic bWU6cEBzcw==\r\n" in head  # me:p@ss
    assert len(server.requests) == 1
    connect = tunnel.requests[0][0].decode()
    assert connect.startswith("CONNECT provider.invalid:443 HTTP/1.1")
    assert "\r\nProxy-Authorization: Basic bWU6cEBzcw==\r\n" in connect


def test_tls_is_verified_against_certifi_or_the_bundle_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    import certifi

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    tls_context.cache_clear()
    try:
        context = tls_context()
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.cert_store_stats()["x509_ca"] > 50, "certifi's bundle is loaded"
        monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
        tls_context.cache_clear()
        with pytest.raises(FileNotFoundError):
            tls_context()
        monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
        tls_context.cache_clear()
        assert tls_context().cert_store_stats()["x509_ca"] > 50
    finally:
        tls_context.cache_clear()


@pytest.fixture
def authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Authority]:
    """A private CA the pool trusts through ``SSL_CERT_FILE``, as an operator's would be."""
    made = make_authority(tmp_path / "tls")
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(made.ca_file))
    tls_context.cache_clear()
    yield made
    tls_context.cache_clear()


async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
    writer.write(answer("200 OK", b'{"ok":true}'))
    await writer.drain()


async def test_https_is_verified_against_the_trusted_authority(
        serve: Callable[..., Awaitable[Server]], authority: Authority) -> None:
    server = await serve(ok, authority.server_context())
    pool = HttpPool(Timeouts(connect=2, first_byte=2), 10)
    try:
        first = await pool.fetch(post(server.url(scheme="https", host="localhost")))
        second = await pool.fetch(post(server.url(scheme="https", host="localhost")))
        assert (first.status, first.body, second.body) == (200, b'{"ok":true}', b'{"ok":true}')
        assert server.connections == 1, "the TLS connection is kept alive"
    finally:
        await pool.aclose()
    tls_context.cache_clear()
    untrusting = HttpPool(Timeouts(connect=2, first_byte=2), 10)
    try:
        with pytest.MonkeyPatch.context() as env:
            env.delenv("SSL_CERT_FILE")
            tls_context.cache_clear()
            with pytest.raises(TransportError, match="certificate was not accepted"):
                await untrusting.fetch(post(server.url(scheme="https", host="localhost")))
    finally:
        await untrusting.aclose()


async def test_https_through_the_proxy_goes_through_a_tunnel(
        serve: Callable[..., Awaitable[Server]], authority: Authority, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = await serve(ok, authority.server_context())

    async def tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", provider.port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True)

    proxy = await serve(tunnel)
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://me:secret@127.0.0.1:{proxy.port}")
    pool = HttpPool(Timeouts(connect=2, first_byte=2), 10)
    try:
        first = await pool.fetch(post(provider.url(scheme="https", host="localhost")))
        second = await pool.fetch(post(provider.url(scheme="https", host="localhost")))
    finally:
        await pool.aclose()
    assert (first.status, first.body, second.body) == (200, b'{"ok":true}', b'{"ok":true}')
    connect = proxy.requests[0][0].decode()
    assert connect.startswith(f"CONNECT localhost:{provider.port} HTTP/1.1\r\n")
    assert "\r\nProxy-Authorization: Basic bWU6c2VjcmV0\r\n" in connect  # me:secret
    assert proxy.connections == 1 and len(provider.requests) == 2, "one tunnel carried both calls"
    assert b"proxy-authorization" not in provider.requests[0][0].lower(), "credentials stay with the proxy"


async def test_a_compressed_answer_arrives_decoded(serve: Callable[[Script], Awaitable[Server]],
                                                   pool: HttpPool) -> None:
    events = b"data: one\n\n" * 50 + b"data: [DONE]\n\n"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        if len(server.requests) == 1:
            writer.write(answer("200 OK", gzip.compress(b'{"id":"x"}'), "Content-Encoding: gzip"))
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n")
            packed = zlib.compress(events)
            for start in range(0, len(packed), 7):
                await chunked(writer, packed[start:start + 7])
            writer.write(b"0\r\n\r\n")
        await writer.drain()

    server = await serve(script)
    assert (await pool.fetch(post(server.url()))).body == b'{"id":"x"}'
    stream = await pool.open_stream(post(server.url()))
    try:
        assert await stream.read() == events
    finally:
        stream.close()
    assert b"\r\naccept-encoding: gzip, deflate\r\n" in server.requests[0][0].lower()


#: What a provider's answer carries besides its framing (OpenAI's: rate limits, ids, the CDN's).
PROVIDER_HEADERS = (
    "Date: Mon, 07 Dec 2026 03:00:00 GMT", "Content-Type: application/json", "openai-version: 2020-10-01",
    "openai-processing-ms: 412", "x-ratelimit-limit-requests: 10000", "x-ratelimit-remaining-requests: 9999",
    "x-ratelimit-reset-requests: 6ms", "x-ratelimit-limit-tokens: 2000000", "x-ratelimit-remaining-tokens: 1999950",
    "x-ratelimit-reset-tokens: 1ms", "X-Request-Id: req_abc", "Strict-Transport-Security: max-age=31536000",
    "CF-Cache-Status: DYNAMIC", "Server: cloudflare", "Set-Cookie: __cf_bm=x; path=/", "Set-Cookie: _cfuvid=y; path=/",
    "CF-RAY: 8e1-SJC")


async def test_framing_headers_are_found_in_any_case_among_a_providers_others(
        serve: Callable[[Script], Awaitable[Server]], pool: HttpPool) -> None:
    """The coding, the length and the chunked framing are read whatever the case of their names, among the score
    of headers a real provider sends; every header is still there to read, repeated ones joined."""
    events = b"data: one\n\n" * 20 + b"data: [DONE]\n\n"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        packed = gzip.compress(b'{"id":"x"}')
        if len(server.requests) == 1:
            head = ["HTTP/1.1 200 OK", *PROVIDER_HEADERS, "CONTENT-encoding: gzip", f"content-LENGTH: {len(packed)}"]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + packed)
        else:
            head = ["HTTP/1.1 200 OK", *PROVIDER_HEADERS, "Transfer-ENCODING: chunked"]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
            for start in range(0, len(events), 40):
                await chunked(writer, events[start:start + 40])
            writer.write(b"0\r\n\r\n")
        await writer.drain()

    server = await serve(script)
    whole = await pool.fetch(post(server.url()))
    assert whole.body == b'{"id":"x"}'
    headers = whole.headers()
    assert headers["x-ratelimit-remaining-tokens"] == "1999950" and headers["content-encoding"] == "gzip"
    assert headers["set-cookie"] == "__cf_bm=x; path=/, _cfuvid=y; path=/"
    stream = await pool.open_stream(post(server.url()))
    try:
        assert await stream.read() == events
    finally:
        stream.close()
    assert server.connections == 1, "both answers were framed: the connection was kept"


async def test_an_answer_that_ends_with_its_connection_is_read_whole(
        serve: Callable[[Script], Awaitable[Server]], pool: HttpPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await asyncio.sleep(0)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"whole\":")
        await writer.drain()
        writer.write(b"true}")
        writer.close()

    server = await serve(script)
    first = await pool.fetch(post(server.url()))
    assert (first.status, first.body, first.headers()["content-type"]) == (200, b'{"whole":true}', "application/json")
    await pool.fetch(post(server.url()))
    assert server.connections == 2, "a connection whose end ended the answer is not reused"


async def test_a_connection_the_provider_closed_while_idle_is_not_lent_again(
        serve: Callable[[Script], Awaitable[Server]], pool: HttpPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        writer.write(answer("200 OK", b"{}"))
        await writer.drain()
        writer.close()  # no "Connection: close": the pool learns it from the socket

    server = await serve(script)
    for _ in range(3):
        assert (await pool.fetch(post(server.url()))).status == 200
        await asyncio.sleep(0.05)
    assert server.connections == 3


@pytest.mark.parametrize(("connect", "within", "expected"), [(0.3, None, ConnectTimeout), (5, 0.2, CallTimeout)],
                         ids=["the connect timeout", "the call's own time limit, sooner"])
async def test_calls_beyond_the_connection_limit_wait_for_a_connection_within_the_connect_timeout(
        serve: Callable[[Script], Awaitable[Server]], connect: float, within: float | None,
        expected: type[Exception]) -> None:
    release = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await release.wait()
        writer.write(answer("200 OK", b"{}"))
        await writer.drain()

    server = await serve(script)
    async with pool_of(Timeouts(connect=connect, first_byte=5), 1) as pool:
        first = asyncio.ensure_future(pool.fetch(post(server.url())))
        await asyncio.sleep(0.05)
        with pytest.raises(expected):  # the only connection stays lent past the limit that comes first
            await pool.fetch(post(server.url()), within=within)
        second = asyncio.ensure_future(pool.fetch(post(server.url())))
        await asyncio.sleep(0.05)
        release.set()
        assert [a.status for a in await asyncio.gather(first, second)] == [200, 200]
    assert server.connections == 1, "the waiting call took the connection the first gave back"


async def test_an_answer_that_trickles_past_the_calls_time_limit_is_a_call_timeout(
        serve: Callable[[Script], Awaitable[Server]]) -> None:
    """Never silent for long (so never a read timeout), never done: the call's own limit ends it, hangs up on the
    provider and gives the connection's slot back."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        if len(server.requests) > 1:
            writer.write(answer("200 OK", b"{}"))
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(100):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)
                if reader.at_eof():
                    server.hung_up.set()
                    return

    server = await serve(script)
    async with pool_of(Timeouts(connect=1, first_byte=0.2), 1) as pool:
        started = asyncio.get_running_loop().time()
        with pytest.raises(CallTimeout):
            await pool.fetch(post(server.url()), within=0.4)
        assert asyncio.get_running_loop().time() - started < 2.0  # its own limit, not the trickle's end
        await asyncio.wait_for(server.hung_up.wait(), 5)
        assert (await pool.fetch(post(server.url()), within=5)).status == 200, "the one connection slot was given back"


async def test_a_call_given_up_mid_answer_hangs_up_and_leaves_the_pool_whole(
        serve: Callable[[Script], Awaitable[Server]]) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        if len(server.requests) == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
            await writer.drain()
            if await reader.read(1) == b"":
                server.hung_up.set()
            return
        writer.write(answer("200 OK", b"{}"))
        await writer.drain()

    server = await serve(script)
    async with pool_of(Timeouts(connect=1, first_byte=5), 1) as pool:
        call = asyncio.ensure_future(pool.fetch(post(server.url())))
        await asyncio.sleep(0.1)
        call.cancel()
        await asyncio.wait_for(server.hung_up.wait(), 2)
        assert (await pool.fetch(post(server.url()))).status == 200, "the one connection slot was given back"


async def test_a_malformed_answer_or_header_is_a_transport_error(
        serve: Callable[[Script], Awaitable[Server]], pool: HttpPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    server = await serve(script)
    with pytest.raises(TransportError, match="not valid HTTP"):
        await pool.fetch(post(server.url()))
    with pytest.raises(TransportError, match="line break"):
        await pool.fetch(post(server.url(), **{"x-injected": "a\r\nx-evil: 1"}))


async def test_bytes_after_an_answer_close_its_connection(serve: Callable[[Script], Awaitable[Server]],
                                                         pool: HttpPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        extra = answer("200 OK", b"stray") if len(server.requests) == 1 else b""
        writer.write(answer("200 OK", b"{}") + extra)
        await writer.drain()

    server = await serve(script)
    assert (await pool.fetch(post(server.url()))).body == b"{}"
    assert (await pool.fetch(post(server.url()))).body == b"{}"
    assert server.connections == 2, "the connection that carried stray bytes was not lent again"


async def test_an_address_of_the_provider_that_does_not_answer_costs_a_quarter_second_not_the_connect_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider's name often resolves to several addresses (IPv6 and IPv4), and one family may be unroutable from
    where the router runs. The next address is tried 250 ms after the last, not once it has timed out (RFC 8305)."""
    with silent_port() as port:  # 127.0.0.1:port never answers
        server = Server(ok)
        listener = await asyncio.start_server(server.handle, "127.0.0.2", port)  # 127.0.0.2:port does
        loop = asyncio.get_running_loop()
        resolve = loop.getaddrinfo

        async def two_addresses(host: str, port_: int, **options: object) -> list[object]:
            if host != "provider.test":
                return await resolve(host, port_, **options)  # type: ignore[arg-type]
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
                    for address in ("127.0.0.1", "127.0.0.2")]

        monkeypatch.setattr(loop, "getaddrinfo", two_addresses)  # the name's DNS answer
        pool = HttpPool(Timeouts(connect=5, first_byte=5), 4)
        try:
            started = loop.time()
            assert (await pool.fetch(post(f"http://provider.test:{port}/v1/chat/completions"))).status == 200
            assert loop.time() - started < 2, "the second address was tried without waiting out the first"
            assert server.requests[0][0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: provider.test:")
        finally:
            await pool.aclose()
            listener.close()


async def test_a_default_port_named_in_the_url_is_not_in_the_host_header(
        serve: Callable[[Script], Awaitable[Server]], pool: HttpPool, monkeypatch: pytest.MonkeyPatch) -> None:
    """SigV4 signs the host without a default port (botocore's canonical host): the request must carry the same."""
    server = await serve(ok)
    for name in ("http_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")  # the proxy sees the request as sent
    proxied = HttpPool(Timeouts(connect=1, first_byte=1), 2)
    try:
        await proxied.fetch(post("http://provider.invalid:80/model/x%3A1/converse"))
    finally:
        await proxied.aclose()
    head = server.requests[0][0].decode()
    assert head.startswith("POST http://provider.invalid/model/x%3A1/converse HTTP/1.1\r\n")
    assert "\r\nHost: provider.invalid\r\n" in head
