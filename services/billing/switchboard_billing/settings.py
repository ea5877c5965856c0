"""Billing settings (environment variables SWITCHBOARD_*)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from switchboard_common.settings import AuditLogSettings


class BillingSettings(AuditLogSettings):
    #: gRPC listen address of the billing service.
    grpc_listen: str = "127.0.0.1:50052"
    #: Ledger database; empty: SQLite file billing.db in the data directory.
    database_url: str = ""
    #: Billing's own database when the services' environments are shared (it wins over database_url):
    #: each service keeps its own data, and their migration histories must not share one database.
    billing_database_url: str = ""
    #: The gateway's model catalog YAML (the same file the router serves); billing prices its deployments.
    config: Path = Path("config/switchboard.yaml")
    #: IANA timezone budget windows and daily spend caps follow ("UTC" by default).
    budget_timezone: str = "UTC"
    #: Seconds an unsettled reservation keeps holding budget (longer than the longest request).
    reservation_ttl_seconds: float = 1800.0
    #: Output tokens held (and sent to the provider as max_tokens) for a request without max_tokens on a
    #: deployment whose output limit neither the catalog nor the model data knows.
    default_output_tokens_bound: int = 32_768
    #: Fewest output tokens worth serving when a budget cannot pay for a request's full output bound: above it
    #: the answer is capped to what is affordable, below it the request is refused. Keys and teams may set their own.
    min_output_tokens: int = 1024
    #: Fernet key(s) sealing the provider credentials of models added at run time (comma-separated, the first
    #: seals; see docs/privacy.md). Empty: on the embedded SQLite default a key made once in the data directory;
    #: with another database, credentials given as values are refused (os.environ/VAR references still work).
    encryption_key: str = ""
    #: Seconds between two looks at the stored models' revision (another billing replica's changes).
    stored_models_poll_seconds: float = Field(default=0.5, gt=0, le=10)
    #: Longest a reservation that only money in flight denies (requests answered but not yet settled, other
    #: holders' leases) waits for it to come back before refusing; 0 refuses at once.
    budget_wait_seconds: float = Field(default=1.0, ge=0, le=30)
    #: Keys and teams whose budget left is exported as a Prometheus gauge (switchboard_budget_remaining_micros):
    #: the ones with a budget seen most recently, at most this many (0: no budget gauges).
    budget_metrics_subjects: int = Field(default=100, ge=0, le=10_000)
    #: Seconds between two refreshes of those gauges.
    budget_metrics_seconds: float = Field(default=15.0, ge=1, le=3600)
    #: Percentages of max_budget and max_daily_spend that raise a budget alert, comma-separated (docs/alerts.md).
    alert_thresholds: str = "50,80,100"
    #: Webhooks alerts are delivered to: a JSON array of {"name", "url", "format": "json"|"slack"|"teams",
    #: "secret"}; empty: alerts are only recorded (the /alerts API and the dashboard show them).
    alert_webhooks: str = ""
    #: HMAC secret of the webhooks that set none of their own.
    alert_webhook_secret: str = ""
    #: Seconds one delivery attempt may take.
    alert_webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    #: Seconds between two looks at the delivery queue (another replica's alerts, retries falling due).
    alert_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    #: Wait before the first retry of a failed delivery (doubling each time), and the longest wait.
    alert_retry_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    alert_retry_max_seconds: float = Field(default=300.0, gt=0, le=86_400)
    #: A spend report per team sent to the webhooks: "daily", "weekly" (Mondays) or "" for none.
    alert_report: str = Field(default="", pattern="^(|daily|weekly)$")
