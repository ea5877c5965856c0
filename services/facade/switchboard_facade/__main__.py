"""Entry point: ``python -m switchboard_facade`` (or ``switchboard-facade``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from switchboard_common import tracing
from switchboard_common.gc_tuning import tune_for_service
from switchboard_common.logs import configure_logging
from switchboard_common.parent import die_with_supervisor
from switchboard_facade.app import FacadeApp, create_app
from switchboard_facade.http_edge import edge_limits, protocol_class
from switchboard_facade.settings import FacadeSettings
from switchboard_facade.ui.claims import MappingError, check_mapping


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app when its shutdown's grace runs out: uvicorn then cancels the requests still
    running, and those are cut by this facade, not by their clients (the ledger says ``caller_shutdown``)."""

    def __init__(self, config: uvicorn.Config, app: FacadeApp) -> None:
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        grace = self.config.timeout_graceful_shutdown
        # Started a moment before uvicorn's own wait for the requests, so it fires just before uvicorn cancels them.
        timer = (asyncio.get_running_loop().call_later(grace, self.app.shutdown_grace_expired)
                 if grace is not None else None)
        try:
            await super().shutdown(sockets)
        finally:
            if timer is not None:
                timer.cancel()


def main() -> None:
    settings = FacadeSettings()
    configure_logging("facade", settings.log_level)
    die_with_supervisor()
    tracing.setup("switchboard-facade")
    try:
        check_mapping(settings)
    except MappingError as exc:
        logging.getLogger("switchboard_facade").error("cannot start: %s", exc)
        raise SystemExit(1) from None
    # uvicorn drains on SIGTERM/SIGINT, then re-raises the signal once it has finished: let that end the
    # process normally (exit status 0, atexit hooks run, the log writer flushes its last lines).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=protocol_class(edge_limits(settings)),  # httptools, with the edge limits (see http_edge.py)
        timeout_keep_alive=settings.http_idle_timeout_seconds,  # type: ignore[arg-type]  # uvicorn says int; it waits any float of seconds
        ws="none",  # no websocket routes: an upgrade request is an ordinary HTTP request
        log_config=None,
        access_log=False,  # switchboard_common.access_log writes the access line, off the event loop
        # uvicorn would rewrite every request's client address from trusted proxies' X-Forwarded-* headers;
        # only the framework path (the dashboard) uses them, so the app applies them there alone.
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        server_header=False,
    )
    app.trust_forwarded_headers(config.forwarded_allow_ips)
    server = _Server(config, app)
    tune_for_service()
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


if __name__ == "__main__":
    main()
