"""When a budget's spend makes an alert, and what the alert says: the rules, without a database.

A subject (key, team, user) watched by a request (its usage event's
``watched_budgets``) has up to three budgets to watch: ``max_budget`` over its
window, ``max_daily_spend`` over the calendar day, and ``soft_budget`` over the
max_budget window. Each threshold of a hard budget (a percentage: 50, 80, 100
by default) is crossed when the spend in the window reaches that share of the
limit; a soft budget is crossed when the spend reaches it. An alert is the
crossing of one threshold of one budget of one subject in one window, named by
its idempotency key: whoever records the key first raised it, nobody raises it
again (:mod:`switchboard_billing.alert_detect`).

Detection is by state, not by edge: after a settlement, every threshold the
spend now stands at or beyond is an alert, and the ones already recorded are
skipped. So a crossing that a crash kept from being recorded is found by the
next settlement of the subject, and two settlements that cross together (on
two replicas) find it once between them. The windows checked are the current
ones and those the settled requests were charged to (their start, as billing
dated them): a request started before midnight and settled after it counts
against, and can alert in, the day it started.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from switchboard.v1.common_pb2 import WatchedBudget
from switchboard_billing.money import format_usd
from switchboard_billing.spend_buckets import ALL_TIME
from switchboard_rules.durations import DurationError
from switchboard_rules.windows import Window, day_window, window_for

#: Lock order of budget subjects (budgets.py locks a request's in this order too): no two transactions wait on
#: each other in opposite orders.
SCOPE_ORDER = {"key_model": 0, "key": 1, "team": 2, "user": 3}
#: Budget names (an alert's ``budget``).
BUDGET, DAILY, SOFT = "budget", "daily", "soft"
#: Alert kinds.
THRESHOLD, SOFT_BUDGET, REPORT = "threshold", "soft_budget", "report"


@dataclass(frozen=True, slots=True)
class Watch:
    """One subject's watched budgets, as a usage event carried them."""

    scope: str
    subject_id: str
    alias: str = ""
    max_budget_micros: int | None = None
    budget_duration: str = ""
    max_daily_spend_micros: int | None = None
    soft_budget_micros: int | None = None
    #: The subject's own thresholds; empty: the gateway's.
    thresholds: tuple[int, ...] = ()

    @property
    def subject(self) -> str:
        """The budget_subjects key ("key:<id>")."""
        return f"{self.scope}:{self.subject_id}"

    @classmethod
    def of(cls, message: WatchedBudget) -> Watch:
        def opt(name: str) -> int | None:
            return int(getattr(message, name)) if message.HasField(name) else None

        return cls(message.scope, message.subject_id, message.alias, opt("max_budget_micros"),
                   message.budget_duration, opt("max_daily_spend_micros"), opt("soft_budget_micros"),
                   tuple(sorted({int(t) for t in message.alert_thresholds if 1 <= t <= 1000})))


def watches_of(messages: Iterable[WatchedBudget]) -> list[Watch]:
    """The distinct subjects watched (the last event's budgets win), in lock order. A batch's events mostly carry
    the same few subjects, so each subject's :class:`Watch` is built once, from its last message."""
    last: dict[tuple[str, str], WatchedBudget] = {}
    for message in messages:
        if message.scope in ("key", "team", "user") and message.subject_id:
            last[(message.scope, message.subject_id)] = message
    return sorted((Watch.of(m) for m in last.values()), key=lambda w: (SCOPE_ORDER[w.scope], w.subject_id))


@dataclass(frozen=True, slots=True)
class Check:
    """One budget of a subject to compare its spend with, over ``[start_ms, end_ms)``."""

    budget: str
    limit_micros: int
    start_ms: int
    end_ms: int
    #: False for an all-time budget (the alert then names no window).
    windowed: bool


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def checks_for(watch: Watch, now: datetime, anchor_ms: int, tz: tzinfo = UTC) -> list[Check]:
    """The subject's budgets that can alert, with their current windows (anchored like budgets.py's)."""
    checks = []
    window: Window | None = None
    if watch.budget_duration and (watch.max_budget_micros is not None or watch.soft_budget_micros is not None):
        try:
            window = window_for(watch.budget_duration, now, datetime.fromtimestamp(anchor_ms / 1000, UTC), tz)
        except DurationError:  # auth never stores one; an alert must never fail the settlement it rides on
            return []
    span = (_ms(window.start), _ms(window.end)) if window is not None else ALL_TIME
    if watch.max_budget_micros is not None and watch.max_budget_micros > 0:
        checks.append(Check(BUDGET, watch.max_budget_micros, *span, window is not None))
    if watch.soft_budget_micros is not None and watch.soft_budget_micros > 0:
        checks.append(Check(SOFT, watch.soft_budget_micros, *span, window is not None))
    if watch.max_daily_spend_micros is not None and watch.max_daily_spend_micros > 0:
        day = day_window(now, tz)
        checks.append(Check(DAILY, watch.max_daily_spend_micros, _ms(day.start), _ms(day.end), True))
    return checks


