"""The clock holds and leases lapse by: it runs only while billing is there to renew them.

A hold or lease its holder renews lapses when billing hears no heartbeat for a
few seconds (:mod:`switchboard_billing.budgets`). That rule assumes billing was
there to hear one. When billing itself was away — frozen, stopped, restarted,
cut from its database — the holders' heartbeats found nobody, yet the wall
clock ran on: on its return every hold would have lapsed at once, and the first
reservation (processed before the settlements waiting in the routers' outboxes,
before a restarted router replays its journal) would be admitted against money
those holds still stand for. So billing keeps the time it was last seen running
(one row, ``billing_alive``, shared by every replica on the database: their
latest), and every transaction that judges holds first catches up: when more
than :data:`AWAY_MS` passed since then, every hold and lease whose lapse clock
was running is moved forward by the gap, in the same transaction, before
anything is computed. The holders then have their usual seconds to renew, and
the routers to settle, after billing returns; a hold nobody renews lapses as it
would have, counted in billing's running time.

Read-only views (budget standings) take no lock and write nothing, so they cannot catch up themselves; until a
transaction or the next tick has, they judge lapses at the last-seen instant instead of now
(:func:`lapse_instant`), which counts exactly the holds the catch-up will extend.

The extension is bounded by each hold's expiry (``expires_at_ms``, never
moved): a billing down for hours keeps a dead holder's holds only until they
would have lapsed had billing been up, and never past their expiry.
"""

from __future__ import annotations

import sqlalchemy as sa

from switchboard_billing.models import ReservationRow

_RESERVATIONS = ReservationRow.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ at class creation

#: One row (id 1): the last instant (Unix ms) a billing process was seen running.
ALIVE = sa.Table("billing_alive", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("seen_ms", sa.BigInteger, nullable=False))

#: Last-seen is written at most this often (every transaction reads it; few write it).
REFRESH_MS = 1000
#: A gap above this since billing was last seen is billing having been away: well above the holders' heartbeat
#: (0.5 s), the refresh and an event loop's hiccups, well below the 5 s after which a hold not renewed lapses.
AWAY_MS = 2000
#: How often an idle billing refreshes last-seen (so a quiet moment is not taken for an absence).
TICK_SECONDS = 0.5


def catch_up(conn: sa.Connection, now_ms: int, grace_ms: int) -> int:
    """Refreshes last-seen and, when billing was away, moves every running lapse clock forward by the gap; returns
    the gap made up (0 when none, or when no hold was running). First statement of every transaction that judges holds.

    A row's lapse clock was running when billing was last seen if it could still count then: renewed until after
    ``seen - grace_ms`` (a lapsed lease keeps its committed part for ``grace_ms``), renewable (renewed until before
    its expiry) and not expired now. Replicas race for the refresh with a compare-and-set on the one row, so a
    gap is made up once."""
    seen = conn.execute(sa.select(ALIVE.c.seen_ms).where(ALIVE.c.id == 1)).scalar_one_or_none()
    if seen is None or now_ms - int(seen) < REFRESH_MS:
        return 0
    seen = int(seen)
    moved = conn.execute(ALIVE.update().where(ALIVE.c.id == 1, ALIVE.c.seen_ms == seen)
                         .values(seen_ms=now_ms)).rowcount
    gap = now_ms - seen
    # A last-seen of 0 is a database billing has never run on (the migration found no hold to start it from):
    # nothing was running, so there is no absence to make up.
    if not moved or gap <= AWAY_MS or seen == 0:
        return 0
    r = _RESERVATIONS.c
    moved_on = r.renewed_until_ms + gap
    extended = conn.execute(
        _RESERVATIONS.update()
        .where(r.expires_at_ms > now_ms, r.renewed_until_ms < r.expires_at_ms, r.renewed_until_ms > seen - grace_ms)
        .values(renewed_until_ms=sa.case((moved_on < r.expires_at_ms, moved_on), else_=r.expires_at_ms - 1))).rowcount
    # An absence with no hold running (a clean stop and start: every hold was settled or returned) made up nothing.
    return gap if extended else 0



def lapse_instant(conn: sa.Connection, now_ms: int) -> int:
    """The instant a read-only view judges lapses at (expiries are still judged at ``now_ms``): billing's last-seen
    while an absence is not yet made up, else ``now_ms``.

    A hold running when billing was last seen has its renewal moved forward by the gap (``now - seen``) by
    :func:`catch_up`, so it counts at ``now`` after the catch-up exactly when it counts at ``seen`` before it; a
    hold not running then is not moved and counts at neither. Between billing's return and its first transaction
    or tick, a view judging at ``now`` would show those holds lapsed for up to a tick."""
    seen = conn.execute(sa.select(ALIVE.c.seen_ms).where(ALIVE.c.id == 1)).scalar_one_or_none()
    if seen is None or int(seen) == 0 or now_ms - int(seen) <= AWAY_MS:
        return now_ms
    return int(seen)
