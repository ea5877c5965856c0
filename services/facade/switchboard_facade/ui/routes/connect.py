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
from switchboard_facade.ui.guard import current, to_signin
from switchboard_facade.ui.render import page

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


async def live_models(request: Request, credential: str) -> tuple[list[str], str]:
    """The live models this credential may call (the names to add in Cursor)."""
    gw: Gateway = request.app.state.gateway
    try:
        listed = await gw.list_models(await gw.verify(credential))
    except ServiceError as err:
        return [], err.error.message
    return [m.name for m in listed.models], ""


@router.get("/ui/connect")
async def connect_page(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    gw: Gateway = request.app.state.gateway
    models, error = await live_models(request, session.credential)
    configured = gw.settings.public_url.strip().rstrip("/")
    origin = configured or str(request.base_url).rstrip("/")
    return page(request, "connect.html", session, base_url=origin + "/cursor", origin=origin,
                configured=bool(configured), problem=unreachable_reason(origin), models=models, error=error,
                port=request.url.port or gw.settings.port)
