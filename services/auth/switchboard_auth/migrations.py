"""Versioned schema migrations of the auth database.

Each step is frozen DDL (not derived from the current models), so that a
database created by any earlier release upgrades step by step to the same shape
as a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard_common import audit_chain
from switchboard_common.database import Migration

#: Advisory lock id used while migrating (PostgreSQL).
LOCK_ID = 0x5B_A0_01


def _limit_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("rpm_limit", sa.BigInteger, nullable=True),
        sa.Column("tpm_limit", sa.BigInteger, nullable=True),
        sa.Column("max_parallel_requests", sa.BigInteger, nullable=True),
        sa.Column("max_budget_micros", sa.BigInteger, nullable=True),
        sa.Column("budget_duration", sa.String(20), nullable=False, server_default=""),
        sa.Column("max_daily_spend_micros", sa.BigInteger, nullable=True),
    ]


_V1_KEYS = sa.Table(
    "virtual_keys", sa.MetaData(),
    sa.Column("key_id", sa.String(40), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True, index=True),
    sa.Column("key_alias", sa.String(200), nullable=False, server_default="", index=True),
    sa.Column("last_four", sa.String(4), nullable=False),
    sa.Column("team_id", sa.String(80), nullable=False, server_default="", index=True),
    sa.Column("models", sa.JSON, nullable=False),
    *_limit_columns(),
    sa.Column("privacy_tier", sa.String(60), nullable=False, server_default=""),
    sa.Column("pii_policy", sa.String(20), nullable=False, server_default=""),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("expires_at", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("status", sa.String(20), nullable=False, server_default="active"),
)

_V2_TEAMS = sa.Table(
    "teams", sa.MetaData(),
    sa.Column("team_id", sa.String(80), primary_key=True),
    sa.Column("team_alias", sa.String(200), nullable=False, server_default="", index=True),
    sa.Column("models", sa.JSON, nullable=False),
    *_limit_columns(),
    sa.Column("privacy_tier", sa.String(60), nullable=False, server_default=""),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.BigInteger, nullable=False, server_default="0"),
)


async def _v1_keys(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda c: _V1_KEYS.create(c, checkfirst=True))


async def _v2_teams_and_admin_keys(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda c: _V2_TEAMS.create(c, checkfirst=True))
    false = "FALSE" if conn.dialect.name == "postgresql" else "0"
    await conn.execute(sa.text(f"ALTER TABLE virtual_keys ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT {false}"))
    await conn.execute(sa.text("ALTER TABLE virtual_keys ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0"))


async def _v3_provider_credentials(conn: AsyncConnection) -> None:
    """Bring your own key: the sealed provider credentials of keys and teams and what the admin API may show of them."""
    for table in ("virtual_keys", "teams"):
        await conn.execute(sa.text(
            f"ALTER TABLE {table} ADD COLUMN provider_credentials_sealed TEXT NOT NULL DEFAULT ''"))
        await conn.execute(sa.text(
            f"ALTER TABLE {table} ADD COLUMN provider_credential_hints JSON NOT NULL DEFAULT '{{}}'"))


async def _v4_team_pii_policy(conn: AsyncConnection) -> None:
    """Teams carry a PII policy for their keys, like their privacy tier."""
    await conn.execute(sa.text("ALTER TABLE teams ADD COLUMN pii_policy VARCHAR(20) NOT NULL DEFAULT ''"))


async def _v5_min_output_tokens(conn: AsyncConnection) -> None:
    """Keys and teams may set the floor of a capped answer when their budget runs low."""
    for table in ("virtual_keys", "teams"):
        await conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN min_output_tokens BIGINT"))


async def _v6_residency(conn: AsyncConnection) -> None:
    """Keys and teams carry the jurisdictions they may be served in; keys remember the prefix they were issued
    with (SWITCHBOARD_KEY_PREFIX), every earlier key having been issued as "sk-"."""
    for table in ("virtual_keys", "teams"):
        await conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN jurisdictions JSON NOT NULL DEFAULT '[]'"))
    await conn.execute(sa.text("ALTER TABLE virtual_keys ADD COLUMN key_prefix VARCHAR(20) NOT NULL DEFAULT 'sk-'"))


_V7_USERS = sa.Table(
    "users", sa.MetaData(),
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("user_alias", sa.String(200), nullable=False, server_default=""),
    sa.Column("user_email", sa.String(200), nullable=False, server_default="", index=True),
    sa.Column("user_role", sa.String(30), nullable=False, server_default="internal_user"),
    sa.Column("models", sa.JSON, nullable=False),
    *_limit_columns(),
    sa.Column("min_output_tokens", sa.BigInteger, nullable=True),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.BigInteger, nullable=False, server_default="0"),
)


async def _v7_users_aliases_members(conn: AsyncConnection) -> None:
    """Users (owners of keys, with budgets over all their keys and a role); keys name their user and carry model
    aliases and tags; teams carry model aliases, members with roles and tags."""
    await conn.run_sync(lambda c: _V7_USERS.create(c, checkfirst=True))
    await conn.execute(sa.text("ALTER TABLE virtual_keys ADD COLUMN user_id VARCHAR(200) NOT NULL DEFAULT ''"))
    await conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_virtual_keys_user_id ON virtual_keys (user_id)"))
    for table, columns in (("virtual_keys", {"model_aliases": "{}", "tags": "[]"}),
                           ("teams", {"model_aliases": "{}", "members": "[]", "tags": "[]"})):
        for name, empty in columns.items():
            await conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {name} JSON NOT NULL DEFAULT '{empty}'"))


async def _v8_model_limits(conn: AsyncConnection) -> None:
    """Keys carry per-model rate limits and budgets (LiteLLM's model_rpm_limit, model_tpm_limit,
    model_max_budget)."""
    for name in ("model_rpm_limits", "model_tpm_limits", "model_max_budgets"):
        await conn.execute(sa.text(f"ALTER TABLE virtual_keys ADD COLUMN {name} JSON NOT NULL DEFAULT '{{}}'"))


_V9_UI_SESSIONS = sa.Table(
    "ui_sessions", sa.MetaData(),
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("label", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("expires_at", sa.BigInteger, nullable=False, server_default="0", index=True),
)


async def _v9_ui_sessions(conn: AsyncConnection) -> None:
    """Dashboard sessions live in auth (hash of the token only), so they survive facade restarts and work on
    every facade replica."""
    await conn.run_sync(lambda c: _V9_UI_SESSIONS.create(c, checkfirst=True))


async def _v10_audit_log(conn: AsyncConnection) -> None:
    """The audit log of administrative changes and its chain's head (switchboard_common.audit_chain)."""
    await audit_chain.create_tables(conn, audit_chain.tables("auth"))


