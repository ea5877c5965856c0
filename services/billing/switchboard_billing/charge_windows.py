"""Which budget windows a request's money belongs to: those of the instant its request started.

The ledger sums a window's spend by each request's start (``started_at_ms`` of
its usage event), so a request is charged to the windows it started in, not to
those of the moment billing hears of it: a request started at 23:59:59.990
whose ``Reserve`` reaches billing at 00:00:00.020 (a slow hop, a wait for a
lease, a retry) is spent today. Its hold must therefore fit today's caps, and
count in today's windows only. The holder sends that start with the
reservation (``ReserveRequest.started_at_ms``), and billing checks the windows
of :func:`charged_at` — never those of its own clock alone.

The start is read on the holder's clock. Billing takes it as it is within
:data:`MAX_CLOCK_SKEW_MS` of its own clock, and otherwise charges the nearest
instant within that bound and answers which (``ReserveResponse.charged_at_ms``):
the holder dates the request's usage event by that instant, so the window
checked is always the window charged. The bound is far above what may delay a
``Reserve`` (auth's admission, a wait for a lease or a heartbeat, a retry:
seconds) and the skew of clocks kept by NTP (milliseconds); a start further off
comes from a broken clock, which must neither reopen a window long closed (a
facade set back a day would find yesterday's unspent cap) nor spend into one
not begun.

A hold records the instants its money may be charged at, ``[charged_from_ms,
charged_until_ms)``, and counts in the windows that overlap them
(:func:`counts_in`):

* one request's hold: its one instant, so the holds of the last window's
  requests still running when a new window starts do not shrink the new one,
  and a late request's hold does not count in a window it is not charged to;
* a lease: :func:`lease_span`, the instants inside every window its grant was
  checked against. Its holder takes from it only for requests that started in
  that span (``LeaseGrant.charged_from_ms``/``charged_until_ms``; a request
  outside goes to billing), so a lease too counts only where it is spent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from switchboard_billing.models import ReservationRow
from switchboard_billing.spend_buckets import ALL_TIME
from switchboard_rules.windows import Window

_RESERVATIONS = ReservationRow.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ at class creation

#: Farthest a request's start may be from billing's clock and still be charged as it is (see the module docstring).
MAX_CLOCK_SKEW_MS = 60_000
#: Seconds between two warnings about holders' clocks (a broken clock would otherwise warn on every request).
SKEW_WARNING_SECONDS = 60.0

log = logging.getLogger(__name__)
_last_skew_warning = -SKEW_WARNING_SECONDS


def ms(instant: datetime) -> int:
    """Unix milliseconds of a timezone-aware instant."""
    return int(instant.timestamp() * 1000)


def instant(unix_ms: int) -> datetime:
    return datetime.fromtimestamp(unix_ms / 1000, UTC)


def charged_at(started_at_ms: int, now_ms: int) -> int:
    """The instant a request is charged at: its start as its holder read it, brought within
    :data:`MAX_CLOCK_SKEW_MS` of billing's clock ``now_ms``; billing's clock when the holder gave none (0)."""
    if started_at_ms <= 0:
        return now_ms
    charged = min(max(started_at_ms, now_ms - MAX_CLOCK_SKEW_MS), now_ms + MAX_CLOCK_SKEW_MS)
    if charged != started_at_ms:
        _warn_skew(started_at_ms - now_ms)
    return charged


def _warn_skew(skew_ms: int) -> None:
    """Says, at most every :data:`SKEW_WARNING_SECONDS`, that a holder's clock is off: its requests are charged
    at billing's bound, and none can be paid from a lease (each costs a round trip), until its clock is fixed."""
    global _last_skew_warning
    now = time.monotonic()
    if now - _last_skew_warning < SKEW_WARNING_SECONDS:
        return
    _last_skew_warning = now
    log.warning("a request's start is further from billing's clock than the bound: charged at the bound; fix the "
                "clock of the facade or router that sent it (NTP)",
                extra={"skew_ms": skew_ms, "bound_ms": MAX_CLOCK_SKEW_MS})


def lease_span(windows: Iterable[Window | None]) -> tuple[int, int]:
    """``[from, until)`` in Unix ms: the instants inside every one of ``windows`` (None: a budget without windows,
    which every instant is inside). A lease checked against these windows pays for requests started in it."""
    start, end = ALL_TIME
    for window in windows:
        if window is not None:
            start, end = max(start, ms(window.start)), min(end, ms(window.end))
    return start, end


def counts_in(window: Window | None) -> sa.ColumnElement[bool]:
    """The reservations rows whose money may be charged to ``window`` (every row for a budget without windows)."""
    if window is None:
        return sa.true()
    r = _RESERVATIONS.c
    return sa.and_(r.charged_from_ms < ms(window.end), r.charged_until_ms > ms(window.start))
