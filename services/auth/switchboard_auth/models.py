"""Tables of the auth service (SQLModel): virtual keys, teams, users and dashboard sessions.

The table shapes here are the current schema; ``migrations.py`` holds the
frozen steps that build it, so a model change always comes with a migration.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from switchboard_rules.fields import LIMIT_COLUMNS

#: Columns shared by keys and teams: rate limits (enforced by auth) and budgets (enforced by billing).
#: All are BIGINT, as the migrations create them: token limits reach billions, budgets are micro-dollars.
LIMIT_FIELDS = LIMIT_COLUMNS


class VirtualKey(SQLModel, table=True):
    __tablename__ = "virtual_keys"

    key_id: str = Field(primary_key=True, max_length=40)
    #: HMAC-SHA256 of the plain key; the plain key is never stored.
    key_hash: str = Field(index=True, unique=True, max_length=64)
    key_alias: str = Field(default="", max_length=200, index=True)
    last_four: str = Field(max_length=4)
    team_id: str = Field(default="", max_length=80, index=True)
    models: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rpm_limit: int | None = Field(default=None, sa_type=BigInteger)
    tpm_limit: int | None = Field(default=None, sa_type=BigInteger)
    max_parallel_requests: int | None = Field(default=None, sa_type=BigInteger)
    max_budget_micros: int | None = Field(default=None, sa_type=BigInteger)
    budget_duration: str = Field(default="", max_length=20)
    max_daily_spend_micros: int | None = Field(default=None, sa_type=BigInteger)
    #: Fewest output tokens of an answer capped because the budget runs low (None: the team's or gateway's).
    min_output_tokens: int | None = Field(default=None, sa_type=BigInteger)
    #: Soft budget (alerts only; migration 11), micro-dollars over the max_budget window.
    soft_budget_micros: int | None = Field(default=None, sa_type=BigInteger)
    #: Percentages of its budgets that alert (migration 11); empty: the gateway's.
    alert_thresholds: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    privacy_tier: str = Field(default="", max_length=60)
    pii_policy: str = Field(default="", max_length=20)
    #: Jurisdictions the key may be served in (lower-case; ["*"]: any); empty: the team's, else the gateway's.
    jurisdictions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: The prefix the plain key was issued with (SWITCHBOARD_KEY_PREFIX at the time).
    key_prefix: str = Field(default="sk-", max_length=20)
    #: Bring your own key: the key's provider credentials as one Fernet token (credential_cipher.py).
    provider_credentials_sealed: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    #: Provider -> "..." + last four characters of its credential (what the admin API shows).
    provider_credential_hints: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    key_metadata: dict[str, str] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    created_at: int = Field(default=0, sa_type=BigInteger)
    expires_at: int = Field(default=0, sa_type=BigInteger)
    #: "active", "blocked" or "revoked".
    status: str = Field(default="active", max_length=20)
    #: May manage other keys and teams.
    is_admin: bool = False
    updated_at: int = Field(default=0, sa_type=BigInteger)
    #: The user that owns the key ("" for none); its budgets count the key's spend.
    user_id: str = Field(default="", max_length=200, index=True)
    #: Key-local model name -> public model (LiteLLM's ``aliases``).
    model_aliases: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: Labels recorded on the ledger rows of the key's requests.
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: Per-model limits, by public model: requests per minute, tokens per minute, and budgets
    #: ({"max_budget_micros": n, "budget_duration": "1d"}).
    model_rpm_limits: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    model_tpm_limits: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    model_max_budgets: dict[str, dict[str, Any]] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Team(SQLModel, table=True):
    __tablename__ = "teams"

    team_id: str = Field(primary_key=True, max_length=80)
    team_alias: str = Field(default="", max_length=200, index=True)
    models: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rpm_limit: int | None = Field(default=None, sa_type=BigInteger)
    tpm_limit: int | None = Field(default=None, sa_type=BigInteger)
    max_parallel_requests: int | None = Field(default=None, sa_type=BigInteger)
    max_budget_micros: int | None = Field(default=None, sa_type=BigInteger)
    budget_duration: str = Field(default="", max_length=20)
    max_daily_spend_micros: int | None = Field(default=None, sa_type=BigInteger)
    min_output_tokens: int | None = Field(default=None, sa_type=BigInteger)
    #: Soft budget (alerts only; migration 11), micro-dollars over the max_budget window.
    soft_budget_micros: int | None = Field(default=None, sa_type=BigInteger)
    #: Percentages of its budgets that alert (migration 11); empty: the gateway's.
    alert_thresholds: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    privacy_tier: str = Field(default="", max_length=60)
    pii_policy: str = Field(default="", max_length=20)
    #: Jurisdictions the team's keys may be served in (["*"]: any); a key's own list is a subset.
    jurisdictions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    team_metadata: dict[str, str] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    blocked: bool = False
    #: Bring your own key for the team's keys, sealed like a key's (credential_cipher.py).
    provider_credentials_sealed: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    provider_credential_hints: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: int = Field(default=0, sa_type=BigInteger)
    updated_at: int = Field(default=0, sa_type=BigInteger)
    #: Team-wide model name -> public model (a key's own aliases win).
    model_aliases: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: Members: ``{"user_id": ..., "role": "admin" | "user", "user_email": ...}``, in the order added.
    members: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class User(SQLModel, table=True):
    """A person (or service) owning keys: its budgets apply to the sum of its keys' spend, its role to what its
    keys may do in the admin API."""

    __tablename__ = "users"

    user_id: str = Field(primary_key=True, max_length=200)
    user_alias: str = Field(default="", max_length=200)
    user_email: str = Field(default="", max_length=200, index=True)
    #: "proxy_admin", "proxy_admin_viewer", "internal_user" or "internal_user_viewer".
    user_role: str = Field(default="internal_user", max_length=30)
    models: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rpm_limit: int | None = Field(default=None, sa_type=BigInteger)
    tpm_limit: int | None = Field(default=None, sa_type=BigInteger)
    max_parallel_requests: int | None = Field(default=None, sa_type=BigInteger)
    max_budget_micros: int | None = Field(default=None, sa_type=BigInteger)
    budget_duration: str = Field(default="", max_length=20)
    max_daily_spend_micros: int | None = Field(default=None, sa_type=BigInteger)
    min_output_tokens: int | None = Field(default=None, sa_type=BigInteger)
    #: Soft budget (alerts only; migration 11), micro-dollars over the max_budget window.
    soft_budget_micros: int | None = Field(default=None, sa_type=BigInteger)
    #: Percentages of its budgets that alert (migration 11); empty: the gateway's.
    alert_thresholds: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    user_metadata: dict[str, str] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    blocked: bool = False
    created_at: int = Field(default=0, sa_type=BigInteger)
    updated_at: int = Field(default=0, sa_type=BigInteger)


class UiSession(SQLModel, table=True):
    """A dashboard session: who signed in (the master key, a key, or a user by single sign-on) and until when.

    Only a keyed hash of the session token is stored, so a leaked table opens no session."""

    __tablename__ = "ui_sessions"

    session_hash: str = Field(primary_key=True, max_length=64)
    #: "master", "key" or "user" (see switchboard_auth.sessions).
    kind: str = Field(max_length=10)
    #: The key_id (kind "key"), user_id (kind "user"), or a digest of the master key at sign-in (kind "master",
    #: so that rotating the master key ends its sessions).
    subject: str = Field(max_length=200)
    label: str = Field(default="", max_length=200)
    created_at: int = Field(default=0, sa_type=BigInteger)
    expires_at: int = Field(default=0, sa_type=BigInteger, index=True)
