"""Validation of admin API bodies (LiteLLM-shaped JSON) into the auth contract.

Every wrong type or value raises a 400 naming the field and what is expected;
nothing is sent to auth until the whole body is valid. For updates, only the
fields present in the body change; ``null`` clears a limit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from difflib import get_close_matches
from typing import Any

import orjson

from switchboard_auth.client import KeySpec, Limits, ModelBudget, TeamMember, TeamSpec, UserSpec
from switchboard_common.errors import ServiceError
from switchboard_facade.errors import invalid
from switchboard_rules import fields
from switchboard_rules.alert_thresholds import ThresholdError, normalize, parse_thresholds
from switchboard_rules.policies import policy_for_guardrails

KEY_FIELDS = set(fields.KEY_JSON_FIELDS)
TEAM_FIELDS = set(fields.TEAM_JSON_FIELDS)
USER_FIELDS = set(fields.USER_JSON_FIELDS)
#: LiteLLM fields of keys and teams that map to the gateway's own: guardrails (PII policy), blocked (a key's status).
_MAPPED = {"guardrails", "blocked"}
#: JSON name → contract name, where they differ.
_CONTRACT = {**{k: v for k, v in {**fields.LIMITS, **fields.KEY, **fields.TEAM}.items() if k != v}}


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid(f"'{name}' must be a string.", name, "invalid_type")
    return value


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(f"'{name}' must be true or false.", name, "invalid_type")
    return value


#: The largest number the contract carries (a signed 64-bit integer): limits and micro-dollar amounts.
INT64_MAX = 2**63 - 1
#: The largest USD amount, as micro-dollars fit in the contract.
MAX_USD = Decimal(INT64_MAX) / 1_000_000


def _count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"'{name}' must be a whole number (or null for no limit).", name, "invalid_type")
    if not 0 <= value <= INT64_MAX:
        raise invalid(f"'{name}' must be a whole number from 0 to {INT64_MAX} (or null for no limit).", name,
                      "invalid_value")
    return value


def usd_to_micros(value: Any, name: str) -> int | None:
    """USD amounts (numbers or decimal strings) to integer micro-dollars, exactly."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise invalid(f"'{name}' must be an amount in USD, e.g. 25 or \"12.50\".", name, "invalid_type")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise invalid(f"'{name}' must be an amount in USD, e.g. 25 or \"12.50\".", name, "invalid_type") from None
    if not amount.is_finite() or not 0 <= amount <= MAX_USD:
        raise invalid(f"'{name}' must be an amount in USD from 0 to {MAX_USD:.6f}.", name, "invalid_value")
    if 0 < amount < Decimal("0.000001"):
        raise invalid(f"'{name}' is below one micro-dollar ({value}); budgets are counted in micro-dollars: give at "
                      "least 0.000001 USD, or 0 to allow nothing.", name, "invalid_value")
    return int((amount * 1_000_000).to_integral_value())


def _models(body: dict[str, Any]) -> list[str]:
    models = body.get("models")
    if models is None:
        return []
    if not isinstance(models, list) or not all(isinstance(m, str) and m.strip() for m in models):
        raise invalid("'models' must be a list of model names (wildcards such as 'anthropic/*' and access groups "
                      "allowed).", "models", "invalid_type")
    return models


def _jurisdictions(body: dict[str, Any]) -> list[str]:
    """``["ca", "eu"]`` or ``"ca,eu"`` (``"*"``: any); auth checks the names and writes them in one form."""
    value = body.get("jurisdictions")
    if value is None:
        return []
    if isinstance(value, str):
        return [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(j, str) and j.strip() for j in value):
        raise invalid("'jurisdictions' must be a list of jurisdiction names such as [\"ca\", \"eu\"] (or [\"*\"] for "
                      "any).", "jurisdictions", "invalid_type")
    return value


def _metadata(body: dict[str, Any]) -> dict[str, str]:
    metadata = body.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise invalid("'metadata' must be an object.", "metadata", "invalid_type")
    return {str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in metadata.items()}


def _provider_credentials(body: dict[str, Any]) -> dict[str, str]:
    """Bring your own key: ``{"openai": "sk-..."}``; write-only, sealed by auth, never shown again."""
    value = body.get("provider_credentials")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and k and isinstance(v, str) and v
                                              for k, v in value.items()):
        raise invalid("'provider_credentials' must map provider names to API keys, e.g. "
                      "{\"openai\": \"sk-...\"}.", "provider_credentials", "invalid_type")
    return dict(value)