async def _v11_soft_budgets(conn: AsyncConnection) -> None:
    """Keys, teams and users carry a soft budget (crossing it sends alerts and never refuses a request) and their
    own alert thresholds.

    Numbered 11 (9 and 10 are taken by other work merged alongside); migrations apply in order, by set."""
    for table in ("virtual_keys", "teams", "users"):
        await conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN soft_budget_micros BIGINT"))
        await conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN alert_thresholds JSON NOT NULL DEFAULT '[]'"))


MIGRATIONS = [
    Migration(1, "virtual keys", _v1_keys),
    Migration(2, "teams; admin keys; key updated_at", _v2_teams_and_admin_keys),
    Migration(3, "bring your own key: sealed provider credentials", _v3_provider_credentials),
    Migration(4, "team PII policy", _v4_team_pii_policy),
    Migration(5, "floor of a capped answer on keys and teams", _v5_min_output_tokens),
    Migration(6, "jurisdictions of keys and teams; key prefix", _v6_residency),
    Migration(7, "users; key user, aliases and tags; team aliases, members and tags", _v7_users_aliases_members),
    Migration(8, "per-model rate limits and budgets of keys", _v8_model_limits),
    Migration(9, "dashboard sessions", _v9_ui_sessions),
    Migration(10, "audit log of administrative changes", _v10_audit_log),
    Migration(11, "soft budgets and alert thresholds of keys, teams and users", _v11_soft_budgets),
]
