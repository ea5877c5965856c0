"""Connect Cursor: the three values to paste into Cursor's settings, filled in for this gateway."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_facade.ui.guard import current, to_signin
from switchboard_facade.ui.render import page
from switchboard_facade.ui.routes.models import model_rows

router = APIRouter()


@router.get("/ui/connect")
async def connect_page(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    rows, error = await model_rows(request, session.credential)
    base_url = str(request.base_url).rstrip("/") + "/cursor"
    return page(request, "connect.html", session, base_url=base_url, models=[r["name"] for r in rows], error=error)
