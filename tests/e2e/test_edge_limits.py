"""The facade's HTTP edge over raw sockets: header size, body size on every route, timeouts, requests per connection.

One gateway with short timeouts (one second each) and three requests per connection; the tests never measure
time, they only wait (with generous socket timeouts) for what the edge must do.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import fake_models
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway

HEADER_LIMIT = 16 * 1024
REQUESTS_PER_CONNECTION = 3
MAX_BODY = 20 * 1024 * 1024
ADMIN_BODY = 1024 * 1024
FORM_BODY = 256 * 1024


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("edge"), fake_models(fake_openai[1]), extra_env={
        "SWITCHBOARD_HTTP_MAX_HEADER_BYTES": str(HEADER_LIMIT),
        "SWITCHBOARD_HTTP_HEADER_TIMEOUT_SECONDS": "1",
        "SWITCHBOARD_HTTP_BODY_TIMEOUT_SECONDS": "1",
        "SWITCHBOARD_HTTP_IDLE_TIMEOUT_SECONDS": "1",
        "SWITCHBOARD_HTTP_MAX_REQUESTS_PER_CONNECTION": str(REQUESTS_PER_CONNECTION),
    })
    yield gw
    gw.stop()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    #: Whether the server closed the connection after this answer.
    closed: bool

    def json(self) -> dict[str, object]:
        return json.loads(self.body)  # type: ignore[no-any-return]


def connect(gw: Gateway) -> socket.socket:
    host, port = gw.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=15)


def send(sock: socket.socket, data: bytes) -> bool:
    """Sends what the server takes; False once it stopped reading (it closed the connection)."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def read_answer(sock: socket.socket) -> Answer:
    """One HTTP/1.1 answer with a Content-Length body, and whether the connection ended after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"the connection closed before an answer: {data!r}"
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        piece = sock.recv(65536)
        assert piece, "the connection closed inside the answer's body"
        rest += piece
    return Answer(status, headers, rest[:length], closed=headers.get("connection") == "close")


def ends(sock: socket.socket) -> bool:
    """Whether the server ends the connection (EOF or reset) without sending anything more."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def assert_openai_error(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer
    error = answer.json()["error"]
    assert isinstance(error, dict) and error["code"] == code, answer
    assert answer.headers.get("x-request-id", "").startswith("req_")


def assert_anthropic_error(answer: Answer, status: int) -> None:
    assert answer.status == status, answer
    body = answer.json()
    assert body["type"] == "error" and isinstance(body["error"], dict) and body["error"]["message"], body
    assert answer.headers["request-id"] == answer.headers["x-request-id"]


# -- request heads ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/key/generate", "/ui/login", "/health/liveness"])
def test_a_head_over_the_limit_gets_431_before_anything_else(edge: Gateway, path: str) -> None:
    with connect(edge) as sock:
        # No credential, and far more than the limit: the answer comes as soon as the limit is passed, before
        # authentication (which would answer 401) and without reading the rest of the header.
        send(sock, f"POST {path} HTTP/1.1\r\nHost: gateway\r\nX-Padding: ".encode() + b"a" * (4 * 1024 * 1024))
        answer = read_answer(sock)
        assert_openai_error(answer, 431, "request_headers_too_large")
        assert answer.closed and ends(sock)


