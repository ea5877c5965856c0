"""Process entry helper: uvloop when available, logging configured, collector tuned, one coroutine run."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from switchboard_common.gc_tuning import tune_for_service
from switchboard_common.logs import configure_logging


def run(service: str, main: Coroutine[Any, Any, None], log_level: str = "INFO") -> None:
    configure_logging(service, log_level)
    tune_for_service()
    try:
        import uvloop

        uvloop.run(main)
    except ImportError:  # pragma: no cover - uvloop is a declared dependency
        asyncio.run(main)
