"""An internal service calling the Switchboard router directly over gRPC with its virtual key.

Every minute it asks the router for a one-line summary and prints the answer and its usage; the call is
authorized, limited and billed against the key like any HTTP request (its ledger row says ``source: grpc``).
The key comes from the Secret router-client-key (SWITCHBOARD_API_KEY); the router's address from
SWITCHBOARD_ROUTER_ADDRESS. CALLS (optional) stops it after that many calls.
"""

from __future__ import annotations

import asyncio
import os

from switchboard_router.client import SwitchboardRouter

MODEL = os.environ.get("SWITCHBOARD_MODEL", "gpt-4o-mini")
PERIOD_SECONDS = float(os.environ.get("PERIOD_SECONDS", "60"))
CALLS = int(os.environ.get("CALLS", "0"))


async def main() -> None:
    async with SwitchboardRouter(os.environ["SWITCHBOARD_ROUTER_ADDRESS"], api_key=os.environ["SWITCHBOARD_API_KEY"],
                                 timeout=60) as router:
        made = 0
        while True:
            reply = await router.complete(MODEL, [{"role": "user", "content": "One line: what is a gateway?"}])
            print(reply.text, f"({reply.usage.total_tokens} tokens)", flush=True)
            made += 1
            if CALLS and made >= CALLS:
                return
            await asyncio.sleep(PERIOD_SECONDS)


if __name__ == "__main__":
    asyncio.run(main())
