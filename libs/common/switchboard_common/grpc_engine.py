"""Which I/O engine the gRPC core runs Switchboard's channels and servers on, chosen before ``grpc`` is imported.

grpcio 1.8x moves a call's socket work onto the core's EventEngine threads: a message read or written on one
of them is handed to the completion queue, whose poller thread hands it to the asyncio loop — two thread
hand-offs per message, each a futex wake. The core's other engine (the iomgr pollers, still shipped and
selected by turning two experiments off) does that socket work on the thread that polls the completion
queue, which is already the one handing events to the loop. Measured with ``benchmarks/hop_floor.py`` on the
2-core machine of docs/performance.md: one message each way on an open stream, 229 → 149 µs at concurrency 1
and 82 → 60 µs of CPU (both sides) at concurrency 16; end to end, a short chat at concurrency 16 used 0.81 →
0.75 CPU-ms across the gateway's processes, and one at concurrency 1 answered about 0.15 ms sooner.

The choice is gRPC's own setting, ``GRPC_EXPERIMENTS``, read once when ``grpc`` is imported: it is set here only
when the environment does not set it already, so an operator's value wins (``GRPC_EXPERIMENTS=`` restores the
core's defaults). Importing :mod:`switchboard_common` (which every service package does first) applies it.
"""

from __future__ import annotations

import os
import sys

#: The core experiments turned off: EventEngine-based client channels and listeners.
EXPERIMENTS = "-event_engine_client,-event_engine_listener"


def choose_io_engine() -> bool:
    """Sets ``GRPC_EXPERIMENTS`` unless the environment has it; True when it applies (``grpc`` not imported yet)."""
    os.environ.setdefault("GRPC_EXPERIMENTS", EXPERIMENTS)
    return "grpc" not in sys.modules
