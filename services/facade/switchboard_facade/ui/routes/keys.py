"""Virtual Keys: list, search, sort, create (the key shown once), edit limits, block, regenerate, revoke.

Every action goes through the same Gateway.admin calls and admin_input validation as the ``/key/*`` API,
with the signed-in credential as the caller, so the UI can do exactly what the API allows and no more.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from switchboard_auth.client import Limits
from switchboard_billing.client import SummarizeUsageRequest
from switchboard_common.errors import ServiceError
from switchboard_facade import key_writes
from switchboard_facade.admin_input import KEY_FIELDS, key_spec, key_update
from switchboard_facade.admin_views import key_json
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.catalog import fetch_catalog
from switchboard_facade.routes.usage import summarize
from switchboard_facade.ui.guard import checked_form, csrf_refused, current, forbidden, to_signin
from switchboard_facade.ui.render import SECURITY_HEADERS, first, page
from switchboard_facade.ui.session import Session

router = APIRouter()

_COUNT_FIELDS = ("rpm_limit", "tpm_limit", "max_parallel_requests")
_TEXT_FIELDS = ("key_alias", "team_id", "duration", "budget_duration", "privacy_tier", "pii_policy",
                "max_budget", "max_daily_spend", "jurisdictions")
SORTS = {"alias": "key_alias", "team": "team_id", "spend": "spend_micros", "expires": "expires",
         "created": "created_at", "status": "status"}


def budget_micros(limits: Limits) -> int | None:
    return limits.max_budget_micros if limits.HasField("max_budget_micros") else None


class FormError(ValueError):
    pass


def body_from_form(form: dict[str, list[str]], *, keep_blank: bool = False) -> dict[str, Any]:
    """Form fields → the JSON body of ``/key/generate`` or ``/key/update``; blanks are left out (or null)."""
    body: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        if name in form:
            value = first(form, name)
            if value:
                body[name] = value
            elif keep_blank and name not in ("key_alias", "team_id", "duration"):
                body[name] = None
    for name in _COUNT_FIELDS:
        if name in form:
            value = first(form, name)
            if value:
                if not value.isdigit():
                    raise FormError(f"{name.replace('_', ' ')} must be a whole number.")
                body[name] = int(value)
            elif keep_blank:
                body[name] = None
    models = [m.strip() for m in form.get("models", []) if m.strip()]
    extra = [m.strip() for m in first(form, "models_extra").split(",") if m.strip()]
    if "models" in form or "models_extra" in form:
        body["models"] = models + extra
    if first(form, "is_admin") == "on":
        body["is_admin"] = True
    return {k: v for k, v in body.items() if k in KEY_FIELDS}


async def _spend_by_key(gw: Gateway, session: Session) -> dict[str, int]:
    try:
        page_ = await summarize(gw, SummarizeUsageRequest(
            group_by="key", key_id="" if session.is_admin else session.key_id))
    except ServiceError:
        return {}
    return {g.group: g.cost_micros for g in page_.groups}


async def _model_names(request: Request) -> list[str]:
    try:
        catalog = await fetch_catalog(request)
    except ServiceError:
        return []
    return [m.name for m in catalog.models if any(d.servable for d in m.deployments)]


async def _team_ids(gw: Gateway, who: str) -> list[str]:
    try:
        return [t.team_id for t in await gw.auth.admin.list_teams(who)]
    except ServiceError:
        return []


async def keys_page(request: Request, session: Session, *, created: dict[str, Any] | None = None,
                    error: str = "", status: int = 200) -> Response:
    gw: Gateway = request.app.state.gateway
    who = session.credential
    q = request.query_params
    try:
        if session.is_admin:
            infos = await gw.auth.admin.list_keys(who, q.get("team_id", ""))
        else:
            infos = [await gw.auth.admin.get_key(who, session.credential)]
        keys = [{**key_json(k), "budget_micros": budget_micros(k.limits)} for k in infos]
    except ServiceError as err:
        keys, error = [], error or err.error.message
    spend = await _spend_by_key(gw, session)
    for k in keys:
        k["spend_micros"] = spend.get(k["key_id"], 0)
    search = q.get("q", "").strip().lower()
    if search:
        keys = [k for k in keys if any(search in str(k.get(f) or "").lower()
                                       for f in ("key_alias", "key_id", "last_four", "team_id", "status"))
                or any(search in m.lower() for m in k["models"])]
    sort = q.get("sort", "created")
    field = SORTS.get(sort, "created_at")
    keys.sort(key=lambda k: (k.get(field) is None, k.get(field) or ""), reverse=q.get("dir") == "desc")
    return page(request, "keys.html", session, status=status, keys=keys, created=created, error=error, search=search,
                sort=sort, direction=q.get("dir", "asc"), models=await _model_names(request),
                teams=await _team_ids(gw, who) if session.is_admin else [])


@router.get("/ui/keys")
async def list_page(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    return await keys_page(request, session)


@router.post("/ui/keys/create")
async def create(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    if not session.is_admin:
        return forbidden(request, session)
    form = await checked_form(request, session)
    if form is None:
        return csrf_refused(request, session)
    gw: Gateway = request.app.state.gateway
    try:
        spec = key_spec(body_from_form(form))
        made = await key_writes.create_key(gw, session.credential, spec)
    except FormError as err:
        return await keys_page(request, session, error=str(err), status=400)
    except ServiceError as err:
        return await keys_page(request, session, error=err.error.message, status=400)
    return await keys_page(request, session, created={"key": made.key, **key_json(made.info)})


@router.post("/ui/keys/{key_id}/{action}")
async def act(request: Request, key_id: str, action: str) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    if not session.is_admin:
        return forbidden(request, session)
    form = await checked_form(request, session)
    if form is None:
        return csrf_refused(request, session)
    gw: Gateway = request.app.state.gateway
    who = session.credential
    try:
        if action == "revoke":
            await gw.auth.admin.delete_keys(who, [key_id])
        elif action in ("block", "unblock"):
            await gw.auth.admin.set_key_blocked(who, key_id, action == "block")
        elif action == "regenerate":
            made = await gw.auth.admin.regenerate_key(who, key_id)
            return await keys_page(request, session, created={"key": made.key, **key_json(made.info)})
        elif action == "edit":
            body = body_from_form(form, keep_blank=True)
            ref, spec, fields = key_update({"key": key_id, **body})
            await key_writes.update_key(gw, who, ref, spec, fields)
        else:
            return page(request, "error.html", session, status=404, message=f"No key action named {action!r}.")
    except FormError as err:
        return await keys_page(request, session, error=str(err), status=400)
    except ServiceError as err:
        return await keys_page(request, session, error=err.error.message, status=400)
    return RedirectResponse("/ui/keys", status_code=303, headers=SECURITY_HEADERS)
