"""An internal service calling the Switchboard router directly over gRPC with its virtual key.

Every minute it asks the router for a one-line summary and prints the answer and its usage; the call is
authorized, limited and billed against the key like any HTTP request. The key comes from the Secret
router-client-key (SWITCHBOARD_API_KEY); the router's address from SWITCHBOARD_ROUTER_ADDRESS.
"""

from __future__ import annotations

import asyncio
import os

from switchboard_router.client import RouterClient

MODEL = os.environ.get("SWITCHBOARD_MODEL", "gpt-4o-mini")
PERIOD_SECONDS = float(os.environ.get("PERIOD_SECONDS", "60"))


async def main() -> None:
    async with RouterClient(os.environ["SWITCHBOARD_ROUTER_ADDRESS"], api_key=os.environ["SWITCHBOARD_API_KEY"],
                            timeout=60) as router:
        while True:
            reply = await router.complete(MODEL, [{"role": "user", "content": "One line: what is a gateway?"}])
            print(reply.body["choices"][0]["message"]["content"], f"({reply.usage.total_tokens} tokens)", flush=True)
            await asyncio.sleep(PERIOD_SECONDS)


if __name__ == "__main__":
    asyncio.run(main())
