"""Admin input (KeySpec, TeamSpec, UserSpec) checked and applied to rows; rows shown as KeyInfo/TeamInfo/UserInfo.

Validation happens before any write, so a refused change changes nothing.
The facade validates shapes too; these checks hold for every gRPC caller.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from fnmatch import fnmatchcase

from switchboard.v1 import auth_pb2
from switchboard_auth.models import LIMIT_FIELDS, Team, User, VirtualKey
from switchboard_auth.policy import Effective
from switchboard_common.credential_cipher import CredentialCipher, describe
from switchboard_common.errors import Kind, ServiceError
from switchboard_rules.alert_thresholds import ThresholdError, normalize
from switchboard_rules.durations import DurationError, parse_duration
from switchboard_rules.fields import (
    DEFAULT_USER_ROLE,
    KEY_CONTRACT_FIELDS,
    TEAM_CONTRACT_FIELDS,
    TEAM_MEMBER_ROLES,
    USER_CONTRACT_FIELDS,
    USER_ROLES,
)
from switchboard_rules.jurisdictions import JurisdictionError, allows_any, parse_jurisdictions
from switchboard_rules.policies import PII_POLICY_NAMES

PII_POLICIES = ("", *PII_POLICY_NAMES)
TEAM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$")
#: A user id: LiteLLM's are often e-mail addresses, so '@' and '+' are allowed too.
USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$")
KEY_FIELDS = KEY_CONTRACT_FIELDS
TEAM_FIELDS = TEAM_CONTRACT_FIELDS - {"team_id"}
USER_FIELDS = USER_CONTRACT_FIELDS - {"user_id"}
Spec = auth_pb2.KeySpec | auth_pb2.TeamSpec | auth_pb2.UserSpec


def bad(message: str, param: str, code: str = "invalid_value") -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, message, param=param, code=code)


def check_text(value: str, param: str) -> None:
    """Text is stored as given, and no database stores a NUL character: refuse it (400 naming the field)."""
    if "\x00" in value:
        raise bad(f"'{param}' must not contain NUL (\\u0000) characters.", param, "invalid_text")


def _check_spec_text(spec: Spec, fields: frozenset[str] | set[str]) -> None:
    for field in spec.DESCRIPTOR.fields:
        name = field.name
        if name not in fields or name == "members":  # members are checked by check_members
            continue
        value = getattr(spec, name)
        if isinstance(value, str):
            check_text(value, name)
        elif hasattr(value, "items"):  # a map (metadata, provider credentials, per-model limits)
            for k, v in value.items():
                check_text(k, name)
                if isinstance(v, str):
                    check_text(v, f"{name}.{k}")
                elif hasattr(v, "budget_duration"):
                    check_text(v.budget_duration, f"{name}.{k}")
        elif isinstance(value, Iterable):  # a repeated field (models)
            for item in value:
                check_text(item, name)
    if "budget_duration" in fields:
        check_text(spec.limits.budget_duration, "budget_duration")


def key_status(key: VirtualKey, now: float) -> str:
    if key.status != "active":
        return key.status
    if key.expires_at and key.expires_at <= now:
        return "expired"
    return "active"


def limits_of(row: VirtualKey | Team | User) -> auth_pb2.Limits:
    limits = auth_pb2.Limits(budget_duration=row.budget_duration, alert_thresholds=row.alert_thresholds)
    for name in LIMIT_FIELDS:
        value = getattr(row, name)
        if value is not None:
            setattr(limits, name, value)
    return limits


def key_info(key: VirtualKey, now: float, context: auth_pb2.KeyContext | None = None,
             resolved: Effective | None = None) -> auth_pb2.KeyInfo:
    """The key as the admin API shows it; with the context its requests get (see :mod:`switchboard_auth.policy`)
    when given."""
    info = auth_pb2.KeyInfo(
        key_id=key.key_id, key_alias=key.key_alias, last_four=key.last_four, team_id=key.team_id,
        models=key.models, limits=limits_of(key), privacy_tier=key.privacy_tier, pii_policy=key.pii_policy,
        metadata=key.key_metadata, created_at=key.created_at, expires_at=key.expires_at,
        status=key_status(key, now), is_admin=key.is_admin, updated_at=key.updated_at,
        provider_credential_hints=key.provider_credential_hints, jurisdictions=key.jurisdictions,
        key_prefix=key.key_prefix, user_id=key.user_id, model_aliases=key.model_aliases, tags=key.tags,
        model_rpm_limits=key.model_rpm_limits, model_tpm_limits=key.model_tpm_limits,
        model_max_budgets=model_budgets(key),
    )
    if context is not None:
        info.effective.CopyFrom(context)
    if resolved is not None:
        info.privacy_tier_source = resolved.privacy_tier_source
        info.jurisdictions_source = resolved.jurisdictions_source
    return info


def team_info(team: Team, key_count: int = 0) -> auth_pb2.TeamInfo:
    return auth_pb2.TeamInfo(
        team_id=team.team_id, team_alias=team.team_alias, models=team.models, limits=limits_of(team),
        privacy_tier=team.privacy_tier, pii_policy=team.pii_policy, metadata=team.team_metadata, blocked=team.blocked,
        created_at=team.created_at, updated_at=team.updated_at, key_count=key_count,
        provider_credential_hints=team.provider_credential_hints, jurisdictions=team.jurisdictions,
        model_aliases=team.model_aliases, members=[auth_pb2.TeamMember(**m) for m in team.members], tags=team.tags,
    )


def user_info(user: User, key_count: int = 0, teams: list[str] | None = None) -> auth_pb2.UserInfo:
    return auth_pb2.UserInfo(
        user_id=user.user_id, user_alias=user.user_alias, user_email=user.user_email, user_role=user.user_role,
        models=user.models, limits=limits_of(user), metadata=user.user_metadata, blocked=user.blocked,
        created_at=user.created_at, updated_at=user.updated_at, key_count=key_count, teams=teams or [],
    )


def check_limits(limits: auth_pb2.Limits, fields: frozenset[str] | set[str]) -> None:
    for name in LIMIT_FIELDS:
        if name in fields and limits.HasField(name) and getattr(limits, name) < 0:
            raise bad(f"'{name}' must not be negative (got {getattr(limits, name)}).", name)
    if "budget_duration" in fields and limits.budget_duration:
        try:
            parse_duration(limits.budget_duration, what="budget_duration")
        except DurationError as exc:
            raise bad(str(exc), "budget_duration") from None
    if "alert_thresholds" in fields:
        try:
            normalize(limits.alert_thresholds)
        except ThresholdError as exc:
            raise bad(str(exc), "alert_thresholds") from None


def _check_pii_policy(spec: auth_pb2.KeySpec | auth_pb2.TeamSpec, fields: frozenset[str] | set[str]) -> None:
    if "pii_policy" in fields and spec.pii_policy not in PII_POLICIES:
        raise bad(f"pii_policy must be one of {', '.join(PII_POLICY_NAMES)} (got {spec.pii_policy!r}).",
                  "pii_policy")


def _jurisdictions(spec: auth_pb2.KeySpec | auth_pb2.TeamSpec) -> list[str]:
    """The spec's jurisdictions, written in one form (lower-case, each once); 400 naming a bad one."""
    try:
        return list(parse_jurisdictions(list(spec.jurisdictions)))
    except JurisdictionError as exc:
        raise bad(str(exc), "jurisdictions", "invalid_jurisdiction") from None


