"""Auth's client package: the only code outside the auth service that speaks its protocol.

:class:`AuthClient` verifies keys and admits requests (cache, pushed
invalidations, rate-limit leases, batched releases); :attr:`AuthClient.admin`
holds the typed admin calls. The message types callers handle are re-exported
here, so no caller imports auth's generated stubs.
"""

from switchboard.v1.auth_pb2 import (
           KeyContext,
           KeyInfo,
           KeySpec,
           Limits,
           ModelBudget,
           SelfServeLimits,
           SessionInfo,
           SsoSignIn,
           TeamInfo,
           TeamMember,
           TeamSpec,
           UserInfo,
           UserSpec,
)
from switchboard.v1.common_pb2 import AuditEntry, AuditQuery, AuditVerification
from switchboard_auth.client.admin import AuthAdmin, CreatedKey
from switchboard_auth.client.auth_client import Admitted, AuthClient, AuthClientSettings
from switchboard_auth.client.keycache import has_rate_limits
from switchboard_auth.client.model_aliases import resolve_model
from switchboard_auth.wire import duration_header

__all__ = ["Admitted", "AuditEntry", "AuditQuery", "AuditVerification",
           "AuthAdmin", "AuthClient", "AuthClientSettings", "CreatedKey", "KeyContext", "KeyInfo",
           "KeySpec", "Limits", "ModelBudget", "SelfServeLimits", "SessionInfo",
           "SsoSignIn", "TeamInfo", "TeamMember", "TeamSpec", "UserInfo", "UserSpec",
           "duration_header", "has_rate_limits", "resolve_model"]
