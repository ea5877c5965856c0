"""Who is signed in, and the checks every page and form runs before doing anything."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from switchboard_auth.client import KeyContext
from switchboard_common.errors import ServiceError
from switchboard_facade import audit_context
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.routes.usage import usage_filters
from switchboard_facade.ui.render import SECURITY_HEADERS, first, form_data, page
from switchboard_facade.ui.session import COOKIE_NAME, Session, csrf_ok


async def current(request: Request) -> Session | None:
    """The signed-in session, re-checked with auth on every page: a session whose key was revoked, blocked or
    expired, or whose user was blocked or deleted, has ended. A master-key session ends too once master-key
    sign-in is turned off (SWITCHBOARD_UI_MASTER_KEY_LOGIN=false)."""
    token = request.cookies.get(COOKIE_NAME)
    if not token:
        return None
    gw: Gateway = request.app.state.gateway
    try:
        info = await gw.auth.admin.get_session(token)
    except ServiceError:  # ended (401), or auth unreachable: the sign-in page says which when used
        return None
    if info.kind == "master" and not gw.settings.ui_master_key_login:
        return None
    return Session.of(token, info)


def to_signin() -> Response:
    return RedirectResponse("/ui/login", status_code=303, headers=SECURITY_HEADERS)


def forbidden(request: Request, session: Session) -> Response:
    return page(request, "error.html", session, status=403,
                message="This page is for the gateway's administrators. Sign in with the master key or an admin key.")


async def checked_form(request: Request, session: Session) -> dict[str, list[str]] | None:
    """The posted form when its CSRF token matches the session's; None otherwise. The changes the form makes are
    recorded as coming from the dashboard (see :mod:`switchboard_facade.audit_context`)."""
    audit_context.begin(request, new_request_id(), audit_context.DASHBOARD)
    form = await form_data(request)
    return form if csrf_ok(session, first(form, "csrf_token")) else None


def csrf_refused(request: Request, session: Session | None) -> Response:
    return page(request, "error.html", session, status=403,
                message="The form's security token is missing or stale. Reload the page and try again.")


async def admin_session(request: Request) -> Session | Response:
    """The signed-in administrator, or the page that sends anyone else away (sign in, or 403)."""
    session = await current(request)
    if session is None:
        return to_signin()
    return session if session.is_admin else forbidden(request, session)


async def admin_post(request: Request) -> tuple[Session, dict[str, list[str]]] | Response:
    """An administrator's posted form with its CSRF token checked, or the page that refuses it."""
    session = await admin_session(request)
    if isinstance(session, Response):
        return session
    form = await checked_form(request, session)
    return (session, form) if form is not None else csrf_refused(request, session)


async def keys_session(request: Request) -> Session | Response:
    """Someone who may manage keys here (an admin any key, a self-serve user their own), or the page that sends
    anyone else away."""
    session = await current(request)
    if session is None:
        return to_signin()
    return session if session.manages_own_keys else forbidden(request, session)


async def keys_post(request: Request) -> tuple[Session, dict[str, list[str]]] | Response:
    """A posted key form of someone who may manage keys, with its CSRF token checked."""
    session = await keys_session(request)
    if isinstance(session, Response):
        return session
    form = await checked_form(request, session)
    return (session, form) if form is not None else csrf_refused(request, session)


async def acting_key(gw: Gateway, session: Session) -> KeyContext:
    """The key context the session's reads run as: the signed-in key's own (from auth, as its requests get it),
    or one standing for the master key or a person signed in by single sign-on."""
    if session.kind == "key":
        return (await gw.auth.admin.get_key(session.credential)).effective
    return session.acting_key()


async def usage_scope(gw: Gateway, session: Session, params: dict[str, str]) -> dict[str, Any]:
    """The usage filters of ``params`` as the session may read them (the same rule as ``GET /usage``): a person
    signed in by single sign-on reads the rows of their own keys."""
    if session.is_person and not session.reads_all:
        params = {**params, "user_id": session.user_id}
    return usage_filters(QueryParams(params), await acting_key(gw, session))
