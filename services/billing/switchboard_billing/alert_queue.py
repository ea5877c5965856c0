"""The alert delivery queue in billing's database: claim what is due, record what happened.

Each row is one alert for one webhook (alert_deliveries). A worker claims due
rows in a transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas
claim different rows; SQLite's writers are serialized) by moving their
``claimed_until_ms`` past the longest attempt; then it sends, and records a
success or schedules the next attempt with exponential backoff. A worker that
dies between the claim and the record leaves the row to be claimed again when
its claim lapses: delivery is at least once, and receivers deduplicate by the
idempotency key.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_billing.models import AlertDeliveryRow, AlertRow

_DELIVERIES: sa.Table = AlertDeliveryRow.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ at class creation
_ALERTS: sa.Table = AlertRow.__table__  # type: ignore[attr-defined]  # idem


@dataclass(frozen=True, slots=True)
class Claimed:
    alert: sa.Row[tuple[object, ...]]
    webhook: str
    attempts: int


def backoff_ms(attempts: int, base_seconds: float, max_seconds: float) -> int:
    """Wait before attempt ``attempts + 1``: doubling from ``base_seconds``, at most ``max_seconds``, with up to a
    fifth of it random (so replicas and receivers coming back are not hit all at once)."""
    delay = min(max_seconds, base_seconds * 2 ** max(0, attempts - 1))
    return int(delay * 1000 * (1 + random.random() / 5))  # jitter, not a secret


class AlertQueue:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    async def claim(self, now_ms: int, claim_ms: int, limit: int = 20) -> list[Claimed]:
        """Due pending deliveries (with their alerts), claimed until ``now_ms + claim_ms``."""
        d = _DELIVERIES.c
        due = (sa.select(d.idempotency_key, d.webhook, d.attempts)
               .where(d.status == "pending", d.next_attempt_ms <= now_ms, d.claimed_until_ms <= now_ms)
               .order_by(d.next_attempt_ms).limit(limit))
        if self._postgres:
            due = due.with_for_update(skip_locked=True)
        async with self.engine.begin() as conn:
            rows = (await conn.execute(due)).all()
            for key, webhook, _attempts in rows:
                await conn.execute(_DELIVERIES.update()
                                   .where(d.idempotency_key == key, d.webhook == webhook)
                                   .values(claimed_until_ms=now_ms + claim_ms, attempts=d.attempts + 1))
            keys = {r[0] for r in rows}
            alerts = {a.idempotency_key: a for a in
                      (await conn.execute(sa.select(_ALERTS).where(_ALERTS.c.idempotency_key.in_(keys)))).all()
                      } if keys else {}
        return [Claimed(alerts[key], webhook, attempts + 1) for key, webhook, attempts in rows if key in alerts]

    async def delivered(self, key: str, webhook: str, now_ms: int) -> None:
        d = _DELIVERIES.c
        async with self.engine.begin() as conn:
            await conn.execute(_DELIVERIES.update().where(d.idempotency_key == key, d.webhook == webhook)
                               .values(status="delivered", delivered_at_ms=now_ms, claimed_until_ms=0, last_error=""))

    async def failed(self, key: str, webhook: str, next_attempt_ms: int, error: str) -> None:
        d = _DELIVERIES.c
        async with self.engine.begin() as conn:
            await conn.execute(_DELIVERIES.update().where(d.idempotency_key == key, d.webhook == webhook)
                               .values(next_attempt_ms=next_attempt_ms, claimed_until_ms=0, last_error=error[:300]))

    async def abandon(self, key: str, webhook: str) -> None:
        """The webhook is no longer configured: its deliveries stop (they stay listed as abandoned)."""
        d = _DELIVERIES.c
        async with self.engine.begin() as conn:
            await conn.execute(_DELIVERIES.update().where(d.idempotency_key == key, d.webhook == webhook)
                               .values(status="abandoned", claimed_until_ms=0,
                                       last_error="webhook no longer configured"))
