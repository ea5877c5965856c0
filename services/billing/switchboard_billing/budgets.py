"""Budgets that concurrency cannot overrun: atomic reservations against settled spend.

A key's (or team's) spend in a window is the sum of its ledger rows in the
window plus the reservations it holds that have not expired. Reserving checks
``spend + held + worst case ≤ limit`` for every budget that applies and inserts
the reservation in one transaction, serialized per subject:

* PostgreSQL: the subject's ``budget_subjects`` row is locked with
  ``SELECT ... FOR UPDATE`` (key before team, so two reservations never wait on
  each other in opposite orders), and the spent and held sums are read in a
  single statement — one snapshot — after the lock is held, so they include
  every reservation committed before it and every settlement (which inserts
  the ledger row and deletes the reservation in one transaction) either whole
  or not at all. Any number of billing replicas may share the database.
* SQLite: every transaction begins with ``BEGIN IMMEDIATE`` (see
  :func:`~switchboard_billing.ledger.use_immediate_transactions`), so writers
  are serialized by the database lock.

Leases (:meth:`Budgets.lease`) are reservations too: one hold of several
requests' worst case that a facade spends locally, one unit a request; each
settled event naming the lease frees its unit in the settlement's transaction
(:func:`debit_lease`), and the facade returns the units it did not use.

Settlement does not take the subject lock: replacing a hold by a smaller real
cost can only free budget. Expired reservations stop counting at
``expires_at_ms`` and are deleted by :meth:`Budgets.purge_expired`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchboard_billing.ledger import debit_lease, use_immediate_transactions
from switchboard_billing.models import BudgetSubjectRow, ReservationRow, UsageRow
from switchboard_billing.money import format_usd
from switchboard_billing.windows import Clock, SystemClock, Window, day_window, window_for

_LEDGER = UsageRow.__table__  # type: ignore[attr-defined]
_RESERVATIONS = ReservationRow.__table__  # type: ignore[attr-defined]
_SUBJECTS = BudgetSubjectRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Limits:
    """The budgets of one key or team, in micro-dollars (None: no such budget)."""

    max_budget_micros: int | None = None
    budget_duration: str = ""
    max_daily_spend_micros: int | None = None
    #: Unix ms to anchor windows on; 0: the first time billing sees the subject.
    anchor_ms: int = 0

    @property
    def any(self) -> bool:
        return self.max_budget_micros is not None or self.max_daily_spend_micros is not None


@dataclass(frozen=True, slots=True)
class BudgetState:
    scope: str
    kind: str
    subject_id: str
    limit_micros: int
    spent_micros: int
    held_micros: int
    #: None for an all-time budget.
    window: Window | None

    @property
    def remaining_micros(self) -> int:
        return max(0, self.limit_micros - self.spent_micros - self.held_micros)

    @property
    def resets_at(self) -> datetime | None:
        return self.window.end if self.window is not None else None

    def describe(self) -> str:
        what = "daily spend cap" if self.kind == "daily" else "budget"
        period = ""
        if self.kind == "budget" and self.window is not None:
            period = " for the current window"
        return f"{self.scope} {self.subject_id!r} {what} of ${format_usd(self.limit_micros)}{period}"


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of a reservation: held or denied, and where each budget stands."""

    request_id: str
    amount_micros: int
    held: bool
    budgets: tuple[BudgetState, ...]
    expires_at_ms: int
    #: The first budget the request does not fit; None when it was held (or nothing applied).
    denied_by: BudgetState | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """A budget lease: ``units`` holds of ``unit_micros`` each, taken as one reservation (0 units: none)."""

    lease_id: str
    units: int
    unit_micros: int
    budgets: tuple[BudgetState, ...]
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class _Check:
    scope: str
    kind: str
    subject_id: str
    limit: int
    window: Window | None


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