def checks_covering(watch: Watch, charged_ms: Iterable[int], now: datetime, anchor_ms: int,
                    tz: tzinfo = UTC) -> list[Check]:
    """:func:`checks_for` at ``now``, and in each other window a request of ``charged_ms`` (the instants the
    settled requests were charged at) was charged to: a late settlement's spend is checked where it counts."""
    checks = checks_for(watch, now, anchor_ms, tz)
    if not checks:
        return checks
    inside_from, inside_to = max(c.start_ms for c in checks), min(c.end_ms for c in checks)
    seen = {(c.budget, c.start_ms, c.end_ms) for c in checks}
    for at in sorted({at for at in charged_ms if not inside_from <= at < inside_to}):
        for check in checks_for(watch, datetime.fromtimestamp(at / 1000, UTC), anchor_ms, tz):
            if (check.budget, check.start_ms, check.end_ms) not in seen:
                seen.add((check.budget, check.start_ms, check.end_ms))
                checks.append(check)
    return checks


def charged_instants(rows: Iterable[Mapping[str, object]]) -> dict[str, set[int]]:
    """The instants each budget subject (``key:<id>``, ``team:<id>``, ``user:<id>``) was charged at by ``rows``
    (ledger rows: their ``started_at_ms``)."""
    out: dict[str, set[int]] = {}
    for row in rows:
        at = row["started_at_ms"]
        if not isinstance(at, int):
            continue
        for scope, column in (("key", "key_id"), ("team", "team_id"), ("user", "user_id")):
            subject_id = row.get(column)
            if subject_id:
                out.setdefault(f"{scope}:{subject_id}", set()).add(at)
    return out


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert's row (the budget_alerts columns)."""

    idempotency_key: str
    kind: str
    scope: str
    subject_id: str
    budget: str
    threshold_percent: int
    limit_micros: int
    spent_micros: int
    window_start_ms: int
    window_end_ms: int
    created_at_ms: int
    message: str
    alias: str = ""
    details_json: str = ""

    def values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


def idempotency_key(scope: str, subject_id: str, budget: str, percent: int, limit_micros: int,
                    window_start_ms: int) -> str:
    """Subject, threshold (its percentage of its limit) and budget window: one alert each, ever."""
    return f"{scope}:{subject_id}:{budget}:{percent}%:{limit_micros}:{window_start_ms}"


_WHAT = {BUDGET: "budget", DAILY: "daily spend cap", SOFT: "soft budget"}


def _describe(watch: Watch, check: Check, percent: int, spent: int, end_ms: int) -> str:
    name = f"{watch.scope} {watch.alias!r} ({watch.subject_id})" if watch.alias else \
        f"{watch.scope} {watch.subject_id!r}"
    what = _WHAT[check.budget]
    text = f"{name[0].upper()}{name[1:]} has spent ${format_usd(spent)} of its ${format_usd(check.limit_micros)} {what}"
    if check.budget == SOFT:
        text += " (soft budget passed: requests are still served)"
    else:
        text += f" ({spent * 100 // max(1, check.limit_micros)}%, threshold {percent}%)"
        if percent >= 100:
            text += ": requests are refused until the budget resets or is raised" if check.windowed else \
                ": requests are refused until the budget is raised"
    if check.windowed:
        resets = datetime.fromtimestamp(end_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
        text += f"; the window resets at {resets}"
    return text + "."


def crossings(watch: Watch, check: Check, spent_micros: int, thresholds: tuple[int, ...],
              now_ms: int) -> list[NewAlert]:
    """Every alert the spend now stands at or beyond (recorded or not: the store skips known keys); the subject's
    own thresholds win over the gateway's ``thresholds``."""
    start, end = (check.start_ms, check.end_ms) if check.windowed else (0, 0)
    percents = (100,) if check.budget == SOFT else (watch.thresholds or thresholds)
    out = []
    for percent in percents:
        # spent/limit >= percent/100, in integers
        if spent_micros * 100 < check.limit_micros * percent:
            continue
        out.append(NewAlert(
            idempotency_key(watch.scope, watch.subject_id, check.budget, percent, check.limit_micros, start),
            SOFT_BUDGET if check.budget == SOFT else THRESHOLD, watch.scope, watch.subject_id, check.budget,
            0 if check.budget == SOFT else percent, check.limit_micros, spent_micros, start, end, now_ms,
            _describe(watch, check, percent, spent_micros, end)[:1000], watch.alias[:200]))
    return out
