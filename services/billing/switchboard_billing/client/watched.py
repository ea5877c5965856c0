"""Which budgets of a key billing watches for alerts, as a request's payer carries them to its settlement.

Billing detects a threshold crossing when it records the spend that crosses it
(docs/alerts.md); the usage event is all it sees then, so the event names the
budgets of the key, its team and its user that have anything to watch: a
``max_budget``, a ``max_daily_spend`` or a ``soft_budget``. A key with none of
them adds nothing to its events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.v1.common_pb2 import WatchedBudget

if TYPE_CHECKING:  # the key's facts, as auth's client types them (no run-time dependency on auth)
    from switchboard_auth.client import KeyContext, Limits

_WATCHED = ("max_budget_micros", "max_daily_spend_micros", "soft_budget_micros")


def _watched(scope: str, subject_id: str, limits: Limits, alias: str = "") -> WatchedBudget | None:
    if not subject_id or not any(limits.HasField(name) for name in _WATCHED):
        return None
    out = WatchedBudget(scope=scope, subject_id=subject_id, budget_duration=limits.budget_duration, alias=alias,
                        alert_thresholds=limits.alert_thresholds)
    for name in _WATCHED:
        if limits.HasField(name):
            setattr(out, name, getattr(limits, name))
    return out


def watched_budgets(key: KeyContext) -> list[WatchedBudget]:
    """The key's, its team's and its user's budgets worth an alert (empty when none has one)."""
    found = (_watched("key", key.key_id, key.limits, key.key_alias),
             _watched("team", key.team_id, key.team_limits, key.team_alias),
             _watched("user", key.user_id, key.user_limits))
    return [w for w in found if w is not None]
