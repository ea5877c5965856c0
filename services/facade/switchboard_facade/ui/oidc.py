"""The OpenID Connect relying party of the dashboard: discovery, the authorization URL (code flow with PKCE,
``state`` and ``nonce``), the code exchange, and the ID token's checks.

Authlib builds the authorization URL and speaks the token endpoint (client secret, PKCE verifier); joserfc
(Authlib's JOSE library) checks the ID token: its RS256/ES256 signature against the provider's JWKS, ``iss``,
``aud``, ``exp``, ``iat`` and the ``nonce`` of this sign-in. The discovery document and the keys are cached;
an ID token signed with a key id the cache does not know fetches the keys once more (the provider rotated),
and is refused if the key is still unknown.

Authlib and joserfc are imported at the first sign-in, not with the facade: a gateway without single sign-on
does not carry them (about 12 MB per facade).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from switchboard_facade.settings import FacadeSettings

if TYPE_CHECKING:
    import httpx
    from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]  # Authlib ships no type hints
    from joserfc.jwk import KeySet

log = logging.getLogger(__name__)

#: Signature algorithms accepted on an ID token ("none" and the HMAC family never: the client secret is not a key).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384")
#: Clock skew tolerated on exp/iat, seconds.
LEEWAY_SECONDS = 60


class ProviderUnavailable(Exception):
    """The provider could not be reached or answered with an error (a 503 page for the person signing in)."""


class ProviderMisconfigured(Exception):
    """The provider answered, but not as the settings say it should (a wrong issuer, a missing endpoint)."""


class TokenRejected(Exception):
    """The provider's answer or ID token failed a check; the message says which (no token text in it)."""


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    cache_seconds: float
    timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: FacadeSettings) -> OidcConfig | None:
        """The configuration, or None when single sign-on is not set up (issuer, client id and secret all needed)."""
        issuer = settings.oidc_issuer.strip().rstrip("/")
        if not (issuer and settings.oidc_client_id.strip() and settings.oidc_client_secret):
            return None
        words = [w for w in settings.oidc_scopes.replace(",", " ").split() if w]
        scopes = " ".join(dict.fromkeys(["openid", *words]))
        return cls(issuer, settings.oidc_client_id.strip(), settings.oidc_client_secret, scopes,
                   settings.oidc_cache_seconds, settings.oidc_timeout_seconds)


def _kid_of(token: str) -> str:
    """The ``kid`` of a compact JWS header ("" when absent or unreadable: the signature check then refuses)."""
    try:
        head = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, IndexError):
        return ""
    kid = header.get("kid", "") if isinstance(header, dict) else ""
    return kid if isinstance(kid, str) else ""


