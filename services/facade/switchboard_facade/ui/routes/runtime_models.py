"""Models added at run time, from the dashboard: list, add, edit and delete them (admins only).

Every action is the admin API's (``/model/new``, ``/model/update``, ``/model/delete``): the form becomes a
LiteLLM body, checked and stored by the same code, with the signed-in credential as the actor. A provider
key typed in the form is write-only: the page shows its last four characters, and a blank key on edit keeps
the stored one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from switchboard_billing.client import AuditActor
from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_facade.model_input import stored_model
from switchboard_facade.model_views import model_entries
from switchboard_facade.ui.guard import checked_form, csrf_refused, current, forbidden, to_signin
from switchboard_facade.ui.render import SECURITY_HEADERS, first, page
from switchboard_facade.ui.session import Session
from switchboard_rules.catalog.litellm import PROVIDERS

router = APIRouter()
PATH = "/ui/models/runtime"
#: Form fields carried into litellm_params as they are (the gateway's own settings and LiteLLM's).
_PARAMS = ("api_base", "api_key", "input_cost_per_million", "output_cost_per_million", "weight", "jurisdiction",
           "privacy_tier")


def params_from_form(form: dict[str, list[str]]) -> dict[str, Any]:
    """The form's fields as ``litellm_params``; blanks are left out (an edit keeps what is stored)."""
    params: dict[str, Any] = {}
    provider, model = first(form, "provider"), first(form, "model")
    if provider or model:
        params["model"] = f"{provider}/{model}" if provider else model
    for name in _PARAMS:
        value = first(form, name)
        if value:
            params[name] = value
    return params


async def runtime_page(request: Request, session: Session, error: str = "", status: int = 200) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        entries = model_entries(await gw.billing.catalog(), await gw.billing.models.list())
    except ServiceError as err:
        entries, error = [], error or err.error.message
    stored = [e for e in entries if e["switchboard"]["source"] == "api"]
    return page(request, "models_runtime.html", session, status=status, models=stored, error=error,
                providers=sorted(PROVIDERS))


async def _admin_session(request: Request) -> Session | Response:
    session = await current(request)
    if session is None:
        return to_signin()
    if not session.is_admin:
        return forbidden(request, session)
    return session


@router.get(PATH)
async def list_page(request: Request) -> Response:
    session = await _admin_session(request)
    if not isinstance(session, Session):
        return session
    return await runtime_page(request, session)


@router.post(PATH + "/create")
async def create(request: Request) -> Response:
    return await _act(request, "create", "")


@router.post(PATH + "/{model_id}/{action}")
async def act(request: Request, model_id: str, action: str) -> Response:
    return await _act(request, action, model_id)


def session_actor(session: Session) -> tuple[str, AuditActor]:
    """Who changes a model from the dashboard: created_by / updated_by, and the audit log's actor (the signed-in
    key, the person signed in by single sign-on, or the master key)."""
    if session.kind == "key":
        return session.key_id, AuditActor(kind="key", key_id=session.key_id, user_id=session.user_id)
    if session.kind == "user":
        return session.user_id, AuditActor(kind="user", user_id=session.user_id)
    return "master", AuditActor(kind="master", key_id="master")


async def _act(request: Request, action: str, model_id: str) -> Response:
    session = await _admin_session(request)
    if not isinstance(session, Session):
        return session
    form = await checked_form(request, session)
    if form is None:
        return csrf_refused(request, session)
    gw: Gateway = request.app.state.gateway
    try:
        actor, who = session_actor(session)
        if action == "create":
            model, _ = stored_model({"model_name": first(form, "model_name"),
                                     "litellm_params": params_from_form(form)})
            await gw.billing.models.put(model, actor=actor, create_only=True, who=who)
        elif action == "edit":
            existing = next((m for m in (await gw.billing.models.list()).models if m.model_id == model_id), None)
            if existing is None:
                return await runtime_page(request, session, f"No model with id {model_id!r}.", 404)
            model, _ = stored_model({"litellm_params": params_from_form(form)}, existing)
            await gw.billing.models.put(model, actor=actor, update_only=True, who=who)
        elif action == "delete":
            await gw.billing.models.delete(model_id, who)
        else:
            return page(request, "error.html", session, status=404, message=f"No model action named {action!r}.")
    except ServiceError as err:
        return await runtime_page(request, session, err.error.message, 400)
    return RedirectResponse(PATH, status_code=303, headers=SECURITY_HEADERS)
