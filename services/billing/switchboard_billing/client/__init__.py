"""Billing's client package: the only code outside the billing service that speaks its protocol.

:class:`BillingClient` holds requests' costs (rate card, budget leases) and
settles their usage (durable outbox), and answers the admin API's spend and
usage queries. The message types callers handle are re-exported here, so no
caller imports billing's generated stubs.
"""

from switchboard.v1.billing_pb2 import (
    BudgetState,
    CatalogDeployment,
    CatalogModel,
    GetCatalogResponse,
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
from switchboard_billing.client.stored_models import AuditActor, ModelWatch

__all__ = ["AuditActor", "BillingClient", "BillingClientSettings", "BudgetState", "CatalogDeployment", "CatalogModel",
           "GetCatalogResponse", "Hold", "ListUsageRequest", "ListUsageResponse", "ModelWatch", "Outbox",
           "ReserveResponse", "StoredModel", "StoredModels", "SubjectBudgets", "SummarizeUsageRequest",
           "SummarizeUsageResponse", "UsageEvent", "UsageGroup", "UsageRecord", "has_budget", "read_journal"]
