"""The fields of keys, teams and users: their LiteLLM-shaped JSON names and the contract's names for them.

The facade reads admin bodies with the JSON names (``max_budget`` in USD, as
LiteLLM's scripts send it); auth stores the contract's (``max_budget_micros``).
Both sides take the lists from here, so a field one accepts the other knows.

LiteLLM documents more fields than the gateway has a meaning for. Those are
listed here too (:data:`KEY_IGNORED`, :data:`TEAM_IGNORED`, :data:`USER_IGNORED`):
an admin body may carry them, and the answer names each one it carried in
``ignored_fields``, so that a script moved from LiteLLM keeps working and its
author sees what did not take effect. Any other unknown field is refused (a
typo must not pass silently).
"""

from __future__ import annotations

#: Limits shared by keys, teams and users, JSON name → contract name (auth.proto ``Limits``).
LIMITS: dict[str, str] = {
    "rpm_limit": "rpm_limit",
    "tpm_limit": "tpm_limit",
    "max_parallel_requests": "max_parallel_requests",
    "max_budget": "max_budget_micros",
    "budget_duration": "budget_duration",
    "max_daily_spend": "max_daily_spend_micros",
    "min_output_tokens": "min_output_tokens",
    "soft_budget": "soft_budget_micros",
    "alert_thresholds": "alert_thresholds",
}
#: The limits that are counts (whole numbers), and those that are USD amounts.
COUNT_LIMITS = ("rpm_limit", "tpm_limit", "max_parallel_requests", "min_output_tokens")
MONEY_LIMITS = ("max_budget", "max_daily_spend", "soft_budget")
#: The limits of a user, over all the user's keys together: its budgets (billing counts them), its soft budget
#: and alert thresholds, and its rate limits (auth counts them beside each key's and team's).
USER_LIMITS: dict[str, str] = dict(LIMITS)

#: A key's own fields (besides its limits), JSON name → contract name (``KeySpec``).
KEY: dict[str, str] = {
    "key_alias": "key_alias", "models": "models", "duration": "duration", "expires": "expires_at",
    "team_id": "team_id", "privacy_tier": "privacy_tier", "pii_policy": "pii_policy", "metadata": "metadata",
    "is_admin": "is_admin", "provider_credentials": "provider_credentials", "jurisdictions": "jurisdictions",
    "user_id": "user_id", "aliases": "model_aliases", "tags": "tags",
    "model_rpm_limit": "model_rpm_limits", "model_tpm_limit": "model_tpm_limits",
    "model_max_budget": "model_max_budgets",
}
#: A team's own fields (besides its limits), JSON name → contract name (``TeamSpec``).
TEAM: dict[str, str] = {
    "team_id": "team_id", "team_alias": "team_alias", "models": "models", "privacy_tier": "privacy_tier",
    "pii_policy": "pii_policy", "metadata": "metadata", "blocked": "blocked",
    "provider_credentials": "provider_credentials", "jurisdictions": "jurisdictions",
    "model_aliases": "model_aliases", "members_with_roles": "members", "tags": "tags",
}
#: A user's own fields (besides its budgets), JSON name → contract name (``UserSpec``).
USER: dict[str, str] = {
    "user_id": "user_id", "user_alias": "user_alias", "user_email": "user_email", "user_role": "user_role",
    "models": "models", "metadata": "metadata", "blocked": "blocked",
}

KEY_JSON_FIELDS = frozenset(KEY) | frozenset(LIMITS)
TEAM_JSON_FIELDS = frozenset(TEAM) | frozenset(LIMITS)
USER_JSON_FIELDS = frozenset(USER) | frozenset(USER_LIMITS)
KEY_CONTRACT_FIELDS = frozenset(KEY.values()) | frozenset(LIMITS.values())
TEAM_CONTRACT_FIELDS = frozenset(TEAM.values()) | frozenset(LIMITS.values())
USER_CONTRACT_FIELDS = frozenset(USER.values()) | frozenset(USER_LIMITS.values())
#: Limits that are lists: the percentages of a budget that alert (docs/alerts.md), stored as a JSON column.
LIST_LIMITS = ("alert_thresholds",)
#: Limits stored as BIGINT columns on keys, teams and users (every limit but the window's text and the lists).
LIMIT_COLUMNS = tuple(name for name in LIMITS.values() if name != "budget_duration" and name not in LIST_LIMITS)

#: The roles of a user (LiteLLM's), and what its keys may do in the admin API.
USER_ROLES: dict[str, str] = {
    "proxy_admin": "manage and read everything, like the master key",
    "proxy_admin_viewer": "read everything (keys, teams, users, spend), change nothing",
    "internal_user": "create, change and delete its own keys; read its own keys, teams and spend",
    "internal_user_viewer": "read its own keys, teams and spend",
}
DEFAULT_USER_ROLE = "internal_user"
#: Roles of a team member (LiteLLM's ``members_with_roles``).
TEAM_MEMBER_ROLES = ("admin", "user")

#: LiteLLM fields of keys (``/key/generate``, ``/key/update``, ``/key/regenerate``) that the gateway accepts
#: and does not apply: each is named in the answer's ``ignored_fields``.
KEY_IGNORED = frozenset({
    "spend", "agent_id", "allowed_cache_controls", "config", "permissions", "policies", "prompts",
    "object_permission", "budget_id", "enforced_params", "allowed_routes", "allowed_passthrough_routes",
    "allowed_vector_store_indexes", "rpm_limit_type", "tpm_limit_type", "router_settings", "access_group_ids",
    "send_invite_email", "key_type", "auto_rotate", "rotation_interval", "organization_id",
    "project_id", "temp_budget_increase", "temp_budget_expiry", "new_master_key", "grace_period",
})
#: LiteLLM fields of teams (``/team/new``, ``/team/update``) accepted and not applied.
TEAM_IGNORED = frozenset({
    "organization_id", "admins", "members", "team_member_permissions", "router_settings",
    "access_group_ids", "policies", "prompts", "object_permission", "allowed_passthrough_routes",
    "secret_manager_settings", "rpm_limit_type", "tpm_limit_type", "team_member_budget", "team_member_rpm_limit",
    "team_member_tpm_limit", "team_member_key_duration", "team_member_budget_duration",
    "allowed_vector_store_indexes", "enforced_batch_output_expires_after", "enforced_file_expires_after",
    "model_rpm_limit", "model_tpm_limit", "model_max_budget",
})
#: LiteLLM fields of users (``/user/new``, ``/user/update``) accepted and not applied.
USER_IGNORED = frozenset({
    "spend", "agent_id", "allowed_cache_controls", "config", "permissions", "policies", "prompts",
    "object_permission", "aliases", "send_invite_email", "sso_user_id", "organizations", "password",
    "model_max_budget", "model_rpm_limit", "model_tpm_limit", "budget_id", "tags",
})
#: Fields of ``/user/new`` that shape what comes with the user rather than the user itself: the key it creates
#: (``auto_create_key``, ``key_alias``, ``duration``) and the teams it joins (``teams``, ``team_id``).
USER_NEW_EXTRAS = frozenset({"auto_create_key", "key_alias", "duration", "teams", "team_id"})
