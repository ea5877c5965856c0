"""The audit log's rows and checks as the contract's messages (common.proto), for the services that keep a log
(:mod:`switchboard_common.audit_chain`) and the clients that read one."""

from __future__ import annotations

from typing import Any

from switchboard.v1 import common_pb2
from switchboard_common.audit_chain import MAX_QUERY_ROWS, Query, Verification
from switchboard_common.errors import Kind, ServiceError


def entry(row: dict[str, Any], log: str) -> common_pb2.AuditEntry:
    """A stored row of the log ``log`` ("auth" or "billing")."""
    return common_pb2.AuditEntry(
        seq=row["seq"], at_ms=row["at_ms"],
        actor=common_pb2.AuditActor(kind=row["actor_kind"], key_id=row["actor_key_id"],
                                    user_id=row["actor_user_id"]),
        action=row["action"], target_type=row["target_type"], target_id=row["target_id"],
        before_json=row["before_json"], after_json=row["after_json"],
        origin=common_pb2.AuditOrigin(request_id=row["request_id"], client_ip=row["client_ip"],
                                      user_agent=row["user_agent"], channel=row["channel"]),
        prev_hash=row["prev_hash"], hash=row["hash"], log=log)


def query_of(q: common_pb2.AuditQuery) -> Query:
    """The filters asked for; a limit or time range that cannot be right is refused (INVALID_REQUEST)."""
    if q.limit < 0 or q.limit > MAX_QUERY_ROWS:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"'limit' must be from 1 to {MAX_QUERY_ROWS}.",
                           param="limit", code="invalid_value")
    if q.since_ms < 0 or q.until_ms < 0 or (q.until_ms and q.since_ms and q.until_ms <= q.since_ms):
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "'since' must come before 'until'.", param="since",
                           code="invalid_value")
    for name in ("actor", "action", "target_type", "target_id"):
        value = getattr(q, name)
        if len(value) > 200 or "\x00" in value:
            raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"'{name}' must be at most 200 characters.",
                               param=name, code="invalid_value")
    return Query(q.actor, q.action, q.target_type, q.target_id, q.since_ms, q.until_ms, q.limit or 100,
                 q.before_seq)


def verification(v: Verification, log: str) -> common_pb2.AuditVerification:
    return common_pb2.AuditVerification(log=log, ok=v.ok, rows_checked=v.rows_checked,
                                        first_broken_seq=v.first_broken_seq, reason=v.reason, head_seq=v.head_seq,
                                        head_hash=v.head_hash)
