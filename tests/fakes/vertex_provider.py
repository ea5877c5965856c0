"""A fake Google Vertex AI, OAuth2 token endpoint included: a real HTTP server on loopback.

- ``POST /token``: Google's OAuth2 token endpoint for service accounts. It takes the JWT bearer
  grant (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``), checks the assertion's
  RS256 signature against the public half of :attr:`FakeVertex.service_account`'s key, its issuer,
  audience (Google's token endpoint, as google-auth always writes it), scope and expiry, and issues
  an access token good for :attr:`FakeVertex.token_lifetime` seconds. A bad assertion gets
  ``400 invalid_grant``, as Google answers.
- ``POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent``
  and ``:streamGenerateContent?alt=sse``: Gemini's wire format, with the fake Gemini's behaviours
  (the model name picks them: ``...tool...``, ``...error...``, ``...safety...``, ``...ratelimit...``).
- ``POST /v1/projects/{project}/locations/{location}/cachedContents``: Gemini's explicit context caches, as
  the fake Gemini keeps them (entries named ``projects/…/cachedContents/…``, for models named
  ``projects/…/publishers/google/models/…``).
- ``POST .../publishers/anthropic/models/{model}:rawPredict`` and ``:streamRawPredict``: Anthropic's
  Messages format with ``anthropic_version: vertex-2023-10-16`` in the body and no ``model``; the
  fake Anthropic's behaviours, picked by the model name without its ``claude-`` prefix and ``@version``
  (``claude-tool`` calls tools, ``claude-cache`` reports cache usage, ``claude-error`` fails); ``thinking`` is
  checked as Anthropic checks it (a model that thinks, a budget of at least 1,024 below ``max_tokens``).

- ``GET /computeMetadata/v1/...`` (and ``GET /``, the ping): the metadata server a GKE pod with
  workload identity sees, for Application Default Credentials when ``GCE_METADATA_HOST`` and
  ``GCE_METADATA_IP`` point here: project id, the service account's info and its access token.

Every call needs ``Authorization: Bearer`` with a token this fake issued (or one of
:attr:`FakeVertex.static_tokens`), else ``401 UNAUTHENTICATED``; a project other than
:attr:`FakeVertex.project` is ``403 PERMISSION_DENIED``. Requests are recorded in ``requests``, token
requests in ``token_requests``.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote

import google.auth.exceptions
import google.auth.jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.anthropic_provider import (
    FakeAnthropic,
    InvalidRequest,
    answer_anthropic_leak,
    check_thinking_budget,
    error_body,
)
from tests.fakes.anthropic_provider import RecordedRequest as AnthropicRecord
from tests.fakes.anthropic_provider import validate as validate_messages
from tests.fakes.gemini_provider import (
    FakeGemini,
    GeminiRejection,
    RecordedRequest,
    _error_body,
    _failure_for,
    _merge,
    _responses,
    _send_json,
    _validate,
    _with_cache_usage,
    answer_gemini_leak,
)
from tests.fakes.leak import quote_request

PROJECT = "switchboard-test"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: The audience a service account's assertion names, whatever token URI it is posted to (as at Google).
AUDIENCE = "https://oauth2.googleapis.com/token"
_PATH_RE = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/(?P<publisher>google|anthropic)"
    r"/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent|rawPredict|streamRawPredict)$"
)
_CACHES_RE = re.compile(r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/cachedContents$")


def service_account_key() -> tuple[rsa.RSAPrivateKey, str]:
    """A fresh RSA key and its private half as PEM (as in a service-account JSON's ``private_key``)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return key, pem


class FakeVertex(FakeGemini):
    """The server; start() before use, stop() after (the fixture does both)."""

    server_name = "fake-vertex"

    def __init__(self, *, slow_delay: float = 0.2) -> None:
        super().__init__(slow_delay=slow_delay)
        self.project = PROJECT
        self._key, self._pem = service_account_key()
        public = self._key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        self._public_pem = public.decode()
        self.token_lifetime = 3600
        #: Access tokens issued by /token, and tokens accepted without one (a static token in config).
        self.issued: set[str] = set()
        self.static_tokens: set[str] = set()
        self.token_requests: list[dict[str, Any]] = []
        #: Paths asked of the metadata server (``GCE_METADATA_HOST`` pointed here).
        self.metadata_requests: list[str] = []
        self._serial = itertools.count(1)
        self._claude = FakeAnthropic()

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def service_account(self) -> dict[str, str]:
        """A service-account key file's JSON whose key this fake's token endpoint trusts."""
        return service_account_info(self.token_uri, self._pem)

    def reset(self) -> None:
        super().reset()
        self.token_requests.clear()
        self.metadata_requests.clear()
        self.token_lifetime = 3600

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("ascii"))
        if scope["method"] == "POST" and scope["path"] == "/token":
            await self._token(send, parse_qs(body.decode()))
            return
        if scope["method"] == "GET" and (scope["path"] == "/" or scope["path"].startswith("/computeMetadata/")):
            await self._metadata(send, scope["path"], headers, query)
            return
        self.requests.append(RecordedRequest(scope["method"], scope["path"], query, headers, body))
        match = _PATH_RE.match(scope["path"]) or _CACHES_RE.match(scope["path"])
        if scope["method"] != "POST" or match is None:
            await _send_json(send, 404, _error_body(404, "NOT_FOUND", f"{scope['path']} is not found."))
            return
        said = quote_request(headers, scope.get("query_string", b"").decode())
        if "publisher" not in match.groupdict():
            await self._create_vertex_cache(send, headers, match["project"], match["location"], body)
            return
        leaky = answer_anthropic_leak if match["publisher"] == "anthropic" else answer_gemini_leak
        if await leaky(unquote(match["model"]), said, match["method"].startswith("stream"), send):
            return
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.issued | self.static_tokens:
            await _send_json(send, 401, _error_body(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential."))
            return
        if unquote(match["project"]) != self.project:
            await _send_json(send, 403, _error_body(
                403, "PERMISSION_DENIED", f"Permission 'aiplatform.endpoints.predict' denied on resource "
                f"'projects/{match['project']}/locations/{match['location']}'"))
            return
        model = unquote(match["model"])
        if match["publisher"] == "anthropic":
            await self._claude_call(send, model, match["method"], body)
        else:
            name = f"projects/{match['project']}/locations/{match['location']}/publishers/google/models/{model}"
            await self._gemini_call(send, model, name, match["method"], body, query)

    async def _create_vertex_cache(self, send: Any, headers: dict[str, str], project: str, location: str,
                                   body: bytes) -> None:
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.issued | self.static_tokens:
            await _send_json(send, 401, _error_body(401, "UNAUTHENTICATED", "Request had invalid authentication "
                                                    "credentials."))
            return
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            await _send_json(send, 400, _error_body(400, "INVALID_ARGUMENT", "Invalid JSON payload"))
            return
        where = f"projects/{unquote(project)}/locations/{unquote(location)}"
        status, made = self.caches.create(request, f"{where}/publishers/google/models/")
        if status == 200:
            entry = self.caches.entries.pop(made["name"])
            entry.name = made["name"] = f"{where}/{made['name']}"
            self.caches.entries[entry.name] = entry
        await _send_json(send, status, made)

    async def _token(self, send: Any, form: dict[str, list[str]]) -> None:
        grant = (form.get("grant_type") or [""])[0]
        assertion = (form.get("assertion") or [""])[0]
        self.token_requests.append({"grant_type": grant, "assertion": assertion})
        try:
            if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                raise ValueError(f"Invalid grant_type: {grant}")
            claims = google.auth.jwt.decode(assertion, certs=self._public_pem, audience=AUDIENCE)
            if claims.get("iss") != self.service_account["client_email"] or claims.get("scope") != SCOPE:
                raise ValueError("Invalid JWT: issuer or scope")
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            refusal = {"error": "invalid_grant", "error_description": f"Invalid JWT Signature. {exc}"}
            await _send_json(send, 400, refusal)
            return
        token = f"ya29.fake-vertex-{next(self._serial)}-{int(time.time())}"
        self.issued.add(token)
        await _send_json(send, 200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    async def _metadata(self, send: Any, path: str, headers: dict[str, str], query: dict[str, list[str]]) -> None:
        """The metadata server of a GKE pod with workload identity (or a Compute Engine VM)."""
        self.metadata_requests.append(path)
        flavor = [(b"metadata-flavor", b"Google")]
        if headers.get("metadata-flavor") != "Google":
            await _send(send, 403, b"Missing Metadata-Flavor:Google header.", "text/html", flavor)
            return
        root = "/computeMetadata/v1/"
        account = f"{root}instance/service-accounts/default/"
        if path == "/":
            await _send(send, 200, b"computeMetadata/\n", "application/text", flavor)
        elif path == f"{root}project/project-id":
            await _send(send, 200, self.project.encode(), "application/text", flavor)
        elif path == f"{root}universe/universe-domain":
            await _send(send, 200, b"googleapis.com", "application/text", flavor)
        elif path == account:
            info = {"aliases": ["default"], "email": self.service_account["client_email"], "scopes": [SCOPE]}
            await _send(send, 200, orjson.dumps(info), "application/json", flavor)
        elif path == f"{account}token":
            token = f"ya29.fake-metadata-{next(self._serial)}"
            self.issued.add(token)
            grant = {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
            await _send(send, 200, orjson.dumps(grant), "application/json", flavor)
        else:
            await _send(send, 404, b"Not Found", "text/html", flavor)

    async def _gemini_call(self, send: Any, model: str, name: str, method: str, body: bytes,
                           query: dict[str, list[str]]) -> None:
        try:
            sent = orjson.loads(body)
            request, entry = self.caches.expand(name, sent)
            _validate(model, request)
        except (orjson.JSONDecodeError, GeminiRejection, KeyError, TypeError, AttributeError) as exc:
            await _send_json(send, 400, _error_body(400, "INVALID_ARGUMENT", str(exc) or "Invalid JSON payload"))
            return
        except LookupError as exc:
            await _send_json(send, 404, _error_body(404, "NOT_FOUND", str(exc)))
            return
        failure = _failure_for(model)
        if failure is not None:
            await _send_json(send, *failure)
            return
        responses = _responses(model, request)
        if entry is not None:
            _with_cache_usage(responses, entry, sent)
        if method == "generateContent":
            await _send_json(send, 200, _merge(responses))
        elif (query.get("alt") or [""])[0] == "sse":
            await self._send_sse(send, model, responses)
        else:
            await _send_json(send, 200, responses)

    async def _claude_call(self, send: Any, model: str, method: str, raw: bytes) -> None:
        try:
            body = orjson.loads(raw)
            if body.get("anthropic_version") != "vertex-2023-10-16":
                raise InvalidRequest("anthropic_version: vertex-2023-10-16 is required on Vertex AI")
            if "model" in body:
                raise InvalidRequest("model: Extra inputs are not permitted (the model is in the URL)")
            if bool(body.get("stream")) != (method == "streamRawPredict"):
                raise InvalidRequest("stream must be true exactly for streamRawPredict")
            body = {k: v for k, v in body.items() if k != "anthropic_version"}
            body["model"] = model.removeprefix("claude-").split("@")[0]
            validate_messages({"x-api-key": "vertex", "anthropic-version": "vertex"}, body)
            check_thinking_budget(model, body)
        except (orjson.JSONDecodeError, InvalidRequest) as exc:
            status = getattr(exc, "status", 400)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": error_body(status, str(exc))})
            return
        await self._claude.answer(body, send, AnthropicRecord("POST", method, {}, body))


async def _send(send: Any, status: int, body: bytes, content_type: str,
                extra: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), *extra]})
    await send({"type": "http.response.body", "body": body})


def service_account_info(token_uri: str, private_key_pem: str) -> dict[str, str]:
    """A service-account key file's JSON, as the Cloud console downloads it."""
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": private_key_pem,
        "client_email": f"switchboard@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }


@pytest.fixture(name="fake_vertex_server", scope="module")
def fake_vertex_server_fixture() -> Iterator[FakeVertex]:
    server = FakeVertex()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="fake_vertex")
def fake_vertex_fixture(fake_vertex_server: FakeVertex) -> FakeVertex:
    """The module's fake Vertex AI, with no recorded requests and default settings."""
    fake_vertex_server.reset()
    return fake_vertex_server
