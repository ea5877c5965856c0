"""OAuth2 access tokens for Google Cloud APIs (Vertex AI), obtained and refreshed with ``google-auth``.

A deployment names where its credentials come from:

- ``api_key``: a static access token, sent as it is (``gcloud auth print-access-token``; also how a
  caller's own token arrives, bring-your-own-key);
- ``vertex_credentials``: a credentials JSON, as the path of the file or as the JSON itself: a service
  account key (the JWT bearer grant, signed with the key, against the file's ``token_uri``) or an
  authorized-user file (``gcloud auth application-default login``);
- neither: Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, then the metadata
  server: GKE workload identity, Compute Engine, Cloud Run).

Each source is loaded once and its token kept until shortly before it expires (google-auth refreshes
3¾ minutes early), so a call waits for Google's token endpoint about once an hour. ``google-auth`` is
synchronous: loading and refreshing run on a worker thread, one refresh at a time per source, so the
event loop never blocks.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from functools import cache
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import orjson
import requests
from google.auth.credentials import Credentials
from google.oauth2 import credentials as oauth2_credentials
from google.oauth2 import service_account

from switchboard_router.deployment import Deployment
from switchboard_router.providers.base import CredentialError, UpstreamError

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
#: Seconds a token request may take before the attempt fails (and may be retried).
TOKEN_TIMEOUT_SECONDS = 30.0


@cache
def _transport() -> google.auth.transport.requests.Request:
    """One pooled HTTP session for every token request (it honours HTTPS_PROXY and REQUESTS_CA_BUNDLE)."""
    return google.auth.transport.requests.Request(requests.Session())


class TokenSource:
    """One credential's current access token; refreshed on a worker thread when it is about to expire."""

    def __init__(self, load: Callable[[], Credentials], name: str) -> None:
        self._load = load
        self.name = name
        self._credentials: Credentials | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        credentials = self._credentials
        if credentials is not None and credentials.valid:
            return str(credentials.token)
        async with self._lock:
            if self._credentials is None:
                self._credentials = await self._off_loop(self._load, "cannot be loaded")
            if not self._credentials.valid:
                await self._off_loop(lambda: self._credentials.refresh(_transport()), "were refused")  # type: ignore[union-attr]  # loaded just above; a lambda keeps no narrowing
            return str(self._credentials.token)

    async def _off_loop(self, step: Callable[[], Any], failing: str) -> Any:
        try:
            async with asyncio.timeout(TOKEN_TIMEOUT_SECONDS):
                return await asyncio.to_thread(step)
        except TimeoutError:
            raise CredentialError(UpstreamError(
                504, f"Google's token endpoint did not answer within {TOKEN_TIMEOUT_SECONDS:.0f} s ({self.name}).",
                type="credentials_timeout", code="upstream_timeout")) from None
        except google.auth.exceptions.RefreshError as exc:
            # The endpoint answered and said no (a revoked key, a wrong audience): no retry helps,
            # unless google-auth itself calls the failure transient.
            transient = bool(getattr(exc, "retryable", False))
            raise CredentialError(UpstreamError(
                503 if transient else 401,
                f"The Google credentials {self.name} {failing}: {exc}. Check the service account and its key.",
                type="credentials_refused", code="credentials_refused")) from None
        except google.auth.exceptions.TransportError as exc:
            raise CredentialError(UpstreamError(
                502, f"Google's token endpoint could not be reached ({self.name}): {exc}",
                type="connection_error", code="upstream_unreachable")) from None
        except (OSError, ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            raise CredentialError(UpstreamError(
                503, f"The Google credentials {self.name} {failing}: {exc}. Set vertex_credentials to a "
                "service-account JSON file (or its JSON), or run where Application Default Credentials exist.",
                type="credentials_unavailable", code="credentials_unavailable")) from None


class GoogleTokens:
    """The token sources of every deployment, shared by deployments that name the same credentials."""

    def __init__(self) -> None:
        self._sources: dict[str, TokenSource] = {}

    async def token(self, deployment: Deployment) -> str:
        if deployment.api_key:
            return deployment.api_key
        key, load, name = _source_of(deployment.extra.get("vertex_credentials"))
        source = self._sources.get(key)
        if source is None:
            source = self._sources[key] = TokenSource(load, name)
        return await source.token()


def _source_of(credentials: Any) -> tuple[str, Callable[[], Credentials], str]:
    """A stable key for the credentials a deployment names, how to load them, and how to name them in errors."""
    if isinstance(credentials, dict) or (isinstance(credentials, str) and credentials.lstrip().startswith("{")):
        raw = orjson.dumps(credentials, option=orjson.OPT_SORT_KEYS) if isinstance(credentials, dict) else credentials
        digest = hashlib.sha256(raw if isinstance(raw, bytes) else raw.encode()).hexdigest()
        return f"json:{digest}", lambda: _from_info(credentials), "in vertex_credentials"
    if isinstance(credentials, str) and credentials:
        path = os.path.expanduser(credentials)
        return f"file:{path}", lambda: _from_file(path), f"in {path}"
    return "adc", _default, "(Application Default Credentials)"


def _from_info(info: dict[str, Any] | str) -> Credentials:
    """Service-account keys and authorized-user files only: other credential types can run commands or
    reach arbitrary URLs when loaded, so they come through Application Default Credentials, on purpose."""
    parsed = info if isinstance(info, dict) else orjson.loads(info)
    kind = parsed.get("type") if isinstance(parsed, dict) else None
    if kind == "service_account":
        return service_account.Credentials.from_service_account_info(parsed, scopes=SCOPES)  # type: ignore[no-any-return, no-untyped-call]  # google-auth leaves it unannotated
    if kind == "authorized_user":
        return oauth2_credentials.Credentials.from_authorized_user_info(parsed, scopes=SCOPES)  # type: ignore[no-any-return, no-untyped-call]  # idem
    raise ValueError(f"credentials of type {kind!r} are not read from vertex_credentials (service_account and "
                     "authorized_user are); point GOOGLE_APPLICATION_CREDENTIALS at them and leave "
                     "vertex_credentials unset")


def _from_file(path: str) -> Credentials:
    with open(path, "rb") as file:
        return _from_info(orjson.loads(file.read()))


def _default() -> Credentials:
    credentials, _ = google.auth.default(scopes=SCOPES)
    return credentials