def _expires(body: dict[str, Any]) -> int:
    value = body.get("expires")
    if value is None:
        return 0
    if not isinstance(value, str):
        raise invalid("'expires' must be an ISO 8601 date-time, e.g. \"2027-01-31T00:00:00Z\".", "expires",
                      "invalid_type")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"'expires' is not an ISO 8601 date-time: {value!r}.", "expires", "invalid_value") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.timestamp() <= datetime.now(UTC).timestamp():
        raise invalid("'expires' must be in the future.", "expires", "invalid_value")
    return int(parsed.timestamp())


def _check_known(body: dict[str, Any], known: set[str], extra: set[str] | frozenset[str],
                 ignored: frozenset[str] = frozenset()) -> None:
    unknown = sorted(set(body) - known - set(extra) - ignored)
    if unknown:
        close = get_close_matches(unknown[0], known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise invalid(f"Unknown field(s): {', '.join(unknown)}.{hint} Known fields: {', '.join(sorted(known))}.",
                      unknown[0], "unknown_field")


#: LiteLLM's default values of fields that are not empty by default (sending them asks for nothing).
_LITELLM_DEFAULTS = {"key_type": "default", "user_role": "internal_user"}


def _given(value: Any) -> bool:
    """A value that asks for something (LiteLLM's scripts send nulls, zeros and empty objects for defaults)."""
    return value is not None and value is not False and value != 0 and value not in ("", [], {})


def ignored_fields(body: dict[str, Any], ignored: frozenset[str]) -> list[str]:
    """The LiteLLM fields of ``body`` that ask for something the gateway does not do (the answer's
    ``ignored_fields``); guardrails that map to no PII policy included."""
    names = {name for name in body if name in ignored and _given(body[name])
             and body[name] != _LITELLM_DEFAULTS.get(name)}
    if "guardrails" in body and guardrails_policy(body)[1]:
        names.add("guardrails")
    return sorted(names)


def guardrails_policy(body: dict[str, Any]) -> tuple[str, list[str]]:
    """The PII policy the body's LiteLLM ``guardrails`` ask for ("" for none) and the names that map to none."""
    names = body.get("guardrails")
    if names is None:
        return "", []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise invalid("'guardrails' must be a list of guardrail names.", "guardrails", "invalid_type")
    policy, unknown = policy_for_guardrails(names)
    return (policy.value if policy is not None else ""), unknown


def blocked(body: dict[str, Any]) -> bool | None:
    """LiteLLM's ``blocked`` on a key: True blocks it, False unblocks it, absent or null leaves it."""
    return None if body.get("blocked") is None else _bool(body, "blocked")


def _names(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise invalid(f"'{name}' must be a list of non-empty strings.", name, "invalid_type")
    return list(value)


def _aliases(body: dict[str, Any], name: str) -> dict[str, str]:
    """``{"my-name": "public-model"}``: a key's ``aliases`` or a team's ``model_aliases``."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip()
                                              for k, v in value.items()):
        raise invalid(f"'{name}' must map model names to public model names, e.g. {{\"my-model\": \"gpt-4o\"}}.",
                      name, "invalid_type")
    return dict(value)


def _model_counts(body: dict[str, Any], name: str) -> dict[str, int]:
    """LiteLLM's ``model_rpm_limit`` / ``model_tpm_limit``: ``{"gpt-4o": 10}``, per public model name."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.strip() for k in value):
        raise invalid(f"'{name}' must map model names to whole numbers, e.g. {{\"gpt-4o\": 10}}.", name,
                      "invalid_type")
    return {model: count for model in value if (count := _count(value, model)) is not None}


def _model_budgets(body: dict[str, Any]) -> dict[str, ModelBudget]:
    """LiteLLM's ``model_max_budget``: ``{"gpt-4o": {"budget_limit": 10, "time_period": "30d"}}``, or a plain
    amount per model (``{"gpt-4o": 10}``: the key's ``budget_duration`` is its window)."""
    name = "model_max_budget"
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.strip() for k in value):
        raise invalid(f"'{name}' must map model names to budgets, e.g. "
                      "{\"gpt-4o\": {\"budget_limit\": 10, \"time_period\": \"30d\"}}.", name, "invalid_type")
    out: dict[str, ModelBudget] = {}
    for model, entry in value.items():
        where = f"{name}.{model}"
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - {"budget_limit", "time_period"})
            if unknown:
                raise invalid(f"'{where}' takes 'budget_limit' (USD) and 'time_period' (e.g. \"30d\"); "
                              f"'{unknown[0]}' is not one of them.", where, "unknown_field")
            amount, period = entry.get("budget_limit"), entry.get("time_period")
            if period is not None and not isinstance(period, str):
                raise invalid(f"'{where}.time_period' must be a duration such as \"1d\" or \"30d\".",
                              where + ".time_period", "invalid_type")
        else:
            amount, period = entry, body.get("budget_duration")
        micros = usd_to_micros(amount, where)
        if micros is None:
            raise invalid(f"'{where}' needs a budget_limit in USD.", where, "invalid_value")
        out[model] = ModelBudget(max_budget_micros=micros, budget_duration=period if isinstance(period, str) else "")
    return out


