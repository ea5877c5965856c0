"""Connect Cursor: the base URL to paste (with a warning when Cursor's servers cannot reach it), the key, the
model names, and a button that sends one real streamed request through the gateway's ``/cursor`` path."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_facade.ui.guard import acting_key, checked_form, csrf_refused, current, to_signin
from switchboard_facade.ui.render import first, page
from switchboard_facade.ui.session import Session

router = APIRouter()


def unreachable_reason(url: str) -> str:
    """Why Cursor's servers cannot call ``url`` ("" when they can): a loopback, private or link-local address, a
    bare host name, or plain HTTP."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if host == "localhost" or host.endswith(".localhost") or (address is not None and address.is_loopback):
        return "loopback"
    if address is not None and (address.is_private or address.is_link_local or address.is_unspecified):
        return "private"
    if address is None and ("." not in host or host.endswith((".local", ".internal", ".lan", ".svc"))):
        return "private"
    if parts.scheme != "https":
        return "http"
    return ""


async def live_models(request: Request, session: Session, new_key: str = "") -> tuple[list[str], str]:
    """The live models a new key (else the session's key, or person) may call (the names to add in Cursor)."""
    gw: Gateway = request.app.state.gateway
    try:
        key = await gw.verify(new_key) if new_key else await acting_key(gw, session)
        listed = await gw.list_models(key)
    except ServiceError as err:
        return [], err.error.message
    return [m.name for m in listed.models], ""


@router.get("/ui/connect")
async def connect_page(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    return await render_connect(request, session)


async def render_connect(request: Request, session: Session, new_key: str = "", new_key_name: str = "") -> Response:
    """The page, filled with ``new_key`` when it follows the creation of one (the only time it is shown)."""
    gw: Gateway = request.app.state.gateway
    models, error = await live_models(request, session, new_key)
    configured = gw.settings.public_url.strip().rstrip("/")
    origin = configured or str(request.base_url).rstrip("/")
    return page(request, "connect.html", session, base_url=origin + "/cursor", origin=origin,
                configured=bool(configured), problem=unreachable_reason(origin), models=models, error=error,
                port=request.url.port or gw.settings.port, new_key=new_key, new_key_name=new_key_name)


@router.post("/ui/connect")
async def connect_with_key(request: Request) -> Response:
    """The page filled with a key just created (posted from the key's one-time banner)."""
    session = await current(request)
    if session is None:
        return to_signin()
    form = await checked_form(request, session)
    if form is None:
        return csrf_refused(request, session)
    return await render_connect(request, session, first(form, "key"), first(form, "key_name"))
