"""Virtual keys: the list (search, sort, budget bars), create (the key shown once), a key's page (its budgets,
its settings form, block, regenerate, revoke).

Every action goes through the same Gateway.admin calls and admin_input validation as the ``/key/*`` API,
with the signed-in credential as the caller, so the UI can do exactly what the API allows and no more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from switchboard_auth.client import KeyInfo, Limits
from switchboard_common.errors import ServiceError
from switchboard_facade import key_writes
from switchboard_facade.admin_input import key_spec, key_update
from switchboard_facade.admin_views import key_json
from switchboard_facade.gateway import Gateway
from switchboard_facade.ui.budget_bars import standings
from switchboard_facade.ui.choices import choices
from switchboard_facade.ui.display import usd_field
from switchboard_facade.ui.forms import FormError, key_body, message_of
from switchboard_facade.ui.guard import current, keys_post, keys_session, to_signin
from switchboard_facade.ui.names import Directory, directory
from switchboard_facade.ui.render import SECURITY_HEADERS, page
from switchboard_facade.ui.routes.connect import render_connect
from switchboard_facade.ui.session import Session

router = APIRouter()

SORTS = {"alias": "name", "team": "team_name", "spend": "spent", "expires": "expires", "created": "created_at",
         "status": "status"}
ACTIONS = ("edit", "block", "unblock", "regenerate", "revoke")


def form_fields(limits: Limits, jurisdictions: Sequence[str]) -> dict[str, str]:
    """Values as the forms show them: budgets as exact decimals (not floats), jurisdictions as "ca, eu"."""
    return {"max_budget": usd_field(limits.max_budget_micros if limits.HasField("max_budget_micros") else None),
            "max_daily_spend": usd_field(limits.max_daily_spend_micros
                                         if limits.HasField("max_daily_spend_micros") else None),
            "soft_budget": usd_field(limits.soft_budget_micros if limits.HasField("soft_budget_micros") else None),
            "alert_thresholds": ", ".join(str(t) for t in limits.alert_thresholds),
            "jurisdictions": ", ".join(jurisdictions)}


async def key_rows(gw: Gateway, infos: list[KeyInfo], names: Directory) -> list[dict[str, Any]]:
    """Keys as the pages show them: their JSON, names, and billing's standing (spend, budget bars)."""
    found = await standings(gw, [("key", k.key_id, k.limits) for k in infos])
    rows = []
    for info in infos:
        standing = found.get(("key", info.key_id))
        rows.append({**key_json(info), **form_fields(info.limits, info.jurisdictions), "name": names.key(info.key_id),
                     "team_name": names.team(info.team_id) if info.team_id else "", "standing": standing,
                     "spent": standing.spent if standing else 0})
    return rows


async def keys_page(request: Request, session: Session, *, created: dict[str, Any] | None = None,
                    error: str = "", status: int = 200) -> Response:
    gw: Gateway = request.app.state.gateway
    q = request.query_params
    names = await directory(gw, session)
    infos = list(names.keys.values())
    if not names.ok and not error:
        error = "The keys could not be listed (auth did not answer); try again in a moment."
    team = q.get("team_id", "")
    if team:
        infos = [k for k in infos if k.team_id == team]
    keys = await key_rows(gw, infos, names)
    search = q.get("q", "").strip().lower()
    if search:
        keys = [k for k in keys if any(search in str(k.get(f) or "").lower() for f in (
            "key_alias", "key_id", "last_four", "team_id", "team_name", "status"))
                or any(search in m.lower() for m in k["models"])]
    sort = q.get("sort", "created") if q.get("sort") in SORTS else "created"
    field = SORTS[sort]
    keys.sort(key=lambda k: (k.get(field) is None, k.get(field) or ""), reverse=q.get("dir") == "desc")
    return page(request, "keys.html", session, status=status, keys=keys, created=created, error=error,
                search=search, sort=sort, direction=q.get("dir", "asc"), team_filter=names.team(team) if team else "")


@router.get("/ui/keys")
async def list_page(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    return await keys_page(request, session)


async def form_page(request: Request, session: Session, key: dict[str, Any] | None, *, values: Any = None,
                    error: str = "", status: int = 200, notice: str = "") -> Response:
    """The create form (``key`` None) or a key's page."""
    offered = await choices(request, session)
    template = "key.html" if key is not None else "key_new.html"
    return page(request, template, session, status=status, key=key, error=error, choices=offered,
                values=values or {}, notice=notice)


@router.get("/ui/keys/new")
async def new_key_form(request: Request) -> Response:
    session = await keys_session(request)
    if isinstance(session, Response):
        return session
    return await form_page(request, session, None)


@router.post("/ui/keys/create")
async def create(request: Request) -> Response:
    posted = await keys_post(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    gw: Gateway = request.app.state.gateway
    try:
        body = key_body(form)
        if not session.is_admin:  # a self-serve key is the person's own, never an admin key
            body.pop("is_admin", None)
            body["user_id"] = session.user_id
        spec = key_spec(body)
        made = await key_writes.create_key(gw, session.credential, spec)
    except (FormError, ServiceError) as err:
        return await form_page(request, session, None, values=form, error=message_of(err), status=400)
    if not session.is_admin:  # straight to Connect Cursor, filled with the new key (shown this once)
        return await render_connect(request, session, made.key, made.info.key_alias or made.info.key_id)
    return await keys_page(request, session, created={"key": made.key, **key_json(made.info)})


async def _key(request: Request, session: Session, key_id: str) -> dict[str, Any] | None:
    gw: Gateway = request.app.state.gateway
    names = await directory(gw, session)
    info = names.keys.get(key_id)
    if info is None:
        return None
    return (await key_rows(gw, [info], names))[0]


@router.get("/ui/keys/{key_id}")
async def key_page(request: Request, key_id: str) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    key = await _key(request, session, key_id)
    if key is None:
        return page(request, "error.html", session, status=404, title="No such key",
                    message=f"There is no key {key_id!r} that you may see.")
    return await form_page(request, session, key, notice="Saved." if request.query_params.get("saved") else "")


@router.post("/ui/keys/{key_id}/{action}")
async def act(request: Request, key_id: str, action: str) -> Response:
    posted = await keys_post(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    if action not in ACTIONS:
        return page(request, "error.html", session, status=404, message=f"No key action named {action!r}.")
    gw: Gateway = request.app.state.gateway
    who = session.credential
    back = form.get("back", [""])[0]
    target = f"/ui/keys/{key_id}" if back == "key" else "/ui/keys"
    try:
        if action == "revoke":
            await gw.auth.admin.delete_keys(who, [key_id])
            target = "/ui/keys"
        elif action in ("block", "unblock"):
            await gw.auth.admin.set_key_blocked(who, key_id, action == "block")
        elif action == "regenerate":
            made = await key_writes.regenerate_key(gw, who, key_id)
            return await keys_page(request, session, created={"key": made.key, **key_json(made.info)})
        else:
            ref, spec, changed = key_update({"key": key_id, **key_body(form, keep_blank=True)})
            await key_writes.update_key(gw, who, ref, spec, changed)
            target = f"/ui/keys/{key_id}?saved=1"
    except (FormError, ServiceError) as err:
        message = message_of(err)
        key = await _key(request, session, key_id)
        if key is None:
            return await keys_page(request, session, error=message, status=400)
        return await form_page(request, session, key, values=form, error=message, status=400)
    return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
