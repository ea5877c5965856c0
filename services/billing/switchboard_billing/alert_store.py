"""Reading alerts (the ListAlerts RPC) and raising the periodic spend reports per team.

A report is an alert of kind ``report`` for a team and a finished period (the
day or the ISO week before, in the budget timezone): its idempotency key names
the team and the period, so every billing replica may try to raise it and one
does; it is queued for every webhook like a budget alert.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchboard_billing.alert_rules import REPORT, NewAlert
from switchboard_billing.models import AlertDeliveryRow, AlertRow, UsageRow
from switchboard_billing.money import format_usd
from switchboard_billing.sqlite_transactions import reading
from switchboard_rules.windows import day_window

_ALERTS: sa.Table = AlertRow.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ at class creation
_DELIVERIES: sa.Table = AlertDeliveryRow.__table__  # type: ignore[attr-defined]  # idem
_LEDGER: sa.Table = UsageRow.__table__  # type: ignore[attr-defined]  # idem
KINDS = ("threshold", "soft_budget", "report")
SCOPES = ("key", "team", "user")


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


async def list_alerts(engine: AsyncEngine, *, scope: str = "", subject_id: str = "", kind: str = "",
                      from_ms: int = 0, to_ms: int = 0, limit: int = 100, before: tuple[int, str] | None = None,
                      subjects: list[str] | None = None) -> tuple[list[Any], dict[str, list[Any]]]:
    """Alerts newest first (at most ``limit``), and their deliveries by idempotency key."""
    a = _ALERTS.c
    query = sa.select(_ALERTS)
    if scope:
        query = query.where(a.scope == scope)
    if subject_id:
        query = query.where(a.subject_id == subject_id)
    if kind:
        query = query.where(a.kind == kind)
    if from_ms:
        query = query.where(a.created_at_ms >= from_ms)
    if to_ms:
        query = query.where(a.created_at_ms < to_ms)
    if subjects:
        pairs = [s.partition(":") for s in subjects]
        query = query.where(sa.or_(*(sa.and_(a.scope == sc, a.subject_id == sid) for sc, _, sid in pairs)))
    if before is not None:
        query = query.where((a.created_at_ms < before[0])
                            | ((a.created_at_ms == before[0]) & (a.idempotency_key < before[1])))
    query = query.order_by(a.created_at_ms.desc(), a.idempotency_key.desc()).limit(limit)
    async with reading(engine) as conn:
        alerts = list((await conn.execute(query)).all())
        deliveries: dict[str, list[Any]] = {}
        keys = [r.idempotency_key for r in alerts]
        if keys:
            for row in (await conn.execute(sa.select(_DELIVERIES).where(_DELIVERIES.c.idempotency_key.in_(keys))
                                           .order_by(_DELIVERIES.c.webhook))).all():
                deliveries.setdefault(row.idempotency_key, []).append(row)
    return alerts, deliveries


def report_period(period: str, now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The last finished day, or ISO week (Monday to Monday), before ``now`` in ``tz``."""
    today = day_window(now, tz)
    if period == "daily":
        return day_window(today.start - timedelta(seconds=1), tz).start, today.start
    local = today.start.astimezone(tz)
    this_monday = day_window(today.start - timedelta(days=local.weekday()) + timedelta(hours=12), tz).start
    last_monday = day_window(this_monday - timedelta(days=7) + timedelta(hours=12), tz).start
    return last_monday, this_monday


async def _record(conn: AsyncConnection, alert: NewAlert, webhooks: tuple[str, ...], postgres: bool) -> bool:
    insert: Any = pg_insert if postgres else sqlite_insert
    inserted = (await conn.execute(insert(_ALERTS).values(**alert.values()).on_conflict_do_nothing()
                                   .returning(_ALERTS.c.idempotency_key))).first()
    if inserted is None:
        return False
    for name in webhooks:
        await conn.execute(insert(_DELIVERIES).values(
            idempotency_key=alert.idempotency_key, webhook=name, status="pending", attempts=0,
            next_attempt_ms=alert.created_at_ms, claimed_until_ms=0, delivered_at_ms=0, last_error=""
        ).on_conflict_do_nothing())
    return True


async def raise_reports(engine: AsyncEngine, period: str, now: datetime, tz: tzinfo,
                        webhooks: tuple[str, ...]) -> list[NewAlert]:
    """The spend report of every team that spent in the last finished period, unless already raised."""
    start, end = report_period(period, now, tz)
    start_ms, end_ms = _ms(start), _ms(end)
    u = _LEDGER.c
    query = (sa.select(u.team_id, u.model, sa.func.count(), sa.func.coalesce(sa.func.sum(u.cost_micros), 0))
             .where(u.team_id != "", u.started_at_ms >= start_ms, u.started_at_ms < end_ms)
             .group_by(u.team_id, u.model).order_by(u.team_id, u.model))
    per_team: dict[str, list[tuple[str, int, int]]] = {}
    async with reading(engine) as conn:
        for team_id, model, requests, micros in (await conn.execute(query)).all():
            per_team.setdefault(team_id, []).append((model, int(requests), int(micros)))
    raised = []
    now_ms = _ms(now)
    async with engine.begin() as conn:
        for team_id, models in per_team.items():
            total = sum(m[2] for m in models)
            requests = sum(m[1] for m in models)
            details = {"period": period, "requests": requests, "spent_usd": format_usd(total),
                       "by_model": [{"model": m, "requests": n, "spent_usd": format_usd(c), "spent_micros": c}
                                    for m, n, c in sorted(models, key=lambda m: -m[2])]}
            label = "day" if period == "daily" else "week"
            alert = NewAlert(
                f"report:team:{team_id}:{period}:{start_ms}", REPORT, "team", team_id, REPORT, 0, 0, total,
                start_ms, end_ms, now_ms,
                f"Team {team_id!r} spent ${format_usd(total)} over {requests} requests in the {label} from "
                f"{start.isoformat()} to {end.isoformat()}.", "", orjson.dumps(details).decode())
            if await _record(conn, alert, webhooks, engine.dialect.name == "postgresql"):
                raised.append(alert)
    return raised
