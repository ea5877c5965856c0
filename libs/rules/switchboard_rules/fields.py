"""The fields of keys and teams: their LiteLLM-shaped JSON names and the contract's names for them.

The facade reads admin bodies with the JSON names (``max_budget`` in USD, as
LiteLLM's scripts send it); auth stores the contract's (``max_budget_micros``).
Both sides take the lists from here, so a field one accepts the other knows.
"""

from __future__ import annotations

#: Limits shared by keys and teams, JSON name → contract name (auth.proto ``Limits``).
LIMITS: dict[str, str] = {
    "rpm_limit": "rpm_limit",
    "tpm_limit": "tpm_limit",
    "max_parallel_requests": "max_parallel_requests",
    "max_budget": "max_budget_micros",
    "budget_duration": "budget_duration",
    "max_daily_spend": "max_daily_spend_micros",
    "min_output_tokens": "min_output_tokens",
}
#: The limits that are counts (whole numbers), and those that are USD amounts.
COUNT_LIMITS = ("rpm_limit", "tpm_limit", "max_parallel_requests", "min_output_tokens")
MONEY_LIMITS = ("max_budget", "max_daily_spend")

#: A key's own fields (besides its limits), JSON name → contract name (``KeySpec``).
KEY: dict[str, str] = {
    "key_alias": "key_alias", "models": "models", "duration": "duration", "expires": "expires_at",
    "team_id": "team_id", "privacy_tier": "privacy_tier", "pii_policy": "pii_policy", "metadata": "metadata",
    "is_admin": "is_admin", "provider_credentials": "provider_credentials", "jurisdictions": "jurisdictions",
}
#: A team's own fields (besides its limits), JSON name → contract name (``TeamSpec``).
TEAM: dict[str, str] = {
    "team_id": "team_id", "team_alias": "team_alias", "models": "models", "privacy_tier": "privacy_tier",
    "pii_policy": "pii_policy", "metadata": "metadata", "blocked": "blocked",
    "provider_credentials": "provider_credentials", "jurisdictions": "jurisdictions",
}

KEY_JSON_FIELDS = frozenset(KEY) | frozenset(LIMITS)
TEAM_JSON_FIELDS = frozenset(TEAM) | frozenset(LIMITS)
KEY_CONTRACT_FIELDS = frozenset(KEY.values()) | frozenset(LIMITS.values())
TEAM_CONTRACT_FIELDS = frozenset(TEAM.values()) | frozenset(LIMITS.values())
#: Limits stored as BIGINT columns on keys and teams (every limit but the window's text).
LIMIT_COLUMNS = tuple(name for name in LIMITS.values() if name != "budget_duration")
