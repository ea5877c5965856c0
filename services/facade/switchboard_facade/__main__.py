"""Entry point: ``python -m switchboard_facade`` (or ``switchboard-facade``)."""

from __future__ import annotations

import signal
import sys

import uvicorn

from switchboard_common import tracing
from switchboard_common.gc_tuning import tune_for_service
from switchboard_common.logs import configure_logging
from switchboard_facade.app import create_app
from switchboard_facade.settings import FacadeSettings


def main() -> None:
    settings = FacadeSettings()
    configure_logging("facade", settings.log_level)
    tracing.setup("switchboard-facade")
    # uvicorn drains on SIGTERM/SIGINT, then re-raises the signal once it has finished: let that end the
    # process normally (exit status 0, atexit hooks run, the log writer flushes its last lines).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    app = create_app(settings)
    tune_for_service()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        server_header=False,
    )


if __name__ == "__main__":
    main()
