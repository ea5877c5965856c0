"""A signal that money held against budgets was freed in this billing process (a settlement, a release, a
lease returned): what a reservation denied only by money in flight waits for.

Requests settle a moment after their answers: the router's outbox delivers
usage in batches (its linger), so a caller's next request can reach billing
while the previous one's hold is still counted. A denial that the money in
flight would not cause waits for that money to come back instead of refusing
(:class:`~switchboard_billing.holds.Holder`). Settlements in another billing
replica do not signal here; waiters also re-check on a short period.
"""

from __future__ import annotations

import asyncio
import contextlib


class MoneyFreed:
    """Wakes every waiter each time money is freed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Money was freed: wake the waiters (later waiters wait for the next time)."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> None:
        """Until money is freed next, or ``timeout`` seconds pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
