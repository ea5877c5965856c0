"""Who is signed in, and the checks every page and form runs before doing anything."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from switchboard_common.errors import ServiceError
from switchboard_facade import audit_context
from switchboard_facade.errors import status_for
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.ui.render import SECURITY_HEADERS, first, form_data, page
from switchboard_facade.ui.session import COOKIE_NAME, Session, SessionStore, csrf_ok


def store(request: Request) -> SessionStore:
    """The app's session store, made on first use so the UI needs no lifespan hook of its own."""
    state = request.app.state
    existing = getattr(state, "ui_sessions", None)
    if existing is None:
        existing = SessionStore()
        state.ui_sessions = existing
    return existing


async def current(request: Request) -> Session | None:
    """The signed-in session, re-checked with auth (through the key cache) so that a key revoked, blocked or
    expired since sign-in ends its session at the next page."""
    cookie = request.cookies.get(COOKIE_NAME)
    session = store(request).lookup(cookie)
    if session is None:
        return None
    gw: Gateway = request.app.state.gateway
    try:
        await gw.verify(session.credential)
    except ServiceError as err:
        if status_for(err) == 401:
            store(request).destroy(cookie)
            return None
    return session


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
