"""Sign in with the master key (or an admin key) or a virtual key; sign out."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_facade.ui.guard import csrf_refused, current, store
from switchboard_facade.ui.render import SECURITY_HEADERS, first, form_data, page
from switchboard_facade.ui.session import COOKIE_NAME, SESSION_SECONDS, csrf_ok

router = APIRouter()

#: The sign-in form's CSRF token lives in its own short cookie (there is no session yet).
LOGIN_CSRF_COOKIE = "sb_login_csrf"


def _login_page(request: Request, error: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", None, status=status, csrf_token=token, error=error)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=600, path="/ui", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.get("/ui")
@router.get("/ui/")
async def home(request: Request) -> Response:
    session = await current(request)
    target = "/ui/login" if session is None else "/ui/usage"
    return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)


@router.get("/ui/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = await form_data(request)
    if not csrf_ok_login(request, first(form, "csrf_token")):
        return csrf_refused(request, None)
    credential = first(form, "api_key")
    if not credential:
        return _login_page(request, "Paste the master key or a virtual key (sk-...).", 400)
    gw: Gateway = request.app.state.gateway
    try:
        key = await gw.verify(credential)
    except ServiceError as err:
        return _login_page(request, f"Not signed in: {err.error.message}", 401)
    label = "admin" if key.is_admin and not key.key_id else (key.key_alias or key.key_id)
    cookie, _ = store(request).create(credential, is_admin=key.is_admin, key_id=key.key_id, label=label)
    response = RedirectResponse("/ui/usage", status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(COOKIE_NAME, cookie, max_age=SESSION_SECONDS, path="/ui", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
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
    store(request).destroy(request.cookies.get(COOKIE_NAME))
    response = RedirectResponse("/ui/login", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE_NAME, path="/ui")
    return response
