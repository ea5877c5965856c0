"""How keys, teams and users look in the admin API's JSON (LiteLLM's field names), their spend included.

LiteLLM's scripts and dashboards read ``info.spend``, ``info.max_budget`` and
``info.budget_reset_at``; so do these answers. Spend is billing's (the current
budget window's, or all time when the key has no windowed budget), with today's
spend next to ``max_daily_spend``; amounts are USD numbers, for display only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from switchboard_auth.client import KeyInfo, Limits, TeamInfo, TeamMember, UserInfo
from switchboard_billing.client import SubjectBudgets
from switchboard_common.errors import ServiceError
from switchboard_facade.admin_input import micros_to_usd
from switchboard_facade.gateway import Gateway


def iso(ts: int) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts else None


def iso_ms(ms: int) -> str | None:
    return iso(ms // 1000) if ms else None


def limits_json(limits: Limits) -> dict[str, Any]:
    def opt(name: str) -> int | None:
        return getattr(limits, name) if limits.HasField(name) else None

    return {
        "rpm_limit": opt("rpm_limit"),
        "tpm_limit": opt("tpm_limit"),
        "max_parallel_requests": opt("max_parallel_requests"),
        "max_budget": micros_to_usd(opt("max_budget_micros")),
        "budget_duration": limits.budget_duration or None,
        "max_daily_spend": micros_to_usd(opt("max_daily_spend_micros")),
        "min_output_tokens": opt("min_output_tokens"),
        "soft_budget": micros_to_usd(opt("soft_budget_micros")),
        "alert_thresholds": list(limits.alert_thresholds) or None,
    }


def spend_json(standing: SubjectBudgets | None) -> dict[str, Any]:
    """``spend`` (USD, current window), ``budget_reset_at``, ``daily_spend`` and ``daily_spend_reset_at``."""
    if standing is None:
        return {"spend": None, "budget_reset_at": None, "daily_spend": None, "daily_spend_reset_at": None}
    return {
        "spend": micros_to_usd(standing.spent_micros),
        "spend_micros": standing.spent_micros,
        "budget_reset_at": iso_ms(standing.resets_at_ms),
        "daily_spend": micros_to_usd(standing.today_micros),
        "daily_spend_reset_at": iso_ms(standing.today_resets_at_ms),
    }


def effective_json(info: KeyInfo) -> dict[str, Any] | None:
    """What the key's requests get, and where each value comes from ("key", "team", "gateway")."""
    if not info.HasField("effective"):
        return None
    ctx = info.effective
    return {
        "models": list(ctx.models),
        "privacy_tier": ctx.privacy_tier or None,
        "privacy_tier_source": info.privacy_tier_source or None,
        "jurisdictions": list(ctx.jurisdictions),
        "jurisdictions_source": info.jurisdictions_source or None,
        "pii_policy": ctx.pii_policy or None,
    }


def key_json(info: KeyInfo, standing: SubjectBudgets | None = None) -> dict[str, Any]:
    return {
        "key_id": info.key_id,
        "token": info.key_id,
        "key_alias": info.key_alias or None,
        "key_name": f"{info.key_prefix or 'sk-'}...{info.last_four}",
        "last_four": info.last_four,
        "team_id": info.team_id or None,
        "models": list(info.models),
        **limits_json(info.limits),
        **spend_json(standing),
        "privacy_tier": info.privacy_tier or None,
        "jurisdictions": list(info.jurisdictions),
        "pii_policy": info.pii_policy or None,
        "effective": effective_json(info),
        "provider_credentials": dict(info.provider_credential_hints),
        "metadata": dict(info.metadata),
        "user_id": info.user_id or None,
        "aliases": dict(info.model_aliases),
        "tags": list(info.tags),
        "model_rpm_limit": dict(info.model_rpm_limits),
        "model_tpm_limit": dict(info.model_tpm_limits),
        "model_max_budget": {model: {"budget_limit": micros_to_usd(b.max_budget_micros),
                                     "time_period": b.budget_duration or None}
                             for model, b in info.model_max_budgets.items()},
        "is_admin": info.is_admin,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
        "expires": iso(info.expires_at),
        "status": info.status,
        "blocked": info.status == "blocked",
    }


def team_json(info: TeamInfo, standing: SubjectBudgets | None = None) -> dict[str, Any]:
    return {
        "team_id": info.team_id,
        "team_alias": info.team_alias or None,
        "models": list(info.models),
        **limits_json(info.limits),
        **spend_json(standing),
        "privacy_tier": info.privacy_tier or None,
        "jurisdictions": list(info.jurisdictions),
        "pii_policy": info.pii_policy or None,
        "provider_credentials": dict(info.provider_credential_hints),
        "metadata": dict(info.metadata),
        "model_aliases": dict(info.model_aliases),
        "members_with_roles": [member_json(m) for m in info.members],
        "tags": list(info.tags),
        "blocked": info.blocked,
        "key_count": info.key_count,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
    }


def member_json(member: TeamMember) -> dict[str, Any]:
    return {"user_id": member.user_id, "user_email": member.user_email or None, "role": member.role}


def user_json(info: UserInfo, standing: SubjectBudgets | None = None) -> dict[str, Any]:
    return {
        "user_id": info.user_id,
        "user_alias": info.user_alias or None,
        "user_email": info.user_email or None,
        "user_role": info.user_role,
        "models": list(info.models),
        **limits_json(info.limits),
        **spend_json(standing),
        "metadata": dict(info.metadata),
        "blocked": info.blocked,
        "teams": list(info.teams),
        "key_count": info.key_count,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
    }


async def key_standings(gw: Gateway, keys: Sequence[KeyInfo]) -> list[SubjectBudgets | None]:
    """Billing's standing of each key (None for every key when billing cannot be reached: spend shows null)."""
    return await _standings(gw, [("key", k.key_id, k.limits) for k in keys])


async def team_standings(gw: Gateway, teams: Sequence[TeamInfo]) -> list[SubjectBudgets | None]:
    return await _standings(gw, [("team", t.team_id, t.limits) for t in teams])


async def user_standings(gw: Gateway, users: Sequence[UserInfo]) -> list[SubjectBudgets | None]:
    return await _standings(gw, [("user", u.user_id, u.limits) for u in users])


async def _standings(gw: Gateway, subjects: list[tuple[str, str, Limits]]) -> list[SubjectBudgets | None]:
    if not subjects:
        return []
    try:
        found = {(s.scope, s.subject_id): s for s in await gw.billing.standings(subjects)}
    except ServiceError:
        return [None] * len(subjects)
    return [found.get((scope, subject_id)) for scope, subject_id, _limits in subjects]
