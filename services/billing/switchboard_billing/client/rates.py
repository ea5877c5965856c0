"""The rate card, as a holder keeps it: refreshed from billing in the background, never awaited by a request.

A holder prices the holds it takes from a lease itself (:mod:`switchboard_billing.quote`);
the card says, per public model, which deployments a request may reach, their
worst-case rates and output limits, and whether billing serves the model at all.
Until billing has answered once, nothing is known and holders ask billing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc

from switchboard.v1 import billing_pb2
from switchboard_billing.quote import DeploymentRates, ModelRates, per_token, tiers_of

log = logging.getLogger(__name__)


def model_rates_of(message: billing_pb2.ModelRates) -> ModelRates:
    return ModelRates(
        model=message.model, servable=message.servable, priced=message.priced,
        deployments=tuple(DeploymentRates(
            deployment_id=d.deployment_id, provider=d.provider, max_output_tokens=d.max_output_tokens,
            tiers=tiers_of([(t.min_prompt_tokens, t.input_per_million, t.output_per_million) for t in d.tiers]),
            per_request_micros=d.per_request_micros, byok_per_token=per_token(d.byok_per_million),
            byok_per_request_micros=d.byok_per_request_micros) for d in message.deployments))


class RateCards:
    """The latest rate card, refreshed at most every ``ttl_seconds`` when looked at."""

    def __init__(self, stub: Any, metadata: tuple[tuple[str, str], ...], timeout: float,
                 ttl_seconds: float = 10.0) -> None:
        self.stub = stub
        self.metadata = metadata
        self.timeout = timeout
        self.ttl_seconds = ttl_seconds
        self._models: dict[str, ModelRates] | None = None
        self.default_output_tokens = 32_768
        self.min_output_tokens = 1024
        self._fetched_at = -float("inf")
        self._refresh: asyncio.Task[None] | None = None

    def lookup(self, model: str) -> ModelRates | None:
        """The model's rates; None when billing has not answered yet or does not know the model."""
        if time.monotonic() - self._fetched_at >= self.ttl_seconds and (self._refresh is None or self._refresh.done()):
            self._fetched_at = time.monotonic()
            self._refresh = asyncio.get_running_loop().create_task(self.fetch())
        return None if self._models is None else self._models.get(model)

    async def fetch(self) -> None:
        try:
            card = await self.stub.GetRateCard(billing_pb2.GetRateCardRequest(), timeout=self.timeout,
                                               metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            log.debug("rate card not refreshed", extra={"error": exc.code().name})
            return
        self._models = {m.model: model_rates_of(m) for m in card.models}
        self.default_output_tokens = card.default_output_tokens or self.default_output_tokens
        self.min_output_tokens = card.min_output_tokens or self.min_output_tokens