def _apply_limits(row: VirtualKey | Team | User, limits: auth_pb2.Limits, fields: frozenset[str] | set[str]) -> None:
    for name in LIMIT_FIELDS:
        if name in fields:
            setattr(row, name, getattr(limits, name) if limits.HasField(name) else None)
    if "budget_duration" in fields:
        row.budget_duration = limits.budget_duration
    if "alert_thresholds" in fields:
        row.alert_thresholds = list(normalize(limits.alert_thresholds))


def apply_key_spec(key: VirtualKey, spec: auth_pb2.KeySpec, fields: frozenset[str] | set[str], now: int) -> None:
    """Checks then applies the named fields of ``spec`` to ``key``; raises before changing anything."""
    unknown = sorted(set(fields) - KEY_FIELDS)
    if unknown:
        raise bad(f"Unknown key field(s): {', '.join(unknown)}.", unknown[0], "unknown_field")
    _check_spec_text(spec, fields)
    check_limits(spec.limits, fields)
    _check_pii_policy(spec, fields)
    if "models" in fields and any(not m.strip() for m in spec.models):
        raise bad("models must not contain empty names.", "models")
    jurisdictions = _jurisdictions(spec) if "jurisdictions" in fields else key.jurisdictions
    _check_aliases_and_tags(spec, fields)
    _check_model_limits(spec, fields)
    if "user_id" in fields and spec.user_id and not USER_ID.match(spec.user_id):
        raise bad("user_id may hold letters, digits, '.', '_', ':', '@', '+' and '-' (at most 200).", "user_id")
    expires_at = key.expires_at
    if "duration" in fields:
        if spec.duration:
            try:
                lifetime = parse_duration(spec.duration)
            except DurationError as exc:
                raise bad(str(exc), "duration") from None
            expires_at = int(lifetime.after(datetime.fromtimestamp(now, UTC)).timestamp())
        else:
            expires_at = 0
    if "expires_at" in fields:
        if spec.expires_at < 0:
            raise bad("expires must be a time in the future.", "expires")
        expires_at = spec.expires_at
    _apply_limits(key, spec.limits, fields)
    key.expires_at = expires_at
    for name in ("key_alias", "team_id", "privacy_tier", "pii_policy", "is_admin", "user_id"):
        if name in fields:
            setattr(key, name, getattr(spec, name))
    if "models" in fields:
        key.models = list(spec.models)
    if "metadata" in fields:
        key.key_metadata = dict(spec.metadata)
    key.jurisdictions = jurisdictions
    _apply_aliases_and_tags(key, spec, fields)
    _apply_model_limits(key, spec, fields)
    key.updated_at = now


