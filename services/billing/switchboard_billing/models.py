"""Tables of the billing service (SQLModel)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, false
from sqlmodel import Field, SQLModel


class UsageRow(SQLModel, table=True):
    """One request in the ledger; request_id makes settlement idempotent."""

    __tablename__ = "usage_ledger"

    request_id: str = Field(primary_key=True, max_length=64)
    #: Looked up through the (key_id, started_at_ms) index (migration 2).
    key_id: str = Field(default="", max_length=40)
    key_alias: str = Field(default="", max_length=200)
    #: Looked up through the (team_id, started_at_ms) index (migration 2).
    team_id: str = Field(default="", max_length=80)
    model: str = Field(default="", max_length=200, index=True)
    deployment_id: str = Field(default="", max_length=200)
    provider: str = Field(default="", max_length=60)
    upstream_model: str = Field(default="", max_length=200)
    jurisdiction: str = Field(default="", max_length=20)
    privacy_tier: str = Field(default="", max_length=60)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    usage_reported: bool = True
    #: Micro-dollars; NULL when the price of the model is unknown.
    cost_micros: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    status: str = Field(default="success", max_length=20)
    http_status: int = 200
    error_code: str = Field(default="", max_length=80)
    stream: bool = False
    latency_ms: float = 0.0
    ttft_ms: float = 0.0
    started_at_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, index=True))
    recorded_at_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    #: Custody (docs/privacy.md): the hops that handled the request, kinds/counts of PII, the key's policy
    #: and the tier the request required. Never a personal value.
    custody_path: str = Field(default="", max_length=400)
    pii: str = Field(default="", max_length=200)
    pii_policy: str = Field(default="", max_length=20)
    required_privacy_tier: str = Field(default="", max_length=60)
    #: The caller's own provider key carried the request (charged the BYOK fee, not the model price).
    byok: bool = False
    #: "http" (through the facade) or "grpc" (an internal service calling the router).
    source: str = Field(default="", max_length=10)
    #: The provider's id of the answer ("chatcmpl-..."), looked up through its index (migration 5).
    response_id: str = Field(default="", max_length=120)
    #: The facade's record of a call the router did not answer: the router's own record replaces it.
    provisional: bool = False
    #: The user owning the key ("" for none); looked up through the (user_id, started_at_ms) index (migration 6).
    user_id: str = Field(default="", max_length=200)
    #: The key's and its team's tags, as a JSON array ("[]" for none).
    tags: str = Field(default="[]", max_length=2000)
    #: Milliseconds spent waiting on the provider, and provider calls made (retries included; migration 8).
    provider_ms: float = 0.0
    attempts: int = 0
    #: Micro-dollars prompt caching saved on this request: its cost with its cached and cache-write tokens as
    #: plain input, minus ``cost_micros`` (negative when a cache write was not read back; migration 13).
    cache_savings_micros: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


class BudgetSubjectRow(SQLModel, table=True):
    """A key or team with a budget: the row a reservation locks, and the anchor of its budget windows."""

    __tablename__ = "budget_subjects"

    #: "key:<key id>", "team:<team id>" or "user:<user id>".
    subject: str = Field(primary_key=True, max_length=120)
    #: Unix milliseconds the subject's budget windows are counted from.
    anchor_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class ReservationRow(SQLModel, table=True):
    """Money held against budgets: one request's worst-case cost until it settles (the row is then deleted), or a
    lease a holder spends locally (see budgets.py); either stops counting when it expires."""

    __tablename__ = "reservations"

    #: The request id.
    reservation_id: str = Field(primary_key=True, max_length=64)
    key_id: str = Field(default="", max_length=40, index=True)
    team_id: str = Field(default="", max_length=80, index=True)
    #: The user owning the key ("" for none), indexed by migration 6.
    user_id: str = Field(default="", max_length=200)
    #: The public model held for, when the key has a budget on that model (its model_max_budget); else "".
    model: str = Field(default="", max_length=200)
    amount_micros: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    created_at_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    #: After this instant the hold no longer counts against budgets.
    expires_at_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, index=True))
    #: Until this instant the whole amount counts; after it (a lease its holder stopped renewing) only
    #: ``committed_micros`` does. A plain reservation is renewed until it expires.
    renewed_until_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    #: What a lapsed lease keeps covering: its holder's requests in flight and allowance, as last stated.
    committed_micros: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    #: Who holds it ("facade@host:pid"); for people reading the table.
    holder: str = Field(default="", max_length=120)
    #: A lease (money a holder spends locally on its requests) rather than one request's hold; migration 14.
    lease: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    #: The instants its money may be charged at, ``[charged_from_ms, charged_until_ms)``: a request's hold, the
    #: instant its request started; a lease, the span its requests may start in. It counts only in the budget
    #: windows that overlap them (charge_windows.py); migration 15.
    charged_from_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    charged_until_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


class StoredModelRow(SQLModel, table=True):
    """A deployment added at run time (the admin API's /model/new): the catalog's grammar and LiteLLM's view of
    it, its credentials sealed (model_store.py)."""

    __tablename__ = "stored_models"

    model_id: str = Field(primary_key=True, max_length=200)
    model_name: str = Field(default="", max_length=200)
    #: JSON: the deployment in the catalog file's grammar, without credential values.
    config_json: str = Field(default="{}")
    #: JSON: the LiteLLM litellm_params and model_info as last sent, without credential values.
    litellm_params_json: str = Field(default="{}")
    model_info_json: str = Field(default="{}")
    #: One Fernet token holding the credential settings (api_key, ...); "" when there are none.
    sealed_secrets: str = Field(default="")
    #: JSON: setting → "...abcd", what answers show of each credential.
    secret_hints_json: str = Field(default="{}")
    created_at_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    updated_at_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    created_by: str = Field(default="", max_length=120)
    updated_by: str = Field(default="", max_length=120)


class StoredModelsRevisionRow(SQLModel, table=True):
    """One row counting the changes of stored_models: every billing replica polls it to see another's change."""

    __tablename__ = "stored_models_revision"

    id: int = Field(default=1, primary_key=True)
    revision: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class AlertRow(SQLModel, table=True):
    """A budget threshold crossed, a soft budget passed, or a team's spend report (billing migration 10).

    The idempotency key (subject, budget, threshold and window) is the primary key: the settlement that inserts it
    first raises the alert, every other settlement of the same crossing (another replica's, a replay) finds it."""

    __tablename__ = "budget_alerts"

    idempotency_key: str = Field(primary_key=True, max_length=400)
    #: "threshold", "soft_budget" or "report".
    kind: str = Field(default="", max_length=20)
    #: "key", "team" or "user".
    scope: str = Field(default="", max_length=10)
    subject_id: str = Field(default="", max_length=200)
    #: "budget" (max_budget), "daily" (max_daily_spend), "soft" (soft_budget) or "report".
    budget: str = Field(default="", max_length=10)
    threshold_percent: int = 0
    limit_micros: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    spent_micros: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    window_start_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    window_end_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    #: Looked up through the (created_at_ms) index: lists are newest first.
    created_at_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, index=True))
    message: str = Field(default="", max_length=1000)
    alias: str = Field(default="", max_length=200)
    #: A report's figures as JSON ("" for an alert).
    details_json: str = Field(default="")


class AlertDeliveryRow(SQLModel, table=True):
    """One alert to one webhook: the durable queue the delivery worker drains (billing migration 10).

    Inserted in the transaction that raises the alert, so an alert recorded is an alert queued; a worker claims a
    due row for ``claimed_until_ms`` (a worker that dies mid-delivery leaves it to be retried after that)."""

    __tablename__ = "alert_deliveries"

    idempotency_key: str = Field(primary_key=True, max_length=400)
    #: The webhook's name (SWITCHBOARD_ALERT_WEBHOOKS).
    webhook: str = Field(primary_key=True, max_length=100)
    #: "pending", "delivered", or "abandoned" (its webhook is no longer configured).
    status: str = Field(default="pending", max_length=12)
    attempts: int = 0
    #: Due at this instant (Unix ms); looked up with status through the (status, next_attempt_ms) index.
    next_attempt_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    claimed_until_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    delivered_at_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    last_error: str = Field(default="", max_length=300)
