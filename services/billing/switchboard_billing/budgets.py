"""Budgets that concurrency cannot overrun: atomic holds against settled spend.

A key's (or team's, or user's) spend in a window is the sum of its ledger rows
in the window plus what its holds that may be charged to the window hold now
(:func:`~switchboard_billing.charge_windows.counts_in`). A request is charged to
the windows of the instant it started, so those are the windows its reservation
checks, whenever billing hears of it (:mod:`~switchboard_billing.charge_windows`).
Holds lapse by billing's running time, not the wall clock: each transaction
first makes up an absence of billing (:mod:`~switchboard_billing.lapse_clock`).
Reserving checks ``spend + held + this request ≤ limit`` for every budget that
applies and inserts the hold in one transaction, serialized per subject:

* PostgreSQL: the subject's ``budget_subjects`` row is locked with
  ``SELECT ... FOR UPDATE`` (key, then team, then user, so two reservations
  never wait on each other in opposite orders), and the spent and held sums are read in a
  single statement — one snapshot — after the lock is held, so they include
  every hold committed before it and every settlement (which inserts the ledger
  row and frees the hold in one transaction) either whole or not at all. Any
  number of billing replicas may share the database.
* SQLite: one writer runs every money transaction of billing, one at a time,
  each beginning with ``BEGIN IMMEDIATE`` (:mod:`~switchboard_billing.money_writer`).

Every transaction is a plain function of one connection, run whole by the
database's :class:`~switchboard_billing.money_writer.MoneyWriter` (or, for a
read, by ``run_sync`` on a connection of its own).

**Leases** are holds too: money a holder (a facade, or the router for its own
gRPC callers) spends locally on its requests, one hold a request, with no round
trip each. A reservation that asks for one (``lease_ask``) first frees the
unused money of the holder's current lease (``return_lease``) in the same
transaction — so a holder's lease never refuses its own request — then holds
the request, then grants a fresh lease of at most a quarter of what is left
free. The lease pays only for requests that start inside every window the
request was checked against (its span), so its money counts in those windows
only. Each settled request names the lease and frees its hold from it in the
settlement's transaction (:mod:`~switchboard_billing.settlement`).

A lease is *whole* only while its holder renews it (:meth:`Budgets.renew`,
every second or so). A lease not renewed counts only its *committed* part: the
holds of the requests its holder had in flight plus the allowance it may take
before its next heartbeat, as the holder last stated them — and that only for
:data:`LAPSED_LEASE_GRACE_SECONDS` more, then nothing. So a holder that dies
frees the rest of its lease within seconds and all of it soon after: the
requests it sent are with the router, which ends a call whose caller went away
and settles it at once (each settlement frees its hold from the committed part
meanwhile); the allowance it never took is freed by the grace's end instead of
staying held for the reservation TTL. A lapsed lease is never renewed whole
again (its holder is told it is unknown and asks billing for a new one), since
the money it stopped counting may have been held by others since.

A request's own hold (not taken from a lease) lapses with its holder the same
way when the holder asks so (``renew_seconds``): the holder renews it with its
leases until billing reports it settled, so a holder that dies between the
reservation and the router taking the call — nobody will ever settle that
request — frees its money within seconds, not at the reservation TTL. A hold
reserved without ``renew_seconds`` is whole until it expires.

The remaining rule is the output bound: when a request's full bound does not
fit, the caller's ``cap`` says what smaller hold would (the servicer caps the
answer's output so that it does), or the request is denied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_billing.charge_windows import charged_at, counts_in, instant, lease_span, ms
from switchboard_billing.lapse_clock import catch_up, lapse_instant
from switchboard_billing.models import BudgetSubjectRow, ReservationRow, UsageRow
from switchboard_billing.money import format_usd
from switchboard_billing.money_freed import MoneyFreed
from switchboard_billing.money_writer import writer_for
from switchboard_billing.spend_buckets import ALL_TIME, spent_params, spent_sql
from switchboard_billing.sqlite_transactions import reading
from switchboard_rules.windows import Clock, SystemClock, Window, day_window, window_for

_LEDGER = UsageRow.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ at class creation
_RESERVATIONS = ReservationRow.__table__  # type: ignore[attr-defined]  # idem
_SUBJECTS = BudgetSubjectRow.__table__  # type: ignore[attr-defined]  # idem


@dataclass(frozen=True, slots=True)
class Limits:
    """The budgets of one key, team or user, in micro-dollars (None: no such budget)."""

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

    def describe(self, key_alias: str = "", team_alias: str = "") -> str:
        """The budget as a refusal names it; a key by its ``key_alias``, a team by its ``team_alias``, when there
        is one."""
        what = "daily spend cap" if self.kind == "daily" else "budget"
        period = ""
        if self.kind == "budget" and self.window is not None:
            period = " for the current window"
        if self.scope == KEY_MODEL:
            key_id, _, model = self.subject_id.partition("/")
            key = key_alias or key_id
            return f"key {key!r} {what} on model {model!r} of ${format_usd(self.limit_micros)}{period}"
        alias = {"key": key_alias, "team": team_alias}.get(self.scope, "")
        subject = alias or self.subject_id
        return f"{self.scope} {subject!r} {what} of ${format_usd(self.limit_micros)}{period}"


@dataclass(frozen=True, slots=True)
class LeaseAsk:
    """Money a holder wants to spend locally, and how it keeps it (see the module docstring)."""

    lease_id: str
    micros: int
    renew_seconds: float
    #: What the lease keeps covering if its holder never renews it (the holder's first allowance).
    committed_micros: int
    holder: str = ""


@dataclass(frozen=True, slots=True)
class Lease:
    lease_id: str
    micros: int
    renewed_until_ms: int
    expires_at_ms: int
    #: The requests it pays for: those that start in ``[charged_from_ms, charged_until_ms)`` (Unix ms).
    charged_from_ms: int = ALL_TIME[0]
    charged_until_ms: int = ALL_TIME[1]


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of a reservation: held or denied, and where each budget stands."""

    request_id: str
    #: Micro-dollars held for the request (the capped amount when ``capped``).
    amount_micros: int
    held: bool
    budgets: tuple[BudgetState, ...]
    expires_at_ms: int
    #: The first budget the request does not fit; None when it was held (or nothing applied).
    denied_by: BudgetState | None = None
    #: The full hold did not fit and ``cap`` gave the smaller one held.
    capped: bool = False
    lease: Lease | None = None
    #: What the budgets had free for the request (after the holder's lease was returned).
    free_micros: int = 0
    #: Unix ms the request is charged at (its start, within billing's bound): the instant of the windows checked.
    charged_at_ms: int = 0