def model_budgets(key: VirtualKey) -> dict[str, auth_pb2.ModelBudget]:
    """The key's per-model budgets as the contract carries them."""
    return {model: auth_pb2.ModelBudget(max_budget_micros=int(b["max_budget_micros"]),
                                        budget_duration=str(b.get("budget_duration") or ""))
            for model, b in key.model_max_budgets.items()}


def _check_model_limits(spec: auth_pb2.KeySpec, fields: frozenset[str] | set[str]) -> None:
    """Per-model limits name models and are not negative; budget windows are durations billing can compute."""
    for name, mapping in (("model_rpm_limits", spec.model_rpm_limits), ("model_tpm_limits", spec.model_tpm_limits),
                          ("model_max_budgets", spec.model_max_budgets)):
        if name not in fields:
            continue
        for model in mapping:
            check_text(model, name)
            if not model.strip():
                raise bad(f"{name} must name models (non-empty public model names).", name)
    for name, counts in (("model_rpm_limits", spec.model_rpm_limits), ("model_tpm_limits", spec.model_tpm_limits)):
        if name in fields and any(v < 0 for v in counts.values()):
            raise bad(f"{name} must be whole numbers of 0 or more.", name, "invalid_value")
    if "model_max_budgets" in fields:
        for model, budget in spec.model_max_budgets.items():
            if budget.max_budget_micros < 0:
                raise bad(f"model_max_budget of '{model}' must not be negative.", "model_max_budgets",
                          "invalid_value")
            if budget.budget_duration:
                try:
                    parse_duration(budget.budget_duration, what=f"the time_period of model_max_budget '{model}'")
                except DurationError as exc:
                    raise bad(str(exc), "model_max_budgets", "invalid_duration") from None


def _apply_model_limits(key: VirtualKey, spec: auth_pb2.KeySpec, fields: frozenset[str] | set[str]) -> None:
    if "model_rpm_limits" in fields:
        key.model_rpm_limits = dict(spec.model_rpm_limits)
    if "model_tpm_limits" in fields:
        key.model_tpm_limits = dict(spec.model_tpm_limits)
    if "model_max_budgets" in fields:
        key.model_max_budgets = {m: {"max_budget_micros": b.max_budget_micros, "budget_duration": b.budget_duration}
                                 for m, b in spec.model_max_budgets.items()}


