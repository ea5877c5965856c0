"""A facade's billing client against the ``billing`` fixture of the test module (a real gRPC billing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import grpc
import pytest

from switchboard_billing.client import BillingClient


class ServedBilling(Protocol):
    """What a module's ``billing`` fixture gives: where its billing listens."""

    address: str


@pytest.fixture
async def holder(billing: ServedBilling, tmp_path: Path) -> AsyncIterator[BillingClient]:
    channel = grpc.aio.insecure_channel(billing.address)
    client = BillingClient(channel, holder="facade@test", outbox_dir=tmp_path / "outbox")
    await client.start()
    yield client
    await client.close(1)
    await channel.close()
