"""Process entry helper: uvloop when available, logging configured, collector tuned, one coroutine run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from switchboard_common.gc_tuning import tune_for_service
from switchboard_common.grpc_server import PortInUse
from switchboard_common.logs import configure_logging
from switchboard_common.parent import die_with_supervisor


def run(service: str, main: Coroutine[Any, Any, None], log_level: str = "INFO") -> None:
    """Runs the service's main coroutine; a port it cannot listen on ends it with that message (exit status 1)."""
    configure_logging(service, log_level)
    tune_for_service()
    die_with_supervisor()
    try:
        try:
            import uvloop

            uvloop.run(main)
        except ImportError:  # pragma: no cover - uvloop is a declared dependency
            asyncio.run(main)
    except PortInUse as exc:
        logging.getLogger(f"switchboard_{service}").error("cannot start: %s", exc)
        raise SystemExit(1) from None