def _check_aliases_and_tags(spec: auth_pb2.KeySpec | auth_pb2.TeamSpec, fields: frozenset[str] | set[str]) -> None:
    if "model_aliases" in fields and any(not a.strip() or not m.strip() for a, m in spec.model_aliases.items()):
        raise bad("model_aliases must map non-empty names to non-empty model names, e.g. "
                  "{\"my-fast-model\": \"gpt-4o-mini\"}.", "model_aliases")
    if "tags" in fields and any(not t.strip() for t in spec.tags):
        raise bad("tags must be non-empty strings.", "tags")


def _apply_aliases_and_tags(row: VirtualKey | Team, spec: auth_pb2.KeySpec | auth_pb2.TeamSpec,
                            fields: frozenset[str] | set[str]) -> None:
    if "model_aliases" in fields:
        row.model_aliases = dict(spec.model_aliases)
    if "tags" in fields:
        row.tags = list(dict.fromkeys(spec.tags))


def check_members(members: Iterable[auth_pb2.TeamMember]) -> None:
    for member in members:
        check_text(member.user_id, "members_with_roles.user_id")
        check_text(member.user_email, "members_with_roles.user_email")
        if not USER_ID.match(member.user_id):
            raise bad("Each member needs a user_id (letters, digits, '.', '_', ':', '@', '+', '-'; at most 200).",
                      "members_with_roles", "invalid_member")
        if member.role not in TEAM_MEMBER_ROLES:
            raise bad(f"A member's role is one of {', '.join(TEAM_MEMBER_ROLES)} (got {member.role!r}).",
                      "members_with_roles", "invalid_member")


def member_rows(members: Iterable[auth_pb2.TeamMember]) -> list[dict[str, str]]:
    """Members as stored: one per user (the last given wins), in the order given."""
    rows: dict[str, dict[str, str]] = {}
    for m in members:
        rows[m.user_id] = {"user_id": m.user_id, "role": m.role, "user_email": m.user_email}
    return list(rows.values())


def seal_credentials(row: VirtualKey | Team, spec: auth_pb2.KeySpec | auth_pb2.TeamSpec,
                     fields: frozenset[str] | set[str], cipher: CredentialCipher | None) -> None:
    """Stores the spec's provider credentials sealed (and their hints) when the field is given."""
    if "provider_credentials" not in fields:
        return
    credentials = dict(spec.provider_credentials)
    if credentials and cipher is None:
        raise bad("This gateway does not accept provider credentials: set SWITCHBOARD_ENCRYPTION_KEY on the auth "
                  "service to enable bring-your-own-key.", "provider_credentials", "byok_disabled")
    try:
        row.provider_credentials_sealed = cipher.seal(credentials) if credentials and cipher else ""
    except ValueError as exc:
        raise bad(str(exc), "provider_credentials") from None
    row.provider_credential_hints = describe(credentials)


def apply_team_spec(team: Team, spec: auth_pb2.TeamSpec, fields: frozenset[str] | set[str], now: int) -> None:
    unknown = sorted(set(fields) - TEAM_FIELDS)
    if unknown:
        raise bad(f"Unknown team field(s): {', '.join(unknown)}.", unknown[0], "unknown_field")
    _check_spec_text(spec, fields)
    check_limits(spec.limits, fields)
    if "models" in fields and any(not m.strip() for m in spec.models):
        raise bad("models must not contain empty names.", "models")
    _check_pii_policy(spec, fields)
    if "jurisdictions" in fields:
        team.jurisdictions = _jurisdictions(spec)
    _check_aliases_and_tags(spec, fields)
    if "members" in fields:
        check_members(spec.members)
    _apply_limits(team, spec.limits, fields)
    for name in ("team_alias", "privacy_tier", "pii_policy", "blocked"):
        if name in fields:
            setattr(team, name, getattr(spec, name))
    if "models" in fields:
        team.models = list(spec.models)
    if "metadata" in fields:
        team.team_metadata = dict(spec.metadata)
    if "members" in fields:
        team.members = member_rows(spec.members)
    _apply_aliases_and_tags(team, spec, fields)
    team.updated_at = now


