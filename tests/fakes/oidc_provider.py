"""A fake OpenID Connect provider: a real HTTP server speaking the protocol the dashboard's single sign-on uses.

Discovery (``/.well-known/openid-configuration``), an authorize endpoint that signs in whoever the test named
(``login_as``) and redirects back with a code, a token endpoint that checks the client secret (Basic or in the
body), the redirect URI and the PKCE verifier (S256) before giving an RS256-signed ID token, and a JWKS
endpoint. A test can rotate the signing key, make the next ID token forged (signed by a key the provider does
not publish, under the published or an unknown key id), expired, for another audience or with another nonce,
answer with another ``state``, or make the whole provider fail (HTTP 503).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

#: What the next ID token may be made wrong with.
TAMPERS = ("forged", "forged_unknown_kid", "expired", "wrong_nonce", "wrong_audience", "wrong_issuer")


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    claims: dict[str, Any]


@dataclass
class FakeOidcProvider:
    client_id: str = "switchboard-test"
    client_secret: str = field(default_factory=lambda: "secret-" + secrets.token_hex(8))
    #: The claims of whoever signs in next (``login_as``).
    identity: dict[str, Any] = field(default_factory=dict)
    #: One of TAMPERS, applied to the next ID token only.
    tamper: str = ""
    #: The next redirect back carries another state.
    wrong_state: bool = False
    #: Every endpoint answers 503.
    down: bool = False
    jwks_fetches: int = 0
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys = [self._new_key()]
        self.grants: dict[str, Grant] = {}
        self.app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
            Route("/jwks", self.jwks),
        ])
        self._server = BackgroundServer(self.app, name="fake-oidc")

    @staticmethod
    def _new_key() -> RSAKey:
        return RSAKey.generate_key(2048, parameters={"kid": "k-" + secrets.token_hex(4), "use": "sig",
                                                     "alg": "RS256"})

    # -- lifecycle and test controls ---------------------------------------------------------

    @property
    def issuer(self) -> str:
        return self._server.url

    def start(self) -> FakeOidcProvider:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def login_as(self, email: str, groups: list[str] | None = None, **claims: Any) -> None:
        self.identity = {"sub": "sub-" + hashlib.sha256(email.encode()).hexdigest()[:12], "email": email,
                         "name": email.split("@")[0].title(), "groups": list(groups or []), **claims}

    def rotate(self) -> None:
        """A new signing key; the old one is no longer published (as after a provider's key rollover)."""
        self.keys = [self._new_key()]

    # -- endpoints ---------------------------------------------------------------------------

    def _unavailable(self) -> Response:
        return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)

    async def discovery(self, request: Request) -> Response:
        if self.down:
            return self._unavailable()
        return JSONResponse({
            "issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile"],
        })

    async def jwks(self, request: Request) -> Response:
        if self.down:
            return self._unavailable()
        self.jwks_fetches += 1
        return JSONResponse({"keys": [k.as_dict(private=False) for k in self.keys]})

    async def authorize(self, request: Request) -> Response:
        if self.down:
            return self._unavailable()
        q = request.query_params
        problems = [name for name, ok in (
            ("response_type", q.get("response_type") == "code"),
            ("client_id", q.get("client_id") == self.client_id),
            ("redirect_uri", bool(q.get("redirect_uri"))),
            ("scope", "openid" in q.get("scope", "").split()),
            ("state", bool(q.get("state"))),
            ("nonce", bool(q.get("nonce"))),
            ("code_challenge", bool(q.get("code_challenge"))),
            ("code_challenge_method", q.get("code_challenge_method") == "S256"),
        ) if not ok]
        if problems:
            return JSONResponse({"error": "invalid_request", "error_description": f"bad {problems}"}, 400)
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(q["client_id"], q["redirect_uri"], q["code_challenge"], q["nonce"],
                                  dict(self.identity))
        state = "not-" + q["state"] if self.wrong_state else q["state"]
        self.wrong_state = False
        return RedirectResponse(q["redirect_uri"] + "?" + urlencode({"code": code, "state": state}), 302)

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self.client_id and secrets.compare_digest(secret, self.client_secret)

    async def token(self, request: Request) -> Response:
        if self.down:
            return self._unavailable()
        form = dict(parse_qsl((await request.body()).decode()))
        self.token_requests.append(form)
        if not self._client_ok(request, form):
            return JSONResponse({"error": "invalid_client"}, 401)
        grant = self.grants.pop(form.get("code", ""), None)  # a code works once
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant", "error_description": "unknown or used code"}, 400)
        if form.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri differs"}, 400)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if not verifier or challenge != grant.challenge:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE verifier mismatch"}, 400)
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                             "id_token": self.id_token(grant)})

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": grant.client_id, "iat": now, "exp": now + 300, "nonce": grant.nonce,
                  **grant.claims}
        key = self.keys[0]
        kid = str(key.kid)
        tamper, self.tamper = self.tamper, ""
        if tamper == "forged":
            key = self._new_key()  # the published kid, a key nobody published
        elif tamper == "forged_unknown_kid":
            key = self._new_key()
            kid = str(key.kid)
        elif tamper == "expired":
            claims.update(iat=now - 7200, exp=now - 3600)
        elif tamper == "wrong_nonce":
            claims["nonce"] = "another-" + secrets.token_hex(4)
        elif tamper == "wrong_audience":
            claims["aud"] = "another-client"
        elif tamper == "wrong_issuer":
            claims["iss"] = "https://evil.example.com"
        return jwt.encode({"alg": "RS256", "kid": kid, "typ": "JWT"}, claims, key)
