"""The billing background worker that delivers alerts to the operator's webhooks (see alert_queue.py).

It wakes when this replica raises an alert and otherwise every
``SWITCHBOARD_ALERT_POLL_SECONDS`` (another replica's alerts, retries that fall
due), claims what is due, sends each delivery once, and records the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from switchboard_billing.alert_queue import AlertQueue, Claimed, backoff_ms
from switchboard_billing.alert_webhooks import Webhook, request_for
from switchboard_common import metrics

if TYPE_CHECKING:  # loaded by the first delivery: a billing with no webhook never carries an HTTP client
    import httpx

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


class AlertWorker:
    def __init__(self, queue: AlertQueue, webhooks: tuple[Webhook, ...], *, poll_seconds: float = 1.0,
                 timeout_seconds: float = 10.0, retry_base_seconds: float = 1.0,
                 retry_max_seconds: float = 300.0) -> None:
        self.queue = queue
        self.webhooks = {w.name: w for w in webhooks}
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None

    def notify(self, _raised: Any = None) -> None:
        """New alerts were queued: deliver them now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        if not self.webhooks:
            # Nothing is queued for delivery without a webhook, so no round runs, idle or busy: one at start
            # abandons what is still queued for webhooks removed from the configuration since.
            with contextlib.suppress(Exception):
                await self.drain()
            await self.close()
            return
        try:
            while True:
                sent = 0
                try:
                    sent = await self.drain()
                except Exception as exc:  # the database may be briefly unreachable: the queue keeps everything
                    log.warning("alert delivery round failed", extra={"error": str(exc)})
                if sent:
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        finally:
            await self.close()

    async def close(self) -> None:
        """Closes the deliveries' HTTP client, if one was made."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        """The client deliveries go out on, made by the first one."""
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=self.timeout_seconds, follow_redirects=False)
        return self._client

    async def drain(self) -> int:
        """One round: claims due deliveries and attempts each; returns how many were attempted."""
        claim_ms = int((self.timeout_seconds + 5) * 1000)
        claimed = await self.queue.claim(_now_ms(), claim_ms)
        await asyncio.gather(*(self._attempt(c) for c in claimed))
        return len(claimed)

    async def _attempt(self, claimed: Claimed) -> None:
        key = str(claimed.alert.idempotency_key)
        webhook = self.webhooks.get(claimed.webhook)
        if webhook is None:
            await self.queue.abandon(key, claimed.webhook)
            return
        body, headers = request_for(webhook, claimed.alert, int(time.time()))
        error = ""
        client = self._http()
        import httpx  # loaded by _http

        try:
            answer = await client.post(webhook.url, content=body, headers=headers)
            if not 200 <= answer.status_code < 300:
                error = f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        metrics.ALERT_DELIVERIES.labels(webhook.name, "failed" if error else "delivered").inc()
        if not error:
            await self.queue.delivered(key, webhook.name, _now_ms())
            log.info("alert delivered", extra={"idempotency_key": key, "webhook": webhook.name,
                                               "attempts": claimed.attempts})
            return
        wait = backoff_ms(claimed.attempts, self.retry_base_seconds, self.retry_max_seconds)
        await self.queue.failed(key, webhook.name, _now_ms() + wait, error)
        log.warning("alert delivery failed; retrying", extra={"idempotency_key": key, "webhook": webhook.name,
                                                              "attempts": claimed.attempts, "error": error,
                                                              "retry_in_ms": wait})