def members(value: Any, name: str = "members_with_roles") -> list[TeamMember]:
    """LiteLLM's ``[{"role": "admin" | "user", "user_id": "...", "user_email": "..."}]`` (one object alone too)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise invalid(f"'{name}' must hold objects like {{\"role\": \"user\", \"user_id\": \"...\"}}.", name,
                          "invalid_type")
        user_id, email = item.get("user_id") or item.get("user_email"), item.get("user_email") or ""
        role = item.get("role", "user")
        if not isinstance(user_id, str) or not user_id or not isinstance(email, str) or role not in \
                fields.TEAM_MEMBER_ROLES:
            raise invalid(f"Each member of '{name}' needs a user_id (or user_email) and a role of "
                          f"{' or '.join(fields.TEAM_MEMBER_ROLES)}.", name, "invalid_member")
        out.append(TeamMember(user_id=user_id, role=role, user_email=email))
    return out


def alert_thresholds(body: dict[str, Any]) -> list[int]:
    """``alert_thresholds``: a list of whole percentages (``[50, 90]``) or the same as text (``"50,90"``); null or
    absent: none of its own (the gateway's)."""
    value = body.get("alert_thresholds")
    try:
        if value is None:
            return []
        if isinstance(value, str):
            return list(parse_thresholds(value)) if value.strip() else []
        if isinstance(value, list):
            return list(normalize(value))
        raise ThresholdError("alert thresholds must be a list of percentages like [50, 80, 100]")
    except ThresholdError as exc:
        raise invalid(f"'alert_thresholds': {exc}.", "alert_thresholds", "invalid_value") from None


def limits(body: dict[str, Any]) -> Limits:
    out = Limits(budget_duration=_str(body, "budget_duration"), alert_thresholds=alert_thresholds(body))
    for name in fields.COUNT_LIMITS:
        value = _count(body, name)
        if value is not None:
            setattr(out, name, value)
    for name in fields.MONEY_LIMITS:
        micros = usd_to_micros(body.get(name), name)
        if micros is not None:
            setattr(out, _CONTRACT[name], micros)
    return out


def update_fields(body: dict[str, Any], known: set[str]) -> list[str]:
    """The contract names of the fields present in an update body (``pii_policy`` too when guardrails set one)."""
    changed = [_CONTRACT.get(name, name) for name in body if name in known and name not in ("team_id", "user_id")]
    if "pii_policy" not in body and guardrails_policy(body)[0]:
        changed.append("pii_policy")
    return changed


def _pii_policy(body: dict[str, Any]) -> str:
    """The body's pii_policy, else the one its LiteLLM guardrails ask for."""
    return _str(body, "pii_policy") or guardrails_policy(body)[0]


def key_spec(body: dict[str, Any], extra: frozenset[str] = frozenset({"key"})) -> KeySpec:
    _check_known(body, KEY_FIELDS, set(extra) | _MAPPED, fields.KEY_IGNORED)
    if body.get("duration") is not None and body.get("expires") is not None:
        raise invalid("Give either 'duration' (relative, e.g. \"30d\") or 'expires' (a date-time), not both.",
                      "duration", "conflicting_fields")
    return KeySpec(
        key_alias=_str(body, "key_alias"), models=_models(body), limits=limits(body), duration=_str(body, "duration"),
        expires_at=_expires(body), team_id=_str(body, "team_id"), privacy_tier=_str(body, "privacy_tier"),
        pii_policy=_pii_policy(body), metadata=_metadata(body), is_admin=_bool(body, "is_admin"),
        provider_credentials=_provider_credentials(body), jurisdictions=_jurisdictions(body),
        user_id=_str(body, "user_id"), model_aliases=_aliases(body, "aliases"), tags=_names(body, "tags"),
        model_rpm_limits=_model_counts(body, "model_rpm_limit"),
        model_tpm_limits=_model_counts(body, "model_tpm_limit"), model_max_budgets=_model_budgets(body),
    )


def plain_key(body: dict[str, Any], name: str = "key") -> str:
    """The plain key a body asks for (LiteLLM's ``key`` on /key/generate, ``new_key`` on /key/regenerate): "" for
    a generated one."""
    return _str(body, name)


def key_update(body: dict[str, Any], *, changes_required: bool = True) -> tuple[str, KeySpec, list[str]]:
    """``/key/update`` (and ``/key/regenerate``, where changes are optional): the key named, the new values, and
    which fields change."""
    ref = key_ref(body)
    spec = key_spec(body, frozenset({"key", "new_key"}))
    changed = update_fields(body, KEY_FIELDS)
    changed += [name for name in ("team_id", "user_id") if name in body]
    if not changed and changes_required and blocked(body) is None:
        raise invalid(f"Nothing to update: give at least one of {', '.join(sorted(KEY_FIELDS))}.", None,
                      "nothing_to_update")
    return ref, spec, changed


def key_ref(body: dict[str, Any], name: str = "key") -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"'{name}' is required: the key_id (\"key_...\") or the key itself.", name,
                      "missing_key")
    return value.strip()