def test_a_head_over_the_limit_on_the_anthropic_path_is_answered_in_its_dialect(edge: Gateway) -> None:
    many = "".join(f"X-Header-{i}: {'v' * 40}\r\n" for i in range(HEADER_LIMIT // 40))
    with connect(edge) as sock:
        send(sock, f"POST /v1/messages HTTP/1.1\r\nHost: gateway\r\n{many}\r\n".encode())
        answer = read_answer(sock)
        assert_anthropic_error(answer, 431)
        assert str(HEADER_LIMIT) in answer.json()["error"]["message"]  # type: ignore[index]


def test_a_head_under_the_limit_is_served(edge: Gateway) -> None:
    with connect(edge) as sock:
        send(sock, request("GET", "/health/liveness", {"X-Padding": "a" * (HEADER_LIMIT - 200)}))
        assert read_answer(sock).status == 200


# -- timeouts --------------------------------------------------------------------------------------------------


def test_a_half_sent_head_gets_408_and_the_connection_closes(edge: Gateway) -> None:
    with connect(edge) as sock:
        send(sock, b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bear")
        answer = read_answer(sock)
        assert_openai_error(answer, 408, "request_timeout")
        assert answer.closed and ends(sock)


def test_a_connection_that_sends_nothing_is_closed(edge: Gateway) -> None:
    with connect(edge) as sock:
        assert ends(sock)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/key/generate", "/ui/login"])
def test_a_half_sent_body_does_not_hold_the_connection(edge: Gateway, path: str) -> None:
    with connect(edge) as sock:
        send(sock, f"POST {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {edge.master_key}\r\n"
                   "Content-Length: 1000\r\nContent-Type: application/json\r\n\r\n{\"model\": ".encode())
        # Either the connection just ends, or the route answered without waiting for the body (the dashboard's
        # sign-in checks its CSRF cookie first) and the connection ends after that answer.
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        assert data == b"" or (data.startswith(b"HTTP/1.1 ") and ends(sock)), data[:200]


def test_an_idle_kept_alive_connection_is_closed(edge: Gateway) -> None:
    with connect(edge) as sock:
        send(sock, request("GET", "/health/liveness"))
        answer = read_answer(sock)
        assert answer.status == 200 and not answer.closed
        assert ends(sock)


def test_a_connection_carries_a_limited_number_of_requests(edge: Gateway) -> None:
    with connect(edge) as sock:
        answers = []
        for _ in range(REQUESTS_PER_CONNECTION):
            send(sock, request("GET", "/health/liveness"))
            answers.append(read_answer(sock))
        assert [a.status for a in answers] == [200] * REQUESTS_PER_CONNECTION
        assert [a.closed for a in answers] == [False] * (REQUESTS_PER_CONNECTION - 1) + [True]
        assert ends(sock)
    # Clients simply open another connection.
    assert httpx.get(f"{edge.base_url}/health/liveness", timeout=10).status_code == 200


# -- body size -------------------------------------------------------------------------------------------------


def every_route(gw: Gateway) -> list[tuple[str, str]]:
    """(method, path) of every route the facade documents, path parameters filled in."""
    spec = httpx.get(f"{gw.base_url}/openapi.json", timeout=10).json()
    routes = []
    for template, operations in spec["paths"].items():
        path = template
        while "{" in path:
            start = path.index("{")
            path = path[:start] + "x" + path[path.index("}", start) + 1:]
        routes += [(method.upper(), path) for method in operations]
    return routes


def test_every_route_is_documented_including_the_dashboard_forms(edge: Gateway) -> None:
    routes = every_route(edge)
    for expected in (("POST", "/ui/login"), ("POST", "/ui/logout"), ("POST", "/ui/keys/create"),
                     ("POST", "/v1/chat/completions"), ("POST", "/key/block")):
        assert expected in routes


def test_a_declared_body_over_the_limit_gets_413_on_every_route_before_it_is_sent(edge: Gateway) -> None:
    for method, path in every_route(edge):
        with connect(edge) as sock:
            send(sock, f"{method} {path} HTTP/1.1\r\nHost: gateway\r\nContent-Length: {MAX_BODY + 1}\r\n"
                       "Content-Type: application/json\r\n\r\n".encode())
            answer = read_answer(sock)  # not one byte of the body was sent
            assert answer.status == 413, (method, path, answer)
            if path.startswith(("/v1/messages", "/anthropic/")):
                assert_anthropic_error(answer, 413)
            elif not path.startswith("/ui"):
                assert_openai_error(answer, 413, "request_too_large")


@pytest.mark.parametrize(("path", "limit"), [("/key/generate", ADMIN_BODY), ("/team/new", ADMIN_BODY),
                                             ("/ui/login", FORM_BODY), ("/ui/logout", FORM_BODY),
                                             ("/ui/keys/create", FORM_BODY)])
def test_routes_with_smaller_limits_refuse_a_declared_length_over_theirs(edge: Gateway, path: str,
                                                                         limit: int) -> None:
    with connect(edge) as sock:
        session = login_cookies(edge) if path.startswith("/ui/") and path != "/ui/login" else ""
        send(sock, f"POST {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {edge.master_key}\r\n"
                   f"Cookie: {session}\r\nContent-Length: {limit + 1}\r\n\r\n".encode())
        answer = read_answer(sock)
        assert answer.status == 413, answer
        assert str(limit) in answer.body.decode()


def login_cookies(gw: Gateway) -> str:
    """The cookie header of a signed-in dashboard session (the master key's)."""
    with httpx.Client(base_url=gw.base_url, timeout=10) as client:
        page = client.get("/ui/login").text
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        assert client.post("/ui/login", data={"csrf_token": token, "api_key": gw.master_key}).status_code == 303
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


@pytest.mark.parametrize(("path", "limit"), [("/v1/chat/completions", MAX_BODY), ("/v1/messages", MAX_BODY),
                                             ("/key/generate", ADMIN_BODY), ("/ui/login", FORM_BODY)])
def test_a_chunked_body_is_cut_at_the_limit(edge: Gateway, path: str, limit: int) -> None:
    """A body without a length is refused once it passes the limit, and the server stops reading it: a client
    that keeps sending finds the connection closed instead of filling the gateway's memory."""
    piece = b"a" * 65536
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    with connect(edge) as sock:
        send(sock, f"POST {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {edge.master_key}\r\n"
                   "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n".encode())
        sent = 0
        while not select.select([sock], [], [], 0)[0]:
            assert send(sock, chunk), "the server closed the connection without an answer"
            sent += len(piece)
            assert sent < limit + MAX_BODY, "the server reads past its limit"
        answer = read_answer(sock)
        assert answer.status == 413, answer
        # The rest is not read: sending on ends in a closed connection.
        deadline = time.monotonic() + 60
        while send(sock, chunk):
            assert time.monotonic() < deadline, "the server keeps reading a refused body"
