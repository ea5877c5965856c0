"""Budget bars: what a key's or team's budget has spent, holds for requests in flight and has left, and when it
resets, from billing's standing of it (``GetBudgets``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from switchboard_auth.client import Limits
from switchboard_billing.client import SubjectBudgets
from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway

#: From this share of a budget spent (and held), its bar turns to a warning.
WARN_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class Bar:
    #: "budget" (max_budget over its window) or "daily" (max_daily_spend).
    kind: str
    title: str
    limit: int
    spent: int
    held: int
    left: int
    #: Unix milliseconds; 0: never.
    resets_at_ms: int

    @property
    def spent_pct(self) -> float:
        return _share(self.spent, self.limit)

    @property
    def held_pct(self) -> float:
        return min(_share(self.held, self.limit), 100 - self.spent_pct)

    @property
    def level(self) -> str:
        if self.limit <= 0 or self.spent >= self.limit:
            return "over"
        return "warn" if (self.spent + self.held) >= WARN_SHARE * self.limit else "ok"

    @property
    def used(self) -> float:
        """Spent and held, as a share of the limit (for sorting)."""
        return (self.spent + self.held) / self.limit if self.limit > 0 else 1.0


@dataclass(frozen=True, slots=True)
class Standing:
    #: Spend of the current budget window (all time without a windowed budget), and of today.
    spent: int
    today: int
    held: int
    bars: list[Bar] = field(default_factory=list)

    @property
    def used(self) -> float:
        return max((b.used for b in self.bars), default=0.0)


def _share(part: int, whole: int) -> float:
    if whole <= 0:
        return 100.0 if part > 0 else 0.0
    return max(0.0, min(100.0, 100 * part / whole))


def standing_of(found: SubjectBudgets | None, budget_duration: str = "") -> Standing | None:
    """Billing's standing as bars (None when billing could not be asked)."""
    if found is None:
        return None
    bars = []
    for b in found.budgets:
        if b.kind == "daily":
            title = "Daily cap"
        else:
            title = f"Budget per {budget_duration}" if budget_duration else "Budget (all time)"
        bars.append(Bar(b.kind, title, b.limit_micros, b.spent_micros, b.held_micros, b.remaining_micros,
                        b.resets_at_ms))
    return Standing(found.spent_micros, found.today_micros, found.held_micros, bars)


def has_budget(limits: Limits) -> bool:
    return limits.HasField("max_budget_micros") or limits.HasField("max_daily_spend_micros")


async def standings(gw: Gateway, subjects: Sequence[tuple[str, str, Limits]]) -> dict[tuple[str, str], Standing]:
    """(scope, id) → its standing, for ("key"|"team", id, limits) subjects; empty when billing cannot answer."""
    if not subjects:
        return {}
    try:
        found = await gw.billing.standings(list(subjects))
    except ServiceError:
        return {}
    durations = {(scope, subject_id): limits.budget_duration for scope, subject_id, limits in subjects}
    out = {}
    for s in found:
        standing = standing_of(s, durations.get((s.scope, s.subject_id), ""))
        if standing is not None:
            out[(s.scope, s.subject_id)] = standing
    return out
