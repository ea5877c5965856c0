"""LiteLLM's ``/model/new`` and ``/model/update`` bodies as a stored deployment (billing's ``StoredModel``).

The body is LiteLLM's (``model_name``, ``litellm_params``, ``model_info``); the deployment is converted to the
catalog's grammar by the shared reader (:func:`switchboard_rules.catalog.litellm.convert_deployment`), the
same conversion a LiteLLM ``config.yaml`` goes through. Credentials given as values (``api_key``, AWS and
Vertex secrets) leave ``litellm_params`` here and travel as the model's write-only secrets; given as
``os.environ/VAR`` they stay, as references are no secret. An update is laid over what is stored: the
``litellm_params`` and ``model_info`` keys it sends replace theirs, a credential it leaves out keeps its
value.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from switchboard_billing.client import StoredModel
from switchboard_facade.errors import invalid
from switchboard_rules.catalog.litellm import SECRET_PARAMS, LiteLLMError, convert_deployment, is_env_reference

#: Top-level fields of LiteLLM's deployment body this gateway reads.
_FIELDS = ("model_name", "litellm_params", "model_info")


def _mapping(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid(f"'{name}' must be a JSON object.", name, "invalid_type")
    return dict(value)


def _loads(text: str) -> dict[str, Any]:
    value = orjson.loads(text or "{}")
    return value if isinstance(value, dict) else {}


def model_id_of(body: Mapping[str, Any]) -> str:
    """The id an update or delete names: ``model_info.id`` (LiteLLM's /model/update) or ``id``."""
    info = body.get("model_info")
    found = info.get("id") if isinstance(info, Mapping) else None
    found = found or body.get("id") or body.get("model_id")
    if not isinstance(found, str) or not found.strip():
        raise invalid("Name the model: 'id' (or model_info.id), as /model/info lists it.", "id", "missing_id")
    return found.strip()


def stored_model(body: Mapping[str, Any], existing: StoredModel | None = None,
                 model_id: str = "") -> tuple[StoredModel, list[str]]:
    """The stored deployment a body asks for (laid over ``existing`` for an update), and the body's fields this
    gateway does not read (reported as ``ignored_fields``); raises the 400 ServiceError of a bad body."""
    params = _mapping(body, "litellm_params")
    info = _mapping(body, "model_info")
    name = body.get("model_name")
    if existing is not None:
        params = {**_loads(existing.litellm_params_json), **params}
        info = {**_loads(existing.model_info_json), **info}
        name = name or existing.model_name
    if not isinstance(name, str) or not name.strip():
        raise invalid("'model_name' is required: the public name clients will send as 'model'.", "model_name",
                      "missing_model_name")
    if not params:
        raise invalid("'litellm_params' is required, with at least 'model' (e.g. openai/gpt-4o).", "litellm_params",
                      "missing_litellm_params")
    model_id = model_id or (existing.model_id if existing is not None else "") or str(info.get("id") or "")
    model_id = model_id or str(uuid.uuid4())
    info["id"] = model_id
    secrets = {key: str(params.pop(key)) for key in SECRET_PARAMS
               if params.get(key) is not None and not is_env_reference(params[key])}
    try:
        config, left = convert_deployment(name.strip(), params, info, "model")
    except LiteLLMError as exc:
        raise invalid(f"{exc}.", "litellm_params", "invalid_model") from None
    kept = set(existing.secret_hints) if existing is not None else set()
    for key in kept & set(params):
        secrets[key] = ""  # a reference now replaces the stored value: it is dropped
    for key in (kept | set(secrets)) - {key for key, value in secrets.items() if not value}:
        config.pop(key, None)  # the stored credential is used, not the provider's default variable
    config["id"] = model_id
    ignored = [f"litellm_params.{key}" for key in left] + [key for key in body if key not in _FIELDS
                                                          and key not in ("id", "model_id")]
    return StoredModel(model_id=model_id, model_name=name.strip(), config_json=orjson.dumps(config).decode(),
                       litellm_params_json=orjson.dumps(params).decode(), model_info_json=orjson.dumps(info).decode(),
                       secrets=secrets), ignored
