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

from switchboard_auth.client import KeySpec, Limits, TeamSpec
from switchboard_common.errors import ServiceError
from switchboard_facade.errors import invalid
from switchboard_rules import fields

KEY_FIELDS = set(fields.KEY_JSON_FIELDS)
TEAM_FIELDS = set(fields.TEAM_JSON_FIELDS)
#: LiteLLM fields accepted and ignored, so that existing scripts keep working.
_IGNORED = {"user_id", "tags", "send_invite_email", "members_with_roles", "organization_id"}
#: JSON name → contract name, where they differ.
_CONTRACT = {**{k: v for k, v in fields.LIMITS.items() if k != v}, **{k: v for k, v in fields.KEY.items() if k != v}}


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


def _check_known(body: dict[str, Any], known: set[str], extra: set[str]) -> None:
    unknown = sorted(set(body) - known - extra - _IGNORED)
    if unknown:
        close = get_close_matches(unknown[0], known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise invalid(f"Unknown field(s): {', '.join(unknown)}.{hint} Known fields: {', '.join(sorted(known))}.",
                      unknown[0], "unknown_field")


def limits(body: dict[str, Any]) -> Limits:
    out = Limits(budget_duration=_str(body, "budget_duration"))
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
    """The contract names of the fields present in an update body."""
    fields = [_CONTRACT.get(name, name) for name in body if name in known and name not in ("team_id",)]
    return fields


def key_spec(body: dict[str, Any], extra: frozenset[str] = frozenset({"key"})) -> KeySpec:
    _check_known(body, KEY_FIELDS, set(extra))
    if body.get("duration") is not None and body.get("expires") is not None:
        raise invalid("Give either 'duration' (relative, e.g. \"30d\") or 'expires' (a date-time), not both.",
                      "duration", "conflicting_fields")
    return KeySpec(
        key_alias=_str(body, "key_alias"), models=_models(body), limits=limits(body), duration=_str(body, "duration"),
        expires_at=_expires(body), team_id=_str(body, "team_id"), privacy_tier=_str(body, "privacy_tier"),
        pii_policy=_str(body, "pii_policy"), metadata=_metadata(body), is_admin=_bool(body, "is_admin"),
        provider_credentials=_provider_credentials(body), jurisdictions=_jurisdictions(body),
    )


def key_update(body: dict[str, Any], *, changes_required: bool = True) -> tuple[str, KeySpec, list[str]]:
    """``/key/update`` (and ``/key/regenerate``, where changes are optional): the key named, the new values, and
    which fields change."""
    ref = key_ref(body)
    spec = key_spec(body)
    changed = update_fields(body, KEY_FIELDS - {"team_id"})
    if "team_id" in body:
        changed.append("team_id")
    if not changed and changes_required:
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
    _check_known(body, TEAM_FIELDS, set())
    return TeamSpec(
        team_id=_str(body, "team_id"), team_alias=_str(body, "team_alias"), models=_models(body),
        limits=limits(body), privacy_tier=_str(body, "privacy_tier"), pii_policy=_str(body, "pii_policy"),
        metadata=_metadata(body), blocked=_bool(body, "blocked"), provider_credentials=_provider_credentials(body),
        jurisdictions=_jurisdictions(body),
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


def micros_to_usd(micros: int | None) -> float | None:
    """For JSON answers only (LiteLLM reports budgets as numbers); never used in arithmetic."""
    return None if micros is None else float(Decimal(micros) / 1_000_000)


def require(condition: bool, err: ServiceError) -> None:
    if not condition:
        raise err