class OidcProvider:
    """One identity provider, with its discovery document and keys cached."""

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._discovery: dict[str, Any] | None = None
        self._discovered_at = 0.0
        self._keys: KeySet | None = None
        self._kids: set[str] = set()
        self._keys_at = 0.0
        self._lock = asyncio.Lock()

    def _http(self) -> httpx.AsyncClient:
        import httpx
        return httpx.AsyncClient(timeout=self.config.timeout_seconds, follow_redirects=False)

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        import httpx  # at the first sign-in: a facade without single sign-on does not carry it (about 6 MB)
        try:
            async with self._http() as http:
                response = await http.get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"The identity provider did not answer ({what}: {type(exc).__name__}).") \
                from None
        if response.status_code >= 500:
            raise ProviderUnavailable(f"The identity provider failed ({what}: HTTP {response.status_code}).")
        if response.status_code != 200:
            raise ProviderMisconfigured(f"The identity provider has no {what} at {url} (HTTP "
                                        f"{response.status_code}): check SWITCHBOARD_OIDC_ISSUER.")
        try:
            body = response.json()
        except ValueError:
            raise ProviderMisconfigured(f"The identity provider's {what} at {url} is not JSON: check "
                                        "SWITCHBOARD_OIDC_ISSUER.") from None
        if not isinstance(body, dict):
            raise ProviderMisconfigured(f"The identity provider's {what} at {url} is not a JSON object.")
        return body

    async def discovery(self) -> dict[str, Any]:
        """The provider's metadata, checked: it names this issuer and has the endpoints the code flow needs."""
        if self._discovery is not None and time.monotonic() - self._discovered_at < self.config.cache_seconds:
            return self._discovery
        url = self.config.issuer + "/.well-known/openid-configuration"
        doc = await self._get_json(url, "discovery document")
        if str(doc.get("issuer", "")).rstrip("/") != self.config.issuer:
            raise ProviderMisconfigured(
                f"The discovery document at {url} names the issuer {doc.get('issuer')!r}, not "
                f"{self.config.issuer!r}: set SWITCHBOARD_OIDC_ISSUER to the provider's exact issuer URL.")
        missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not doc.get(k)]
        if missing:
            raise ProviderMisconfigured(f"The discovery document at {url} lacks {', '.join(missing)}.")
        self._discovery, self._discovered_at = doc, time.monotonic()
        return doc

    async def _key_set(self, kid: str) -> KeySet:
        """The provider's keys; fetched again when stale or when ``kid`` is not among them (once per call)."""
        async with self._lock:
            fresh = self._keys is not None and time.monotonic() - self._keys_at < self.config.cache_seconds
            if fresh and (not kid or kid in self._kids):
                assert self._keys is not None
                return self._keys
            doc = await self.discovery()
            body = await self._get_json(str(doc["jwks_uri"]), "key set (jwks_uri)")
            from joserfc.errors import JoseError
            from joserfc.jwk import KeySet
            try:
                keys = KeySet.import_key_set(body)  # type: ignore[arg-type]  # any JSON; joserfc checks its shape (caught below)
            except (JoseError, ValueError, TypeError, KeyError):
                raise ProviderMisconfigured("The identity provider's key set (jwks_uri) cannot be read.") from None
            self._keys, self._keys_at = keys, time.monotonic()
            self._kids = {str(k.get("kid", "")) for k in body.get("keys", []) if isinstance(k, dict)}
            if kid and kid not in self._kids:
                log.warning("ID token signed by a key the provider does not publish", extra={"kid": kid})
            return keys

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        from authlib.integrations.httpx_client import AsyncOAuth2Client
        return AsyncOAuth2Client(client_id=self.config.client_id, client_secret=self.config.client_secret,
                                 scope=self.config.scopes, redirect_uri=redirect_uri,
                                 code_challenge_method="S256", timeout=self.config.timeout_seconds)

    async def authorization_url(self, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        doc = await self.discovery()
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(str(doc["authorization_endpoint"]), state=state,
                                                     code_verifier=code_verifier, nonce=nonce)
        return str(url)

    async def exchange(self, code: str, redirect_uri: str, code_verifier: str) -> str:
        """The ID token the token endpoint gives for ``code`` (client secret and PKCE verifier sent)."""
        import httpx
        doc = await self.discovery()
        try:
            async with self._client(redirect_uri) as client:
                token = await client.fetch_token(str(doc["token_endpoint"]), grant_type="authorization_code",
                                                 code=code, code_verifier=code_verifier)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"The identity provider's token endpoint did not answer "
                                      f"({type(exc).__name__}).") from None
        except Exception as exc:  # Authlib raises OAuthError (and others) for an error answer
            error = getattr(exc, "error", "") or type(exc).__name__
            raise TokenRejected(f"The identity provider refused the sign-in code ({error}). Sign in again.") \
                from None
        id_token = token.get("id_token") if isinstance(token, dict) else None
        if not isinstance(id_token, str) or not id_token:
            raise TokenRejected("The identity provider answered without an ID token (is 'openid' among the "
                                "client's allowed scopes?).")
        return id_token

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, times and nonce are right."""
        kid = _kid_of(id_token)
        issuer = str((await self.discovery())["issuer"])
        keys = await self._key_set(kid)
        from joserfc import jwt
        from joserfc.errors import JoseError
        try:
            decoded = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
        except JoseError as exc:
            raise TokenRejected(f"The ID token's signature is not valid ({exc.error}).") from None
        except (ValueError, TypeError):
            raise TokenRejected("The ID token cannot be read.") from None
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": self.config.client_id},
            exp={"essential": True}, iat={"essential": True}, sub={"essential": True},
            nonce={"essential": True, "value": nonce})
        try:
            registry.validate(claims)
        except JoseError as exc:
            claim = getattr(exc, "claim", "") or ""
            raise TokenRejected(f"The ID token was refused ({exc.error}{': ' + claim if claim else ''}).") from None
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.config.client_id:
            raise TokenRejected("The ID token was issued to another client (azp).")
        return dict(claims)
