"""Billing's client package: the only code outside the billing service that speaks its protocol.

:class:`BillingClient` holds requests' costs (rate card, budget leases) and
settles their usage (durable outbox), and answers the admin API's spend and
usage queries. The message types callers handle are re-exported here, so no
caller imports billing's generated stubs.
"""

from switchboard.v1.billing_pb2 import (
    Alert,
    AlertDelivery,
    BudgetState,
    CatalogDeployment,
    CatalogModel,
    GetCatalogResponse,
    ListAlertsRequest,
    ListAlertsResponse,
    ListUsageRequest,
    ListUsageResponse,
    ReserveResponse,
    StoredModel,
    StoredModels,
    SubjectBudgets,
    SummarizeUsageRequest,
    SummarizeUsageResponse,
    UsageEvent,
    UsageGroup,
    UsageRecord,
)
from switchboard_billing.client.billing_client import BillingClient, BillingClientSettings
from switchboard_billing.client.holds import Hold, has_budget
from switchboard_billing.client.outbox import Outbox, read_journal
from switchboard_billing.client.outcomes import (
    CALLER_SHUTDOWN,
    CANCELLED,
    CLIENT_CLOSED_REQUEST,
    CLIENT_DISCONNECTED,
    DEADLINE_EXCEEDED,
    ROUTER_SHUTDOWN,
)
from switchboard_billing.client.stored_models import AuditActor, ModelWatch
from switchboard_billing.client.watched import watched_budgets

__all__ = ["CALLER_SHUTDOWN", "CANCELLED", "CLIENT_CLOSED_REQUEST", "CLIENT_DISCONNECTED", "DEADLINE_EXCEEDED",
           "ROUTER_SHUTDOWN", "Alert", "AlertDelivery", "AuditActor",
           "BillingClient", "BillingClientSettings", "BudgetState", "CatalogDeployment", "CatalogModel",
           "GetCatalogResponse", "Hold", "ListAlertsRequest", "ListAlertsResponse", "ListUsageRequest",
           "ListUsageResponse", "ModelWatch", "Outbox", "ReserveResponse", "StoredModel", "StoredModels",
           "SubjectBudgets", "SummarizeUsageRequest", "SummarizeUsageResponse", "UsageEvent", "UsageGroup",
           "UsageRecord", "has_budget", "read_journal", "watched_budgets"]