#: Free micro-dollars → the capped hold that fits them, or None when none is worth serving.
Cap = Callable[[int], int | None]


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one key, team or user stands (see :meth:`Budgets.standings`)."""

    budgets: tuple[BudgetState, ...]
    #: Spend in the window of its max_budget, or all time.
    spent_micros: int
    today_micros: int
    held_micros: int
    today: Window


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    lease_id: str
    known: bool
    micros: int = 0
    renewed_until_ms: int = 0


@dataclass(frozen=True, slots=True)
class Renewed:
    """A heartbeat's answer: each lease's state, and the holds billing holds no more (settled, released, lapsed)."""

    leases: list[LeaseStatus]
    unknown_holds: list[str]


#: Holds renewed per statement (well below any database's limit on bound parameters).
_RENEW_BATCH = 500


@dataclass(frozen=True, slots=True)
class _Owners:
    """Who a hold is for: the key, its team and its user ("" when none), as the reservations row records them."""

    key_id: str
    team_id: str = ""
    user_id: str = ""
    #: The public model, when the key has a budget on it ("" otherwise).
    model: str = ""


#: The ledger's and reservations' column naming each budget scope's subject.
_OWNER_COLUMNS = {"key": "key_id", "team": "team_id", "user": "user_id"}
#: The scope of a key's budget on one model; its subject id is "<key_id>/<model>".
KEY_MODEL = "key_model"


def _owned_by(table: sa.Table, scope: str, subject_id: str) -> sa.ColumnElement[bool]:
    """The rows of ``table`` (ledger or reservations) that count against the budget of ``scope``/``subject_id``."""
    if scope == KEY_MODEL:
        key_id, _, model = subject_id.partition("/")
        return sa.and_(table.c.key_id == key_id, table.c.model == model)
    return table.c[_OWNER_COLUMNS[scope]] == subject_id


@dataclass(frozen=True, slots=True)
class _Check:
    scope: str
    kind: str
    subject_id: str
    limit: int
    window: Window | None


#: How long a lease its holder stopped renewing keeps covering what the holder last committed (its requests in
#: flight and allowance): time for the router to end and settle the calls of a holder that died.
LAPSED_LEASE_GRACE_SECONDS = 5.0
_GRACE_MS = int(LAPSED_LEASE_GRACE_SECONDS * 1000)
#: The kind of a standing's check that reads only what its subject holds now, in any window.
_HELD = "held"


def held_now(now_ms: int) -> sa.ColumnElement[int]:
    """What one reservations row holds at ``now_ms``: a plain hold all of it (until it expires); a lease all of it
    while renewed, its committed part for :data:`LAPSED_LEASE_GRACE_SECONDS` after that, then nothing."""
    r = _RESERVATIONS.c
    return sa.case(
        (r.renewed_until_ms > now_ms, r.amount_micros),
        (r.renewed_until_ms >= r.expires_at_ms, r.amount_micros),  # a plain hold is renewed until it expires
        (r.renewed_until_ms <= now_ms - int(LAPSED_LEASE_GRACE_SECONDS * 1000), 0),
        (r.committed_micros < r.amount_micros, r.committed_micros),
        else_=r.amount_micros,
    )


#: Requests like the one being held that the money left must pay for before any of it is leased.
LEASE_ROOM_UNITS = 16


def _debit_lease(conn: sa.Connection, lease_id: str, micros: int) -> None:
    """Frees ``micros`` of a lease's hold (unused money its holder returns), never below 0.

    A lease at 0 is over (every request it held was settled, the rest returned) and is deleted."""
    amount = _RESERVATIONS.c.amount_micros
    mine = _RESERVATIONS.c.reservation_id == lease_id
    conn.execute(_RESERVATIONS.update().where(mine).values(
        amount_micros=sa.case((amount > micros, amount - micros), else_=0)))
    conn.execute(_RESERVATIONS.delete().where(mine, amount <= 0))


class Budgets:
    def __init__(self, engine: AsyncEngine, clock: Clock | None = None, tz: tzinfo = UTC,
                 default_ttl_seconds: float = 1800.0) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.tz = tz
        self.default_ttl_seconds = default_ttl_seconds
        self._postgres = engine.dialect.name == "postgresql"
        self._writer = writer_for(engine)
        #: Signalled whenever this process frees held money (settlements are signalled by the servicer).
        self.freed = MoneyFreed()

    async def reserve(self, *, request_id: str, key_id: str, team_id: str, key_limits: Limits,
                      team_limits: Limits, amount_micros: int, ttl_seconds: float = 0.0, cap: Cap | None = None,
                      return_lease: tuple[str, int] | None = None, lease_ask: LeaseAsk | None = None,
                      holder: str = "", user_id: str = "", user_limits: Limits | None = None, model: str = "",
                      model_limits: Limits | None = None, renew_seconds: float = 0.0,
                      started_at_ms: int = 0) -> Reservation:
        """Holds ``amount_micros`` (or what ``cap`` says fits) against every budget of the key, its team and its
        user, and the key's budget on ``model`` (``model_limits``), or denies; first frees ``return_lease`` (lease
        id, unused micros), then grants ``lease_ask`` when the full amount was held. Idempotent by request id.
        With ``renew_seconds``, the hold lapses unless its holder renews it (see the module docstring). The
        windows checked are those of the request's start, ``started_at_ms`` (0: now), within billing's bound
        (:func:`~switchboard_billing.charge_windows.charged_at`)."""
        now = self.clock.now()
        charged_ms = charged_at(started_at_ms, ms(now))
        expires_ms = ms(now + timedelta(seconds=ttl_seconds or self.default_ttl_seconds))
        renewed_ms = min(expires_ms, ms(now + timedelta(seconds=renew_seconds))) if renew_seconds > 0 else expires_ms
        on_model = model_limits if model_limits is not None and model_limits.any else None
        owners = _Owners(key_id, team_id, user_id, model if on_model is not None else "")
        subjects = self._subjects(owners, key_limits, team_limits, user_limits or Limits(), on_model or Limits())
        if not subjects:
            return Reservation(request_id, amount_micros, False, (), 0, charged_at_ms=charged_ms)
        return await self._writer.run(partial(
            self._hold, request_id=request_id, owners=owners, subjects=subjects, amount_micros=amount_micros,
            cap=cap, return_lease=return_lease, lease_ask=lease_ask, holder=holder, now=now, expires_ms=expires_ms,
            renewed_ms=renewed_ms, charged_ms=charged_ms))

    def _hold(self, conn: sa.Connection, *, request_id: str, owners: _Owners, subjects: list[tuple[str, str, Limits]],
              amount_micros: int, cap: Cap | None, return_lease: tuple[str, int] | None, lease_ask: LeaseAsk | None,
              holder: str, now: datetime, expires_ms: int, renewed_ms: int, charged_ms: int) -> Reservation:
        """:meth:`reserve`'s transaction."""
        now_ms = ms(now)
        catch_up(conn, now_ms, _GRACE_MS)
        checks = self._checks(conn, subjects, instant(charged_ms), now_ms)
        if return_lease is not None and return_lease[1] > 0:
            _debit_lease(conn, return_lease[0], return_lease[1])
        spent, held, existing, settled = self._sums(conn, checks, now_ms, request_id)
        states = self._states(checks, spent, held)
        if existing is not None or settled:
            amount, expires, charged_ms = existing if existing is not None else (0, 0, charged_ms)
            return Reservation(request_id, amount, existing is not None, states, expires, charged_at_ms=charged_ms)
        free = min(c.limit - spent[i] - held[i] for i, c in enumerate(checks))
        exhausted = next((states[i] for i, c in enumerate(checks) if spent[i] + held[i] >= c.limit), None)
        amount, capped = amount_micros, False
        if amount > free and cap is not None and exhausted is None:
            smaller = cap(max(0, free))
            if smaller is not None and smaller <= free:
                amount, capped = smaller, True
        if exhausted is not None or amount > free:
            denied = exhausted or next(states[i] for i, c in enumerate(checks)
                                       if spent[i] + held[i] + amount > c.limit)
            return Reservation(request_id, amount_micros, False, states, 0, denied_by=denied,
                               free_micros=max(0, free), charged_at_ms=charged_ms)
        if amount > 0:
            self._insert(conn, request_id, owners, amount, now_ms, renewed_ms, expires_ms, amount, holder,
                         charged=(charged_ms, charged_ms + 1))
            held = [h + amount for h in held]
        lease = None
        if lease_ask is not None and not capped and amount > 0:
            lease = self._grant(conn, lease_ask, owners, free - amount, amount, now, expires_ms,
                                lease_span(c.window for c in checks))
            if lease is not None:
                held = [h + lease.micros for h in held]
        return Reservation(request_id, amount, amount > 0, self._states(checks, spent, held),
                           expires_ms if amount > 0 else 0, capped=capped, lease=lease, free_micros=free,
                           charged_at_ms=charged_ms)

    def _grant(self, conn: sa.Connection, ask: LeaseAsk, owners: _Owners, free: int,
                     unit: int, now: datetime, expires_ms: int, span: tuple[int, int]) -> Lease | None:
        """A lease of at most a quarter of ``free``, and only when ``free`` holds at least :data:`LEASE_ROOM_UNITS`
        requests like the one just held: a tight budget is held request by request, exactly, so money a lease
        keeps never caps or refuses a request that arrives alongside. It pays for requests that start in ``span``
        (the instants inside every window ``free`` was checked in)."""
        if free < LEASE_ROOM_UNITS * unit:
            return None
        micros = min(ask.micros, free // 4)
        if micros < unit or micros <= 0:
            return None
        renewed_ms = ms(now + timedelta(seconds=ask.renew_seconds))
        committed = min(micros, max(0, ask.committed_micros))
        self._insert(conn, ask.lease_id, owners, micros, ms(now), renewed_ms, expires_ms, committed,
                     ask.holder, charged=span, lease=True)
        return Lease(ask.lease_id, micros, renewed_ms, expires_ms, *span)

    @staticmethod
    def _insert(conn: sa.Connection, reservation_id: str, owners: _Owners, amount: int,
                      now_ms: int, renewed_ms: int, expires_ms: int, committed: int, holder: str, *,
                      charged: tuple[int, int], lease: bool = False) -> None:
        """Records a hold whose money may be charged at the instants ``charged`` (``[from, until)``)."""
        conn.execute(_RESERVATIONS.insert().values(
            reservation_id=reservation_id, key_id=owners.key_id, team_id=owners.team_id, user_id=owners.user_id,
            model=owners.model, amount_micros=amount,
            created_at_ms=now_ms, expires_at_ms=expires_ms, renewed_until_ms=renewed_ms, committed_micros=committed,
            holder=holder[:120], lease=lease, charged_from_ms=charged[0], charged_until_ms=charged[1]))

    @staticmethod
    def _subjects(owners: _Owners, key_limits: Limits, team_limits: Limits, user_limits: Limits,
                  model_limits: Limits) -> list[tuple[str, str, Limits]]:
        """The budgets that apply, in lock order: the key's on the model, key, team, user."""
        candidates = ((KEY_MODEL, f"{owners.key_id}/{owners.model}" if owners.model else "", model_limits),
                      ("key", owners.key_id, key_limits), ("team", owners.team_id, team_limits),
                      ("user", owners.user_id, user_limits))
        return [(scope, subject_id, limits) for scope, subject_id, limits in candidates if subject_id and limits.any]

    async def renew(self, leases: list[tuple[str, int, int]], renew_seconds: float,
                    holds: Sequence[str] = ()) -> Renewed:
        """A holder's heartbeat: (lease id, committed micros, micros returned) per lease, and the request ids of
        its own holds; each stays whole for ``renew_seconds`` more, a lease keeping its committed part for a grace
        after that. A lease or hold that lapsed already is not renewed (it is unknown to its holder from then on):
        what it stopped counting may be held by others now."""
        if not leases and not holds:
            return Renewed([], [])
        now = self.clock.now()
        now_ms, renewed_ms = ms(now), ms(now + timedelta(seconds=renew_seconds))
        out = await self._writer.run(partial(self._renew, leases=leases, holds=holds, now_ms=now_ms,
                                             renewed_ms=renewed_ms))
        if leases:
            self.freed.notify()  # money returned, or a commitment lowered
        return out

    @staticmethod
    def _renew(conn: sa.Connection, *, leases: list[tuple[str, int, int]], holds: Sequence[str], now_ms: int,
               renewed_ms: int) -> Renewed:
        """:meth:`renew`'s transaction."""
        catch_up(conn, now_ms, _GRACE_MS)
        r = _RESERVATIONS.c
        live = r.expires_at_ms > now_ms, r.renewed_until_ms > now_ms
        renewed: set[str] = set()
        for start in range(0, len(holds), _RENEW_BATCH):
            batch = list(holds[start:start + _RENEW_BATCH])
            renewed.update(conn.execute(
                _RESERVATIONS.update().where(r.reservation_id.in_(batch), *live)
                .values(renewed_until_ms=sa.case((r.expires_at_ms < renewed_ms, r.expires_at_ms), else_=renewed_ms))
                .returning(r.reservation_id)).scalars())
        out: list[LeaseStatus] = []
        for lease_id, committed, returned in leases:
            if returned > 0:
                _debit_lease(conn, lease_id, returned)
            row = conn.execute(
                _RESERVATIONS.update().where(r.reservation_id == lease_id, r.expires_at_ms > now_ms,
                                             r.renewed_until_ms > now_ms)
                .values(renewed_until_ms=renewed_ms,
                        committed_micros=sa.case((r.amount_micros < max(0, committed), r.amount_micros),
                                                 else_=max(0, committed)))
                .returning(r.amount_micros)).first()
            out.append(LeaseStatus(lease_id, True, int(row[0]), renewed_ms) if row is not None
                       else LeaseStatus(lease_id, False))
        return Renewed(out, [h for h in holds if h not in renewed])

    def today(self) -> Window:
        """The calendar day now, in the budget timezone (the window of daily caps)."""
        return day_window(self.clock.now(), self.tz)

    async def standings(self, subjects: list[tuple[str, str, Limits]]) -> list[Standing]:
        """Where each (scope "key"/"team"/"user", id, limits) stands: its budgets, its spend in the current window
        (all time when it has no windowed budget), today and what it holds now. Read-only: no lock, no hold."""
        async with reading(self.engine) as conn:
            return await conn.run_sync(partial(self._standings, subjects=subjects, now=self.clock.now()))

    def _standings(self, conn: sa.Connection, *, subjects: list[tuple[str, str, Limits]],
                   now: datetime) -> list[Standing]:
        now_ms = ms(now)
        lapse_ms = lapse_instant(conn, now_ms)
        today = day_window(now, self.tz)
        out = []
        for scope, subject_id, limits in subjects:
            anchor = self._anchor(conn, f"{scope}:{subject_id}")
            checks = self._budget_checks(scope, subject_id, limits, now, anchor or now_ms)
            window = next((c.window for c in checks if c.kind == "budget"), None)
            extra = [_Check(scope, "spend", subject_id, 0, window), _Check(scope, "today", subject_id, 0, today),
                     _Check(scope, _HELD, subject_id, 0, None)]
            spent, held, _existing, _settled = self._sums(conn, [*checks, *extra], now_ms, "", lapse_ms)
            n = len(checks)
            out.append(Standing(self._states(checks, spent[:n], held[:n]), spent[-3], spent[-2], held[-1], today))
        return out

    @staticmethod
    def _anchor(conn: sa.Connection, subject: str) -> int:
        found = conn.execute(sa.select(_SUBJECTS.c.anchor_ms).where(_SUBJECTS.c.subject == subject)
                             ).scalar_one_or_none()
        return int(found) if found is not None else 0

    def _checks(self, conn: sa.Connection, subjects: list[tuple[str, str, Limits]], charged: datetime,
                now_ms: int) -> list[_Check]:
        """Locks every subject (key, team, user, in that order) and lists its budgets in the windows of the
        instant ``charged`` (a subject billing has not seen is anchored at ``now_ms``)."""
        checks: list[_Check] = []
        for scope, subject_id, limits in subjects:
            anchor_ms = self._lock_subject(conn, f"{scope}:{subject_id}", limits.anchor_ms or now_ms)
            checks.extend(self._budget_checks(scope, subject_id, limits, charged, anchor_ms))
        return checks

    def _budget_checks(self, scope: str, subject_id: str, limits: Limits, now: datetime,
                       anchor_ms: int) -> list[_Check]:
        checks = []
        anchor = instant(anchor_ms)
        if limits.max_budget_micros is not None:
            window = window_for(limits.budget_duration, now, anchor, self.tz) if limits.budget_duration else None
            checks.append(_Check(scope, "budget", subject_id, limits.max_budget_micros, window))
        if limits.max_daily_spend_micros is not None:
            checks.append(_Check(scope, "daily", subject_id, limits.max_daily_spend_micros, day_window(now, self.tz)))
        return checks

    async def return_lease(self, lease_id: str, micros: int) -> None:
        """Frees ``micros`` of a lease (never below 0)."""
        if micros <= 0:
            return
        await self._writer.run(partial(_debit_lease, lease_id=lease_id, micros=micros))
        self.freed.notify()

    def _lock_subject(self, conn: sa.Connection, subject: str, anchor_ms: int) -> int:
        """Locks the subject's row (creating it, anchored at ``anchor_ms``, on first use); returns its anchor."""
        query = sa.select(_SUBJECTS.c.anchor_ms).where(_SUBJECTS.c.subject == subject)
        if self._postgres:
            query = query.with_for_update()
        found = conn.execute(query).scalar_one_or_none()
        if found is not None:
            return int(found)
        # The dialect's own INSERT (for ON CONFLICT), imported for the store in use only.
        if self._postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # SQLite's Insert has the same on_conflict_do_nothing
        conn.execute(insert(_SUBJECTS).values(subject=subject, anchor_ms=anchor_ms)
                     .on_conflict_do_nothing(index_elements=["subject"]))
        return int(conn.execute(query).scalar_one())

    @staticmethod
    def _sums(conn: sa.Connection, checks: list[_Check], now_ms: int, request_id: str,
              lapse_ms: int | None = None) -> tuple[list[int], list[int], tuple[int, int, int] | None, bool]:
        """Spent per check, held per check (the holds that count in its window, :func:`counts_in`), this request's
        own reservation (amount, expiry, the instant it is charged at) if any, and whether it is already settled —
        in one statement, so all from one snapshot. A check of kind :data:`_HELD` reads no spend. Lapses are judged
        at ``lapse_ms`` (a read-only view's :func:`~switchboard_billing.lapse_clock.lapse_instant`), else now."""
        columns: list[sa.ColumnElement[Any] | sa.TextClause] = []
        for i, check in enumerate(checks):
            if check.kind == _HELD:
                columns.append(sa.literal(0))
                continue
            start, end = (ms(check.window.start), ms(check.window.end)) if check.window is not None else ALL_TIME
            columns.append(sa.text(spent_sql(check.scope, f"_{i}")).bindparams(
                **spent_params(check.scope, check.subject_id, start, end, f"_{i}")))
        holding = held_now(now_ms if lapse_ms is None else lapse_ms)
        for check in checks:
            columns.append(sa.select(sa.func.coalesce(sa.func.sum(holding), 0))
                           .where(_owned_by(_RESERVATIONS, check.scope, check.subject_id),
                                  _RESERVATIONS.c.expires_at_ms > now_ms, counts_in(check.window))
                           .scalar_subquery())
        mine = _RESERVATIONS.c.reservation_id == request_id
        columns.append(sa.select(_RESERVATIONS.c.amount_micros).where(mine).scalar_subquery())
        columns.append(sa.select(_RESERVATIONS.c.expires_at_ms).where(mine).scalar_subquery())
        columns.append(sa.select(_RESERVATIONS.c.charged_from_ms).where(mine).scalar_subquery())
        columns.append(sa.select(sa.func.count()).select_from(_LEDGER)
                       .where(_LEDGER.c.request_id == request_id).scalar_subquery())
        row = conn.execute(sa.select(*columns)).one()
        n = len(checks)
        sums = [int(v) for v in row[: 2 * n]]
        amount, expires, charged, settled = row[2 * n:]
        held = sums[n:]
        existing = (int(amount), int(expires), int(charged)) if amount is not None else None
        return sums[: len(checks)], held, existing, bool(settled)

    @staticmethod
    def _states(checks: list[_Check], spent: list[int], held: list[int]) -> tuple[BudgetState, ...]:
        return tuple(BudgetState(c.scope, c.kind, c.subject_id, c.limit, spent[i], held[i], c.window)
                     for i, c in enumerate(checks))

    async def release(self, request_id: str) -> bool:
        """Drops a held reservation; True when there was one."""
        mine = _RESERVATIONS.c.reservation_id == request_id
        released = await self._writer.run(lambda conn: conn.execute(_RESERVATIONS.delete().where(mine)).rowcount)
        if released:
            self.freed.notify()
        return bool(released)

    async def keep_alive(self) -> int:
        """Refreshes the time billing was last seen running, making up an absence first (see
        :mod:`~switchboard_billing.lapse_clock`); run every :data:`~switchboard_billing.lapse_clock.TICK_SECONDS` so
        an idle billing is not taken for an absent one. Returns the gap made up (ms)."""
        now_ms = ms(self.clock.now())
        return await self._writer.run(lambda conn: catch_up(conn, now_ms, _GRACE_MS))

    async def purge_expired(self) -> int:
        """Deletes reservations past their expiry (they already count for nothing); returns how many."""
        expired = _RESERVATIONS.c.expires_at_ms <= ms(self.clock.now())
        return await self._writer.run(lambda conn: int(conn.execute(_RESERVATIONS.delete().where(expired)).rowcount
                                                       or 0))
