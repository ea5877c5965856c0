"""Jinja2 rendering with autoescaping on for every template, and the small helpers the pages share."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse

from switchboard_common.errors import ServiceError
from switchboard_facade.errors import status_for
from switchboard_facade.http_input import declared_length, read_body
from switchboard_facade.ui import charts, display
from switchboard_facade.ui.session import Session

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"


@cache
def templates() -> Any:
    """The template environment, built on the first page view: a gateway nobody signs in to never loads Jinja2."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update({
        "money": display.money, "exact_money": display.exact_money, "duration": display.duration,
        "count": display.count, "compact": display.compact, "utc": display.utc, "until": display.until,
        "chart": charts.render,
    })
    env.globals["percent"] = display.percent
    return env


#: Headers on every dashboard page: no framing, no third-party anything, no caching of account data.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def page(request: Request, template: str, session: Session | None, status: int = 200, **context: Any) -> HTMLResponse:
    html = templates().get_template(template).render(session=session, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


#: Largest form a dashboard page posts (a key's settings, a sign-in): far below the API's body limit.
FORM_BYTES = 256 * 1024


async def form_data(request: Request, limit: int = FORM_BYTES) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body as name → values (a select may repeat a name).

    Raises a 413 ServiceError past ``limit`` or the gateway's own limit when lower (from Content-Length before
    reading, or while reading)."""
    limit = min(limit, request.app.state.gateway.settings.max_body_bytes)
    body = await read_body(request.receive, declared_length(request.scope["headers"]), limit,
                           "Dashboard forms are small; check what was pasted.")
    out: dict[str, list[str]] = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        out.setdefault(name, []).append(value)
    return out


def error_page(request: Request, err: ServiceError) -> HTMLResponse:
    """A refusal as a dashboard page, with the status it has in the API."""
    status = status_for(err)
    title = "Too large" if status == 413 else "Not allowed"
    return page(request, "error.html", None, status=status, message=err.error.message, title=title)


def first(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0].strip()