def team_spec(body: dict[str, Any]) -> TeamSpec:
    _check_known(body, TEAM_FIELDS, {"guardrails"}, fields.TEAM_IGNORED)
    return TeamSpec(
        team_id=_str(body, "team_id"), team_alias=_str(body, "team_alias"), models=_models(body),
        limits=limits(body), privacy_tier=_str(body, "privacy_tier"), pii_policy=_pii_policy(body),
        metadata=_metadata(body), blocked=_bool(body, "blocked"), provider_credentials=_provider_credentials(body),
        jurisdictions=_jurisdictions(body), model_aliases=_aliases(body, "model_aliases"),
        members=members(body.get("members_with_roles")), tags=_names(body, "tags"),
    )


def team_update(body: dict[str, Any]) -> tuple[TeamSpec, list[str]]:
    spec = team_spec(body)
    if not spec.team_id:
        raise invalid("'team_id' is required: the team to update.", "team_id", "missing_team_id")
    changed = update_fields(body, TEAM_FIELDS)
    if not changed:
        raise invalid(f"Nothing to update: give at least one of {', '.join(sorted(TEAM_FIELDS - {'team_id'}))}.",
                      None, "nothing_to_update")
    return spec, changed


def user_spec(body: dict[str, Any], extra: frozenset[str] = fields.USER_NEW_EXTRAS) -> UserSpec:
    """``/user/new`` and ``/user/update``: the user's own fields and budgets."""
    _check_known(body, USER_FIELDS, extra | {"guardrails"}, fields.USER_IGNORED)
    role = _str(body, "user_role")
    if role and role not in fields.USER_ROLES:
        raise invalid(f"'user_role' must be one of {', '.join(fields.USER_ROLES)}.", "user_role", "invalid_value")
    return UserSpec(
        user_id=_str(body, "user_id"), user_alias=_str(body, "user_alias"), user_email=_str(body, "user_email"),
        user_role=role, models=_models(body), limits=limits(body), metadata=_metadata(body),
        blocked=_bool(body, "blocked"))


def user_update(body: dict[str, Any]) -> tuple[UserSpec, list[str]]:
    spec = user_spec(body)
    if not spec.user_id:
        raise invalid("'user_id' is required: the user to update.", "user_id", "missing_user_id")
    changed = [_CONTRACT.get(name, name) for name in body if name in USER_FIELDS and name != "user_id"]
    if not changed:
        raise invalid(f"Nothing to update: give at least one of {', '.join(sorted(USER_FIELDS - {'user_id'}))}.",
                      None, "nothing_to_update")
    return spec, changed


def user_ignored(body: dict[str, Any], also: frozenset[str] = frozenset()) -> list[str]:
    """A user body's LiteLLM fields without effect here (``also``: more of them for this route), its guardrails
    included (a user has no PII policy)."""
    names = set(ignored_fields(body, fields.USER_IGNORED | also))
    if _given(body.get("guardrails")):
        names.add("guardrails")
    return sorted(names)


def only_ids(body: dict[str, Any], name: str, path: str) -> list[str]:
    """The ids of a delete body that takes nothing else (``{"team_ids": [...]}``, ``{"user_ids": [...]}``)."""
    ids = body.get(name)
    what = name.removesuffix("_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise invalid(f"'{name}' is required: a non-empty list of {what} ids.", name, f"missing_{name}")
    unknown = sorted(set(body) - {name})
    if unknown:
        raise invalid(f"Unknown field(s): {', '.join(unknown)}. {path} takes only '{name}'.", unknown[0],
                      "unknown_field")
    return ids


def micros_to_usd(micros: int | None) -> float | None:
    """For JSON answers only (LiteLLM reports budgets as numbers); never used in arithmetic."""
    return None if micros is None else float(Decimal(micros) / 1_000_000)


def require(condition: bool, err: ServiceError) -> None:
    if not condition:
        raise err
