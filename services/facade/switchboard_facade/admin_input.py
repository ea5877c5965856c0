"""Validation of admin API bodies (LiteLLM-shaped JSON) into the auth contract.

Every wrong type or value raises a 400 naming the field and what is expected;
nothing is sent to auth until the whole body is valid.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from switchboard.v1 import auth_pb2
from switchboard_common.errors import ServiceError
from switchboard_facade.errors import invalid

KEY_FIELDS = {
    "key_alias", "models", "duration", "expires", "max_budget", "budget_duration", "max_daily_spend", "rpm_limit",
    "tpm_limit", "max_parallel_requests", "privacy_tier", "pii_policy", "metadata", "team_id",
}


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid(f"'{name}' must be a string.", name, "invalid_type")
    return value


def _count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"'{name}' must be a whole number (or null for no limit).", name, "invalid_type")
    if value < 0:
        raise invalid(f"'{name}' must not be negative.", name, "invalid_value")
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
    if not amount.is_finite() or amount < 0:
        raise invalid(f"'{name}' must be a non-negative amount in USD.", name, "invalid_value")
    return int((amount * 1_000_000).to_integral_value())


def key_spec(body: dict[str, Any]) -> auth_pb2.KeySpec:
    unknown = sorted(set(body) - KEY_FIELDS - {"key", "user_id", "tags", "send_invite_email"})
    if unknown:
        raise invalid(f"Unknown field(s): {', '.join(unknown)}. Known fields: {', '.join(sorted(KEY_FIELDS))}.",
                      unknown[0], "unknown_field")
    models = body.get("models")
    if models is None:
        models = []
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise invalid("'models' must be a list of model names (wildcards such as 'anthropic/*' allowed).", "models",
                      "invalid_type")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise invalid("'metadata' must be an object.", "metadata", "invalid_type")
    limits = auth_pb2.Limits(budget_duration=_str(body, "budget_duration"))
    for name in ("rpm_limit", "tpm_limit", "max_parallel_requests"):
        value = _count(body, name)
        if value is not None:
            setattr(limits, name, value)
    for name, field in (("max_budget", "max_budget_micros"), ("max_daily_spend", "max_daily_spend_micros")):
        micros = usd_to_micros(body.get(name), name)
        if micros is not None:
            setattr(limits, field, micros)
    spec = auth_pb2.KeySpec(
        key_alias=_str(body, "key_alias"), models=models, limits=limits, duration=_str(body, "duration"),
        team_id=_str(body, "team_id"), privacy_tier=_str(body, "privacy_tier"), pii_policy=_str(body, "pii_policy"),
        metadata={str(k): v if isinstance(v, str) else _json(v) for k, v in metadata.items()},
    )
    return spec


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


def micros_to_usd(micros: int | None) -> float | None:
    """For JSON answers only (LiteLLM reports budgets as numbers); never used in arithmetic."""
    return None if micros is None else float(Decimal(micros) / 1_000_000)


def require(condition: bool, err: ServiceError) -> None:
    if not condition:
        raise err
