"""A router servicer in-process, for tests of what it does with calls: its peers need not exist.

The servicer settles every call through a billing client; here that client's
outbox journals to a temporary directory and delivers to a port nobody listens
on, so nothing is lost and nothing is needed. Calls carry :data:`FACADE`, the
metadata of a trusted facade.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from switchboard_auth.client import AuthClient
from switchboard_billing.client import BillingClient
from switchboard_common.channels import open_channel
from switchboard_common.identity import TOKEN_METADATA_KEY, ServiceIdentity
from switchboard_router.engine import Engine
from switchboard_router.gate import Gate
from switchboard_router.servicer import RouterServicer
from switchboard_router.settlement import Settlement

_TOKEN = "test-facade-token"
#: The metadata of a call from a trusted facade.
FACADE = ((TOKEN_METADATA_KEY, _TOKEN),)


async def router_servicer(engine: Engine, data_dir: Path, *, auth_address: str = "127.0.0.1:9",
                          billing_address: str = "127.0.0.1:9") -> tuple[RouterServicer, BillingClient]:
    """The servicer, and its billing client (whose outbox holds what was settled); close the client after."""
    identity = ServiceIdentity("router", "", {"facade": hashlib.sha256(_TOKEN.encode()).digest()})
    auth = AuthClient(open_channel(auth_address))
    billing = BillingClient(open_channel(billing_address), holder="router@test", outbox_dir=data_dir / "outbox")
    await billing.outbox.start()
    gate = Gate(auth, billing)
    return RouterServicer(engine, identity, gate, Settlement(billing, gate)), billing
