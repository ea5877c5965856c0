"""What billing writes in its audit log for a change of a model added at run time (the chain itself:
:mod:`switchboard_common.audit_chain`).

Billing owns the log of its models because billing performs those changes: the row is appended in the change's
own transaction (:meth:`switchboard_billing.model_store.ModelStore.put`), so a change that fails leaves no row.
Billing verifies no credential: the facade verified the caller with auth and says who it is
(``PutModelRequest.audit_actor``), and where from (``origin``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switchboard.v1 import billing_pb2, common_pb2
from switchboard_billing.model_store import Recorder
from switchboard_common.audit_chain import REDACTED, Change
from switchboard_common.audit_origin import of_message

#: Columns never shown, only said to have changed: the sealed provider credentials.
SECRET_COLUMNS = frozenset({"sealed_secrets"})
#: Columns that change with every write and say nothing of the change.
_NOISE = frozenset({"updated_at_ms", "updated_by"})


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    names = [n for n in dict.fromkeys([*before, *after]) if before.get(n) != after.get(n) and n not in _NOISE]

    def shown(row: Mapping[str, Any]) -> dict[str, Any]:
        return {n: (REDACTED if n in SECRET_COLUMNS and row[n] else row[n]) for n in names if n in row}

    return shown(before), shown(after)


def recorder(request: billing_pb2.PutModelRequest | billing_pb2.DeleteModelRequest) -> Recorder:
    """The audit rows of the change ``request`` asks for."""
    actor: common_pb2.AuditActor = request.audit_actor
    origin = of_message(request.origin)

    def record(action: str, model_id: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> Change:
        b, a = _diff(before, after)
        return Change(actor.kind or "service", actor.key_id, actor.user_id, action, "model", model_id, b, a, origin)

    return record