def apply_user_spec(user: User, spec: auth_pb2.UserSpec, fields: frozenset[str] | set[str], now: int) -> None:
    """Checks then applies the named fields of ``spec`` to ``user``; raises before changing anything."""
    unknown = sorted(set(fields) - USER_FIELDS)
    if unknown:
        raise bad(f"Unknown user field(s): {', '.join(unknown)}.", unknown[0], "unknown_field")
    _check_spec_text(spec, fields)
    check_limits(spec.limits, fields)
    if "user_role" in fields and spec.user_role and spec.user_role not in USER_ROLES:
        raise bad(f"user_role must be one of {', '.join(USER_ROLES)} (got {spec.user_role!r}).", "user_role")
    if "models" in fields and any(not m.strip() for m in spec.models):
        raise bad("models must not contain empty names.", "models")
    _apply_limits(user, spec.limits, fields)
    for name in ("user_alias", "user_email", "blocked"):
        if name in fields:
            setattr(user, name, getattr(spec, name))
    if "user_role" in fields:
        user.user_role = spec.user_role or DEFAULT_USER_ROLE
    if "models" in fields:
        user.models = list(spec.models)
    if "metadata" in fields:
        user.user_metadata = dict(spec.metadata)
    user.updated_at = now


def spec_fields_set(spec: Spec) -> set[str]:
    """At creation: every field counts as given (defaults are the zero values)."""
    if isinstance(spec, auth_pb2.UserSpec):
        return set(USER_FIELDS)
    names = {f.name for f in spec.DESCRIPTOR.fields if f.name not in ("limits", "team_id", "user_id")}
    names |= set(LIMIT_FIELDS)
    names.update(("budget_duration", "alert_thresholds"))
    if isinstance(spec, auth_pb2.KeySpec):
        names.update(("team_id", "user_id"))
        names.discard("expires_at" if spec.duration else "duration")
    return names


def now_s() -> int:
    return int(time.time())


def check_key_models_within_team(key: VirtualKey, team: Team | None) -> None:
    """A team's key may narrow the team's models, never widen them (as LiteLLM requires).

    Auth does not know the config's access groups, so a key model counts as within the
    team's list when it is listed there itself or matches one of its wildcards. A key's
    own alias counts as the model it names, and every alias must name a model of the team.
    """
    if team is None or not team.models or "*" in team.models:
        return

    def within(model: str) -> bool:
        return model in team.models or any("*" in p and fnmatchcase(model, p) for p in team.models)

    aliases = key.model_aliases or {}
    outside = [m for m in key.models if not within(aliases.get(m, m))]
    outside += [f"{alias} (alias of {target})" for alias, target in aliases.items()
                if not within(target) and alias not in outside]
    if outside:
        raise bad(f"models {outside} are not among team '{team.team_id}''s models {team.models}; a team's key may "
                  "only use a subset of them (or leave 'models' empty to use the team's).", "models",
                  "model_not_in_team")


def jurisdictions_outside(key: VirtualKey, team: Team) -> list[str]:
    """The key's own jurisdictions its team does not allow (``*`` when the key allows any and the team does not)."""
    if allows_any(team.jurisdictions) or not key.jurisdictions:
        return []
    if allows_any(key.jurisdictions):
        return list(key.jurisdictions)
    return [j for j in key.jurisdictions if j not in team.jurisdictions]


def check_key_jurisdictions_within_team(key: VirtualKey, team: Team | None) -> None:
    """A team's key may narrow the team's jurisdictions, never widen them."""
    outside = jurisdictions_outside(key, team) if team is not None else []
    if outside and team is not None:
        raise bad(f"jurisdictions {outside} are not among team '{team.team_id}''s jurisdictions {team.jurisdictions}; "
                  "a team's key may only narrow them (or leave 'jurisdictions' empty to use the team's).",
                  "jurisdictions", "jurisdiction_not_in_team")


def check_team_jurisdictions_cover_keys(team: Team, keys: list[VirtualKey]) -> None:
    """A team's new jurisdictions must still hold every live key's own (else the change would widen nothing but
    leave keys pinned outside their team)."""
    outside = [k.key_alias or k.key_id for k in keys if k.status != "revoked" and jurisdictions_outside(k, team)]
    if outside:
        raise bad(f"keys {outside} of team '{team.team_id}' are pinned to jurisdictions outside {team.jurisdictions}; "
                  "change their jurisdictions first.", "jurisdictions", "jurisdiction_not_in_team")
