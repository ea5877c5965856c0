"""Budget-remaining gauges: what each watched key's and team's budget has left, for Prometheus.

Billing learns a subject's budgets from the requests that carry them (Reserve,
GetBudgets): it keeps the most recently seen subjects that have a budget, at
most ``limit`` of them (the least recently seen one is dropped first), and
refreshes their standing in the background every ``every_seconds``. The
exposition (``switchboard_budget_remaining_micros`` and
``switchboard_budget_limit_micros``, see :mod:`switchboard_common.metrics`)
reads the last refresh, so a scrape costs no query and the number of series is
bounded by ``limit`` times the two kinds of budget, however many keys exist.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from switchboard_billing.budgets import Budgets, Limits

log = logging.getLogger(__name__)


class BudgetGauges:
    def __init__(self, budgets: Budgets, limit: int = 100, every_seconds: float = 15.0) -> None:
        self.budgets = budgets
        self.limit = limit
        self.every_seconds = every_seconds
        #: (scope, subject id) → its limits as last seen, least recently seen first.
        self._watched: OrderedDict[tuple[str, str], Limits] = OrderedDict()
        #: (scope, subject, kind, remaining micros, limit micros) of the last refresh.
        self._values: list[tuple[str, str, str, int, int]] = []

    def seen(self, scope: str, subject_id: str, limits: Limits) -> None:
        """A request named this subject and its budgets: watch it (or stop, when it has no budget any more)."""
        if self.limit <= 0 or not subject_id:
            return
        subject = (scope, subject_id)
        if not limits.any:
            self._watched.pop(subject, None)
            return
        self._watched[subject] = limits
        self._watched.move_to_end(subject)
        while len(self._watched) > self.limit:
            self._watched.popitem(last=False)

    def values(self) -> list[tuple[str, str, str, int, int]]:
        return self._values

    async def refresh(self) -> None:
        """Reads the standing of every watched subject (one read-only query per subject)."""
        subjects = [(scope, subject_id, limits) for (scope, subject_id), limits in self._watched.items()]
        standings = await self.budgets.standings(subjects)
        self._values = [(b.scope, b.subject_id, b.kind, b.remaining_micros, b.limit_micros)
                        for standing in standings for b in standing.budgets]

    async def run(self) -> None:
        """Refreshes forever (cancel to stop); a failed refresh keeps the last values and is tried again."""
        while True:
            await asyncio.sleep(self.every_seconds)
            try:
                await self.refresh()
            except Exception as exc:  # the database may be briefly unreachable
                log.warning("refreshing the budget gauges failed", extra={"error": str(exc)})