class Budgets:
    def __init__(self, engine: AsyncEngine, clock: Clock | None = None, tz: tzinfo = UTC,
                 default_ttl_seconds: float = 1800.0) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.tz = tz
        self.default_ttl_seconds = default_ttl_seconds
        self._postgres = engine.dialect.name == "postgresql"
        use_immediate_transactions(engine)

    async def reserve(self, *, request_id: str, key_id: str, team_id: str, key_limits: Limits,
                      team_limits: Limits, amount_micros: int, ttl_seconds: float = 0.0) -> Reservation:
        """Holds ``amount_micros`` against every budget of the key and its team, or denies; idempotent by id."""
        now = self.clock.now()
        now_ms = _ms(now)
        expires_ms = _ms(now + timedelta(seconds=ttl_seconds or self.default_ttl_seconds))
        subjects = [("key", key_id, key_limits)] if key_id and key_limits.any else []
        if team_id and team_limits.any:
            subjects.append(("team", team_id, team_limits))
        if not subjects:
            return Reservation(request_id, amount_micros, False, (), 0)
        async with self.engine.begin() as conn:
            checks = await self._checks(conn, subjects, now, now_ms)
            spent, held, existing, settled = await self._sums(conn, checks, now_ms, request_id)
            if existing is not None or settled:
                states = self._states(checks, spent, held)
                amount = existing[0] if existing is not None else 0
                return Reservation(request_id, amount, existing is not None, states,
                                   existing[1] if existing is not None else 0)
            denied = None
            for i, check in enumerate(checks):
                used = spent[i] + held[check.scope]
                if used + amount_micros > check.limit or used >= check.limit:
                    denied = i
                    break
            if denied is not None:
                states = self._states(checks, spent, held)
                return Reservation(request_id, amount_micros, False, states, 0, denied_by=states[denied])
            if amount_micros > 0:
                await conn.execute(_RESERVATIONS.insert().values(
                    reservation_id=request_id, key_id=key_id, team_id=team_id, amount_micros=amount_micros,
                    created_at_ms=now_ms, expires_at_ms=expires_ms))
                for scope, _subject, _limits in subjects:
                    held[scope] += amount_micros
            return Reservation(request_id, amount_micros, amount_micros > 0, self._states(checks, spent, held),
                               expires_ms if amount_micros > 0 else 0)

    async def lease(self, *, lease_id: str, key_id: str, team_id: str, key_limits: Limits, team_limits: Limits,
                    unit_micros: int, units: int, ttl_seconds: float = 0.0) -> Lease:
        """Holds up to ``units`` × ``unit_micros`` (never more than half of what every budget has free) as one
        reservation ``lease_id``; idempotent by id. Grants 0 units when not one fits or a unit costs nothing."""
        now = self.clock.now()
        now_ms = _ms(now)
        expires_ms = _ms(now + timedelta(seconds=ttl_seconds or self.default_ttl_seconds))
        subjects = [("key", key_id, key_limits)] if key_id and key_limits.any else []
        if team_id and team_limits.any:
            subjects.append(("team", team_id, team_limits))
        if not subjects or unit_micros <= 0 or units <= 0:
            return Lease(lease_id, 0, unit_micros, (), 0)
        async with self.engine.begin() as conn:
            checks = await self._checks(conn, subjects, now, now_ms)
            spent, held, existing, _settled = await self._sums(conn, checks, now_ms, lease_id)
            if existing is not None:
                return Lease(lease_id, existing[0] // unit_micros, unit_micros, self._states(checks, spent, held),
                             existing[1])
            free = min(check.limit - spent[i] - held[check.scope] for i, check in enumerate(checks))
            granted = min(units, max(0, free // 2) // unit_micros)
            if granted <= 0:
                return Lease(lease_id, 0, unit_micros, self._states(checks, spent, held), 0)
            await conn.execute(_RESERVATIONS.insert().values(
                reservation_id=lease_id, key_id=key_id, team_id=team_id, amount_micros=granted * unit_micros,
                created_at_ms=now_ms, expires_at_ms=expires_ms))
            for scope, _subject, _limits in subjects:
                held[scope] += granted * unit_micros
            return Lease(lease_id, granted, unit_micros, self._states(checks, spent, held), expires_ms)

    async def _checks(self, conn: AsyncConnection, subjects: list[tuple[str, str, Limits]], now: datetime,
                      now_ms: int) -> list[_Check]:
        """Locks every subject (key before team) and lists the budgets that apply now."""
        checks: list[_Check] = []
        for scope, subject_id, limits in subjects:
            anchor_ms = await self._lock_subject(conn, f"{scope}:{subject_id}", limits.anchor_ms or now_ms)
            anchor = datetime.fromtimestamp(anchor_ms / 1000, UTC)
            if limits.max_budget_micros is not None:
                window = window_for(limits.budget_duration, now, anchor, self.tz) if limits.budget_duration \
                    else None
                checks.append(_Check(scope, "budget", subject_id, limits.max_budget_micros, window))
            if limits.max_daily_spend_micros is not None:
                checks.append(_Check(scope, "daily", subject_id, limits.max_daily_spend_micros,
                                     day_window(now, self.tz)))
        return checks

    async def return_lease(self, lease_id: str, micros: int) -> None:
        """Frees ``micros`` of a lease (never below 0)."""
        if micros <= 0:
            return
        async with self.engine.begin() as conn:
            await debit_lease(conn, lease_id, micros)

    async def _lock_subject(self, conn: AsyncConnection, subject: str, anchor_ms: int) -> int:
        """Locks the subject's row (creating it, anchored at ``anchor_ms``, on first use); returns its anchor."""
        query = sa.select(_SUBJECTS.c.anchor_ms).where(_SUBJECTS.c.subject == subject)
        if self._postgres:
            query = query.with_for_update()
        found = (await conn.execute(query)).scalar_one_or_none()
        if found is not None:
            return int(found)
        # The dialect's own INSERT (for ON CONFLICT), imported for the store in use only.
        if self._postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        await conn.execute(insert(_SUBJECTS).values(subject=subject, anchor_ms=anchor_ms)
                           .on_conflict_do_nothing(index_elements=["subject"]))
        return int((await conn.execute(query)).scalar_one())

    async def _sums(self, conn: AsyncConnection, checks: list[_Check], now_ms: int,
                    request_id: str) -> tuple[list[int], dict[str, int], tuple[int, int] | None, bool]:
        """Spent per check, held per scope, this request's own reservation (amount, expiry) if any, and
        whether it is already settled — in one statement, so all from one snapshot."""
        columns = []
        for check in checks:
            column = _LEDGER.c.key_id if check.scope == "key" else _LEDGER.c.team_id
            query = sa.select(sa.func.coalesce(sa.func.sum(_LEDGER.c.cost_micros), 0)).where(
                column == check.subject_id)
            if check.window is not None:
                query = query.where(_LEDGER.c.started_at_ms >= _ms(check.window.start),
                                    _LEDGER.c.started_at_ms < _ms(check.window.end))
            columns.append(query.scalar_subquery())
        scopes = {c.scope: c.subject_id for c in checks}
        for scope, subject_id in scopes.items():
            column = _RESERVATIONS.c.key_id if scope == "key" else _RESERVATIONS.c.team_id
            columns.append(sa.select(sa.func.coalesce(sa.func.sum(_RESERVATIONS.c.amount_micros), 0))
                           .where(column == subject_id, _RESERVATIONS.c.expires_at_ms > now_ms).scalar_subquery())
        mine = _RESERVATIONS.c.reservation_id == request_id
        columns.append(sa.select(_RESERVATIONS.c.amount_micros).where(mine).scalar_subquery())
        columns.append(sa.select(_RESERVATIONS.c.expires_at_ms).where(mine).scalar_subquery())
        columns.append(sa.select(sa.func.count()).select_from(_LEDGER)
                       .where(_LEDGER.c.request_id == request_id).scalar_subquery())
        row = (await conn.execute(sa.select(*columns))).one()
        sums = [int(v) for v in row[: len(checks) + len(scopes)]]
        amount, expires, settled = row[len(checks) + len(scopes):]
        held = dict(zip(scopes, sums[len(checks):], strict=True))
        existing = (int(amount), int(expires)) if amount is not None else None
        return sums[: len(checks)], held, existing, bool(settled)

    @staticmethod
    def _states(checks: list[_Check], spent: list[int], held: dict[str, int]) -> tuple[BudgetState, ...]:
        return tuple(BudgetState(c.scope, c.kind, c.subject_id, c.limit, spent[i], held[c.scope], c.window)
                     for i, c in enumerate(checks))

    async def release(self, request_id: str) -> bool:
        """Drops a held reservation; True when there was one."""
        async with self.engine.begin() as conn:
            result = await conn.execute(_RESERVATIONS.delete().where(_RESERVATIONS.c.reservation_id == request_id))
            return bool(result.rowcount)

    async def purge_expired(self) -> int:
        """Deletes reservations past their expiry (they already count for nothing); returns how many."""
        now_ms = _ms(self.clock.now())
        async with self.engine.begin() as conn:
            result = await conn.execute(_RESERVATIONS.delete().where(_RESERVATIONS.c.expires_at_ms <= now_ms))
            return int(result.rowcount or 0)
