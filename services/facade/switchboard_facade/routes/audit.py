"""``GET /audit``: the audit trail of administrative changes, as JSON or CSV; ``GET /audit/verify``: checks its
hash chains. Admins only (the master key, an admin key, a proxy_admin user's key); anyone else gets 403.

Two services keep a log, each of the changes it makes, in the change's own transaction (docs/audit.md): auth
(keys, teams, members, users) and billing (models added at run time). This route asks both and merges their rows,
newest first. Filters (query parameters): ``actor`` (a key id, ``master`` or a user id), ``action``
(``key.update``, or ``key.`` for every key action), ``target_type``, ``target_id``, ``since``/``until`` (ISO
dates or datetimes, UTC unless they say otherwise; ``until`` is exclusive), ``log`` (``auth`` or ``billing``;
absent: both), ``limit`` (1 to 10,000, default 100) and ``format`` (``json`` or ``csv``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from switchboard_auth.client import AuditEntry, AuditQuery, AuditVerification
from switchboard_facade.errors import invalid
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.admin_keys import admin_call, current_request_id
from switchboard_facade.routes.usage import csv_response, output_format, time_filter

router = APIRouter()

LOGS = ("auth", "billing")
#: The columns of the CSV export, in order.
CSV_COLUMNS = ["seq", "log", "time", "actor_kind", "actor_key_id", "actor_user_id", "action", "target_type",
               "target_id", "before", "after", "client_ip", "user_agent", "channel", "request_id", "prev_hash",
               "hash"]
MAX_LIMIT = 10_000


def audit_query(q: QueryParams) -> tuple[AuditQuery, tuple[str, ...]]:
    """The filters of an audit query, and the logs to ask."""
    log = q.get("log", "")
    if log and log not in LOGS:
        raise invalid("'log' must be auth or billing (absent: both).", "log", "invalid_value")
    limit_text = q.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise invalid(f"'limit' must be a whole number from 1 to {MAX_LIMIT}.", "limit", "invalid_value")
    since, until = time_filter(q.get("since"), "since"), time_filter(q.get("until"), "until")
    if since and until and until <= since:
        raise invalid("'since' must come before 'until'.", "since", "invalid_value")
    before_seq = q.get("before_seq", "0")
    if not before_seq.isdigit():
        raise invalid("'before_seq' must be a whole number (rows with a lower seq).", "before_seq", "invalid_value")
    query = AuditQuery(actor=q.get("actor", ""), action=q.get("action", ""), target_type=q.get("target_type", ""),
                       target_id=q.get("target_id", ""), since_ms=since, until_ms=until, limit=int(limit_text),
                       before_seq=int(before_seq))
    return query, ((log,) if log else LOGS)


async def audit_rows(gw: Gateway, who: str, query: AuditQuery, logs: tuple[str, ...]) -> list[AuditEntry]:
    """The rows of the logs asked, merged newest first (at most ``query.limit``). Auth answers first: it refuses
    a caller who is not an admin before billing is asked anything."""
    rows: list[AuditEntry] = list(await gw.auth.admin.audit(who, query))
    if "auth" not in logs:
        rows = []
    if "billing" in logs:
        rows += await gw.billing.models.audit(query)
    rows.sort(key=lambda e: (e.at_ms, e.log == "billing", e.seq), reverse=True)
    return rows[:query.limit]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry_json(e: AuditEntry) -> dict[str, Any]:
    return {"seq": e.seq, "log": e.log, "time": _iso(e.at_ms), "at_ms": e.at_ms,
            "actor": {"kind": e.actor.kind, "key_id": e.actor.key_id, "user_id": e.actor.user_id or None},
            "action": e.action, "target_type": e.target_type, "target_id": e.target_id,
            "before": orjson.loads(e.before_json or "{}"), "after": orjson.loads(e.after_json or "{}"),
            "client_ip": e.origin.client_ip or None, "user_agent": e.origin.user_agent or None,
            "channel": e.origin.channel or None, "request_id": e.origin.request_id or None,
            "prev_hash": e.prev_hash, "hash": e.hash}


def csv_row(e: AuditEntry) -> dict[str, Any]:
    return {"seq": e.seq, "log": e.log, "time": _iso(e.at_ms), "actor_kind": e.actor.kind,
            "actor_key_id": e.actor.key_id, "actor_user_id": e.actor.user_id, "action": e.action,
            "target_type": e.target_type, "target_id": e.target_id, "before": e.before_json, "after": e.after_json,
            "client_ip": e.origin.client_ip, "user_agent": e.origin.user_agent, "channel": e.origin.channel,
            "request_id": e.origin.request_id, "prev_hash": e.prev_hash, "hash": e.hash}


def verification_json(v: AuditVerification) -> dict[str, Any]:
    return {"log": v.log, "ok": v.ok, "rows_checked": v.rows_checked, "first_broken_seq": v.first_broken_seq or None,
            "reason": v.reason or None, "head_seq": v.head_seq, "head_hash": v.head_hash}


async def verify_all(gw: Gateway, who: str) -> list[AuditVerification]:
    """Both chains checked (auth first: it refuses a caller who is not an admin)."""
    return [await gw.auth.admin.verify_audit(who), await gw.billing.models.verify_audit()]


@router.get("/audit")
async def audit(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        fmt = output_format(request.query_params)
        query, logs = audit_query(request.query_params)
        rows = await audit_rows(gw, who, query, logs)
        if fmt == "csv":
            return csv_response([csv_row(e) for e in rows], CSV_COLUMNS, "audit.csv", current_request_id())
        return {"data": [entry_json(e) for e in rows], "count": len(rows)}
    return await admin_call(request, work)


@router.get("/audit/verify")
async def audit_verify(request: Request) -> Response:
    """``{"ok": true|false, "logs": [{"log", "ok", "rows_checked", "first_broken_seq", "reason", "head_seq",
    "head_hash"}, ...]}``: 200 whether or not a chain is broken (the answer says which row)."""
    async def work(gw: Gateway, who: str) -> Any:
        checks = await verify_all(gw, who)
        return {"ok": all(v.ok for v in checks), "logs": [verification_json(v) for v in checks]}
    return await admin_call(request, work)
