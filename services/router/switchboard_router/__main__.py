"""Entry point: ``python -m switchboard_router`` (or ``switchboard-router``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from switchboard.v1 import router_pb2, router_pb2_grpc
from switchboard_common import metrics, runtime, tracing
from switchboard_common.grpc_server import run_until_signalled, start_server
from switchboard_router.catalog.config import ConfigError, load_catalog
from switchboard_router.catalog.probe import live_catalog
from switchboard_router.engine import Engine
from switchboard_router.servicer import RouterServicer
from switchboard_router.settings import RouterSettings

log = logging.getLogger("switchboard_router")


def describe_catalog(engine: Engine) -> None:
    catalog = engine.catalog
    live = catalog.live_models()
    for entry in catalog.models.values():
        for dep_id, why in entry.unavailable:
            log.info("deployment not live", extra={"deployment": dep_id, "reason": why})
    if live:
        log.info("models live: " + ", ".join(live), extra={"models": live})
    else:
        log.warning(
            "no model is live. Set a provider key (e.g. export OPENAI_API_KEY=sk-...) or add a deployment to "
            "the config file (SWITCHBOARD_CONFIG), e.g.\n  models:\n    - name: gpt-4o-mini\n      deployments:\n"
            "        - provider: openai\n          model: gpt-4o-mini\n          api_key: ${OPENAI_API_KEY}"
        )


async def serve(settings: RouterSettings) -> None:
    engine = Engine(await live_catalog(load_catalog(settings.config)), settings.max_connections_per_deployment)
    describe_catalog(engine)
    metrics.observe_deployments(lambda: [(d.id, not engine.health.is_available(d.id))
                                         for e in engine.catalog.models.values() for d in e.deployments])
    name = router_pb2.DESCRIPTOR.services_by_name["Router"].full_name
    servicer = RouterServicer(engine)
    service = await start_server(
        settings.grpc_listen,
        lambda server: router_pb2_grpc.add_RouterServicer_to_server(servicer, server),
        [name],
    )
    log.info("router listening", extra={"port": service.port})
    metrics.serve(settings.metrics_port)

    async def reload() -> None:
        try:
            catalog = await live_catalog(load_catalog(settings.config))
        except ConfigError as exc:
            log.error("config reload rejected; keeping the running catalog", extra={"error": str(exc)})
            return
        engine.replace_catalog(catalog)
        log.info("config reloaded")
        describe_catalog(engine)

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload()))
    await run_until_signalled(service, settings.shutdown_grace_seconds, engine.aclose,
                              on_drain=servicer.exchanges.drain)


def main() -> None:
    settings = RouterSettings()
    tracing.setup("switchboard-router")
    try:
        runtime.run("router", serve(settings), settings.log_level)
    except ConfigError as exc:
        # A broken catalog at start: say exactly where, without a traceback, and exit non-zero.
        sys.stderr.write(f"switchboard router: the model catalog is invalid: {exc}\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
