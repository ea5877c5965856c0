"""Single sign-on: ``/ui/sso/start`` sends the browser to the identity provider, ``/ui/sso/callback`` takes it
back, checks everything and opens a session in auth for the person the claims name.

What one sign-in needs to remember between the two (``state``, ``nonce``, the PKCE verifier) travels in a
short cookie signed with a key derived from the client secret, so the callback may land on any facade
replica and a cookie made by anyone without the secret is refused. The cookie is SameSite=Lax: the provider's
redirect back is a cross-site navigation, which a Strict cookie would not survive.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_facade.ui.claims import MappingError, sign_in_of
from switchboard_facade.ui.oidc import (
    OidcConfig,
    OidcProvider,
    ProviderMisconfigured,
    ProviderUnavailable,
    TokenRejected,
)
from switchboard_facade.ui.render import SECURITY_HEADERS, page
from switchboard_facade.ui.routes.signin import session_ttl, signed_in

log = logging.getLogger(__name__)
router = APIRouter()

FLOW_COOKIE = "sb_sso_flow"
FLOW_PATH = "/ui/sso"
#: Seconds a person has between leaving for the provider and coming back.
FLOW_SECONDS = 600


def provider(request: Request) -> OidcProvider | None:
    """The app's provider (made on first use, then kept: it caches discovery and keys); None when not set up."""
    gw: Gateway = request.app.state.gateway
    config = OidcConfig.from_settings(gw.settings)
    if config is None:
        return None
    existing: OidcProvider | None = getattr(request.app.state, "oidc_provider", None)
    if existing is None or existing.config != config:
        existing = OidcProvider(config)
        request.app.state.oidc_provider = existing
    return existing


def redirect_uri(request: Request) -> str:
    gw: Gateway = request.app.state.gateway
    if gw.settings.oidc_redirect_url.strip():
        return gw.settings.oidc_redirect_url.strip()
    origin = gw.settings.public_url.strip().rstrip("/") or str(request.base_url).rstrip("/")
    return origin + "/ui/sso/callback"


def _flow_key(config: OidcConfig) -> bytes:
    return hashlib.sha256(b"switchboard-sso-flow\x00" + config.client_secret.encode()).digest()


def seal_flow(config: OidcConfig, flow: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(flow, separators=(",", ":")).encode()).decode().rstrip("=")
    return body + "." + hmac.new(_flow_key(config), body.encode(), hashlib.sha256).hexdigest()


def open_flow(config: OidcConfig, cookie: str | None) -> dict[str, Any] | None:
    """The flow a cookie holds, if this gateway signed it and it has not expired."""
    if not cookie or "." not in cookie:
        return None
    body, _, signature = cookie.rpartition(".")
    if not hmac.compare_digest(signature, hmac.new(_flow_key(config), body.encode(), hashlib.sha256).hexdigest()):
        return None
    try:
        flow = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    if not isinstance(flow, dict) or not isinstance(flow.get("exp"), int) or flow["exp"] < time.time():
        return None
    return flow


def sso_error(request: Request, status: int, title: str, message: str) -> Response:
    response = page(request, "error.html", None, status=status, title=title, message=message)
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response


def _provider_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ProviderUnavailable):
        log.warning("identity provider unavailable", extra={"error": str(exc)})
        return sso_error(request, 503, "Single sign-on is unavailable",
                         f"{exc} Try again in a moment, or sign in with a key.")
    log.error("identity provider misconfigured", extra={"error": str(exc)})
    return sso_error(request, 502, "Single sign-on is misconfigured",
                     f"{exc} Operators: see docs/sso.md. Meanwhile, sign in with a key.")


@router.get("/ui/sso/start")
async def start(request: Request) -> Response:
    idp = provider(request)
    if idp is None:
        return sso_error(request, 404, "Single sign-on is not set up",
                         "This gateway has no identity provider configured (SWITCHBOARD_OIDC_ISSUER, "
                         "SWITCHBOARD_OIDC_CLIENT_ID, SWITCHBOARD_OIDC_CLIENT_SECRET). Sign in with a key.")
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    flow = {"state": state, "nonce": nonce, "verifier": verifier, "exp": int(time.time()) + FLOW_SECONDS}
    try:
        url = await idp.authorization_url(redirect_uri(request), state, nonce, verifier)
    except (ProviderUnavailable, ProviderMisconfigured) as exc:
        return _provider_error(request, exc)
    response = RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(FLOW_COOKIE, seal_flow(idp.config, flow), max_age=FLOW_SECONDS, path=FLOW_PATH,
                        httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response


@router.get("/ui/sso/callback")
async def callback(request: Request) -> Response:
    idp = provider(request)
    if idp is None:
        return sso_error(request, 404, "Single sign-on is not set up", "Sign in with a key.")
    q = request.query_params
    if q.get("error"):
        detail = (q.get("error_description") or q["error"])[:300]
        return sso_error(request, 401, "Not signed in", f"The identity provider did not sign you in: {detail}")
    flow = open_flow(idp.config, request.cookies.get(FLOW_COOKIE))
    if flow is None:
        return sso_error(request, 400, "Sign-in expired",
                         "This sign-in was started too long ago, or in another browser. Start again from the "
                         "sign-in page.")
    if not q.get("state") or not hmac.compare_digest(str(flow["state"]), q["state"]):
        log.warning("single sign-on refused: state mismatch")
        return sso_error(request, 400, "Sign-in refused",
                         "The answer from the identity provider does not belong to this sign-in (state "
                         "mismatch). Start again from the sign-in page.")
    if not q.get("code"):
        return sso_error(request, 400, "Sign-in refused", "The identity provider sent no code. Start again.")
    gw: Gateway = request.app.state.gateway
    try:
        id_token = await idp.exchange(q["code"], redirect_uri(request), str(flow["verifier"]))
        claims = await idp.verify(id_token, str(flow["nonce"]))
        person = sign_in_of(claims, gw.settings)
    except (ProviderUnavailable, ProviderMisconfigured) as exc:
        return _provider_error(request, exc)
    except (TokenRejected, MappingError) as exc:
        log.warning("single sign-on refused", extra={"error": str(exc)})
        return sso_error(request, 401, "Sign-in refused", f"{exc}")
    try:
        info = await gw.auth.admin.open_sso_session(person, session_ttl(gw))
    except ServiceError as err:
        status = err.http_status
        return sso_error(request, status if status in (400, 401, 403) else 503, "Not signed in", err.error.message)
    log.info("signed in by single sign-on", extra={"user_id": info.user_id, "user_role": info.role,
                                                   "teams": list(info.team_ids)})
    # A page, not a redirect: the session cookie is SameSite=Strict, and a redirect chain that began at the
    # provider is cross-site, so the browser would not send it on the next page.
    response = signed_in(request, page(request, "signed_in.html", None, label=info.label), info)
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response
