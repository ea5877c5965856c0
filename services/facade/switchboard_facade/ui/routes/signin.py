"""Sign in with a key (the master key for break-glass, an admin key, a virtual key) or by single sign-on
(:mod:`switchboard_facade.ui.routes.sso`); sign out."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from switchboard_auth.client import SessionInfo
from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_facade.ui.guard import csrf_refused, current
from switchboard_facade.ui.oidc import OidcConfig
from switchboard_facade.ui.render import SECURITY_HEADERS, first, form_data, page
from switchboard_facade.ui.session import COOKIE_NAME, csrf_ok

router = APIRouter()

#: The sign-in form's CSRF token lives in its own short cookie (there is no session yet).
LOGIN_CSRF_COOKIE = "sb_login_csrf"


def login_page(request: Request, error: str = "", status: int = 200) -> Response:
    gw: Gateway = request.app.state.gateway
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", None, status=status, csrf_token=token, error=error,
                    sso=OidcConfig.from_settings(gw.settings) is not None,
                    master_login=gw.settings.ui_master_key_login)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=600, path="/ui", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


#: The longest session auth opens (a week).
MAX_SESSION_SECONDS = 7 * 24 * 3600


def session_ttl(gw: Gateway) -> int:
    return min(MAX_SESSION_SECONDS, max(60, int(gw.settings.ui_session_hours * 3600)))


def signed_in(request: Request, response: Response, info: SessionInfo) -> Response:
    """``response`` with the session cookie of ``info`` set."""
    response.set_cookie(COOKIE_NAME, info.token, max_age=session_ttl(request.app.state.gateway), path="/ui",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.get("/ui")
@router.get("/ui/")
async def home(request: Request) -> Response:
    session = await current(request)
    target = "/ui/login" if session is None else "/ui/usage"
    return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)


@router.get("/ui/login")
async def login_form(request: Request) -> Response:
    return login_page(request)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = await form_data(request)
    if not csrf_ok_login(request, first(form, "csrf_token")):
        return csrf_refused(request, None)
    credential = first(form, "api_key")
    gw: Gateway = request.app.state.gateway
    if not credential:
        what = "the master key or a virtual key" if gw.settings.ui_master_key_login else "a virtual key"
        return login_page(request, f"Paste {what} (sk-...).", 400)
    try:
        if not gw.settings.ui_master_key_login and (await gw.verify(credential)).key_id == "master":
            return login_page(request, "Signing in with the master key is turned off on this gateway "
                              "(SWITCHBOARD_UI_MASTER_KEY_LOGIN=false). Sign in with SSO or a virtual key.", 403)
        info = await gw.auth.admin.open_session(credential, session_ttl(gw))
    except ServiceError as err:
        return login_page(request, f"Not signed in: {err.error.message}", 401)
    response = signed_in(request, RedirectResponse("/ui/usage", status_code=303, headers=SECURITY_HEADERS), info)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui")
    return response


def csrf_ok_login(request: Request, submitted: str) -> bool:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(expected) and bool(submitted) and hmac.compare_digest(expected, submitted)


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    session = await current(request)
    form = await form_data(request)
    if session is None or not csrf_ok(session, first(form, "csrf_token")):
        return csrf_refused(request, session)
    gw: Gateway = request.app.state.gateway
    try:
        await gw.auth.admin.close_session(session.credential)
    except ServiceError as err:
        return page(request, "error.html", session, status=503, title="Not signed out",
                    message=f"The session could not be ended: {err.error.message} Try again.")
    response = RedirectResponse("/ui/login", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE_NAME, path="/ui")
    return response
