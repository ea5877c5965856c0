"""The usage ledger: idempotent inserts that settle reservations, filtered reads and sums."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from switchboard_billing.alert_detect import AlertPolicy
from switchboard_billing.alert_rules import NewAlert, Watch
from switchboard_billing.migrations import LOCK_ID, MIGRATIONS
from switchboard_billing.models import UsageRow
from switchboard_billing.money_writer import close_writer
from switchboard_billing.settlement import Batch
from switchboard_billing.settlement import for_engine as settlements_for
from switchboard_billing.sqlite_transactions import reading, use_immediate_transactions
from switchboard_billing.usage_sums import UsageSum, summarize
from switchboard_common.database import migrate


class Ledger:
    def __init__(self, engine: AsyncEngine, alerts: AlertPolicy | None = None) -> None:
        self.engine = engine
        use_immediate_transactions(engine)
        self._settlements = settlements_for(engine, alerts)
        #: Called with the alerts each settlement raised (the delivery worker's wake-up).
        self.on_alerts: Callable[[list[NewAlert]], None] | None = None

    async def migrate(self) -> None:
        await migrate(self.engine, MIGRATIONS, LOCK_ID, "billing")

    async def record(self, row: UsageRow | Mapping[str, Any]) -> bool:
        """Inserts the row unless its request id is already recorded; True when inserted."""
        return await self.record_many([row]) == 1

    async def record_many(self, rows: Sequence[UsageRow | Mapping[str, Any]]) -> int:
        """Inserts rows in one transaction, skipping request ids already recorded; returns how many were new."""
        return len(await self.record_new(rows))

    async def record_new(self, rows: Sequence[UsageRow | Mapping[str, Any]],
                         lease_units: Mapping[str, tuple[str, int]] | None = None,
                         watches: Sequence[Watch] = ()) -> list[dict[str, Any]]:
        """Inserts rows in one transaction, skipping request ids already recorded; returns the rows that were new.

        The same transaction deletes the rows' reservations, so a request's hold is
        replaced by its real cost atomically (and a replayed settlement changes nothing);
        a request admitted under a budget lease (``lease_units``: request id → lease id
        and micro-dollars) frees its unit of the lease the same way, and the budgets in
        ``watches`` are checked for alerts (alert_detect.py) when the ledger has an alert policy. See
        :mod:`switchboard_billing.settlement` for how a batch stays a few statements.
        """
        now = int(time.time() * 1000)
        unique: dict[str, dict[str, Any]] = {}
        for row in rows:
            values = {**row} if isinstance(row, Mapping) else row.model_dump()
            values["recorded_at_ms"] = now
            unique.setdefault(values["request_id"], values)
        if not unique:
            return []
        leased = lease_units or {}
        batch = Batch(
            rows=list(unique.values()),
            reserved=[request_id for request_id in unique if request_id not in leased],
            units=[(request_id, lease_id, micros) for request_id, (lease_id, micros) in leased.items()
                   if request_id in unique and lease_id and micros > 0],
            watches=list(watches))
        new_ids = await self._settlements.write(batch)
        if batch.raised and self.on_alerts is not None:
            self.on_alerts(batch.raised)
        return [values for request_id, values in unique.items() if request_id in new_ids]

    async def list(self, *, key_id: str = "", team_id: str = "", model: str = "", from_ms: int = 0,
                   to_ms: int = 0, limit: int = 100, before: tuple[int, str] | None = None,
                   request_id: str = "", user_id: str = "") -> list[UsageRow]:
        query = select(UsageRow)
        if request_id:  # the gateway's request id, or the provider's id of the answer
            query = query.where((col(UsageRow.request_id) == request_id) | (col(UsageRow.response_id) == request_id))
        if key_id:
            query = query.where(UsageRow.key_id == key_id)
        if team_id:
            query = query.where(UsageRow.team_id == team_id)
        if user_id:
            query = query.where(UsageRow.user_id == user_id)
        if model:
            query = query.where(UsageRow.model == model)
        if from_ms:
            query = query.where(col(UsageRow.started_at_ms) >= from_ms)
        if to_ms:
            query = query.where(col(UsageRow.started_at_ms) < to_ms)
        if before is not None:
            started, request_id = before
            query = query.where(
                (col(UsageRow.started_at_ms) < started)
                | ((col(UsageRow.started_at_ms) == started) & (col(UsageRow.request_id) < request_id))
            )
        query = query.order_by(col(UsageRow.started_at_ms).desc(), col(UsageRow.request_id).desc()).limit(limit)
        async with reading(self.engine) as conn, AsyncSession(bind=conn, expire_on_commit=False) as session:
            return list((await session.exec(query)).all())

    async def summarize(self, *, key_id: str = "", team_id: str = "", model: str = "", from_ms: int = 0, to_ms: int = 0,
                        group_by: str = "", split_by: str = "", user_id: str = "") -> builtins.list[UsageSum]:
        """Sums per hour, day, model, key, team or user (or one total); see :mod:`switchboard_billing.usage_sums`."""
        return await summarize(self.engine, key_id=key_id, team_id=team_id, model=model, from_ms=from_ms,
                               to_ms=to_ms, group_by=group_by, split_by=split_by, user_id=user_id)

    async def close(self) -> None:
        await self._settlements.close()
        await close_writer(self.engine)
        await self.engine.dispose()

