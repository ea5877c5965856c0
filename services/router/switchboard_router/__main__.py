"""Entry point: ``python -m switchboard_router`` (or ``switchboard-router``)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any

from switchboard.v1 import router_pb2, router_pb2_grpc
from switchboard_auth.client import AuthClient, AuthClientSettings
from switchboard_billing.client import BillingClient, BillingClientSettings, StoredModels
from switchboard_common import metrics, runtime, tracing
from switchboard_common.channels import open_channel
from switchboard_common.grpc_server import run_until_stopped, start_server
from switchboard_common.identity import load_identity
from switchboard_common.lifecycle import Lifecycle
from switchboard_router.catalog.config import load_catalog
from switchboard_router.catalog.runtime import CatalogLoader
from switchboard_router.engine import Engine
from switchboard_router.gate import Gate
from switchboard_router.privacy_guard import INSTANCE
from switchboard_router.route_metrics import observe_response
from switchboard_router.servicer import RouterServicer
from switchboard_router.settings import RouterSettings
from switchboard_router.settlement import Settlement
from switchboard_rules.catalog import refusing_invalid_catalog

log = logging.getLogger("switchboard_router")
#: Share of the shutdown grace the calls in flight get to end by themselves; then they are ended (each settled
#: from what it consumed, into the journal) and the rest of the grace delivers the journal to billing.
CALLS_SHARE = 0.75
#: How often the catalog file is checked for changes (billing checks it as often).
CONFIG_CHECK_SECONDS = 2.0


def describe_catalog(engine: Engine) -> None:
    catalog = engine.catalog
    live = catalog.live_models()
    for note in catalog.unsupported:
        log.warning("LiteLLM config setting not supported: " + note, extra={"setting": note})
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


async def serve(settings: RouterSettings, lifecycle: Lifecycle | None = None) -> None:
    loader = CatalogLoader(settings.config)
    load_catalog(settings.config)  # a broken file stops the start here, before anything listens
    data_dir = settings.ensure_data_dir()
    identity = load_identity("router", settings, accepts=("facade",))
    peers = [open_channel(settings.auth_address), open_channel(settings.billing_address)]
    auth = AuthClient(peers[0], identity.metadata, AuthClientSettings(
        settings.service_timeout_seconds, settings.key_cache_ttl_seconds, settings.rate_lease_units,
        settings.rate_lease_seconds))
    billing = BillingClient(peers[1], holder=f"router@{INSTANCE}", outbox_dir=data_dir / "outbox",
                            metadata=identity.metadata, settings=BillingClientSettings(
                                settings.service_timeout_seconds, settings.completion_timeout_seconds,
                                settings.budget_lease_units))
    await auth.start()
    await billing.start()
    # The usage a dead router journaled is charged before this one admits anything: a hold granted first could
    # be granted against money the replay then charges. If billing does not answer, the replay goes on later.
    if not await billing.outbox.recovered(settings.service_timeout_seconds):
        log.warning("the usage journal of an earlier run is not delivered yet (billing unreachable?); "
                    "it is delivered in the background")
    engine: Engine | None = None

    async def reload(why: str) -> None:
        catalog = await loader.rebuilt(why)
        if catalog is None or engine is None:
            return
        engine.replace_catalog(catalog)
        log.info(f"catalog reloaded ({why})")
        describe_catalog(engine)

    async def stored_changed(models: StoredModels) -> None:
        loader.take(models)
        if engine is not None:  # else the first set, taken before the engine is built
            await reload("stored models change")

    # Models added at run time: the first set is awaited briefly, so a restarted router serves them at once.
    watch = billing.watch_models(stored_changed)
    await watch.start(settings.service_timeout_seconds)
    engine = running = Engine(await loader.build(), settings.max_connections_per_deployment)
    describe_catalog(running)
    metrics.observe_deployments(lambda: [(d.id, not running.health.is_available(d.id))
                                         for e in running.catalog.models.values() for d in e.deployments])
    metrics.observe_outbox(lambda: billing.outbox.depth)
    gate = Gate(auth, billing)
    name = router_pb2.DESCRIPTOR.services_by_name["Router"].full_name
    servicer = RouterServicer(running, identity, gate, Settlement(billing, gate))
    metrics.serve(settings.metrics_port)  # first: a port in use stops the start before anything listens
    service = await start_server(
        settings.grpc_listen,
        lambda server: router_pb2_grpc.add_RouterServicer_to_server(servicer, server),
        [name],
        observe=observe_response,
    )
    log.info("router listening", extra={"port": service.port})
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload("config reload")))

    async def watch_file() -> None:
        while True:
            await asyncio.sleep(CONFIG_CHECK_SECONDS)
            if await asyncio.to_thread(loader.file_changed):
                await reload("config file change")

    watcher = loop.create_task(watch_file())
    grace = settings.shutdown_grace_seconds
    ends_by = 0.0

    def drain() -> None:
        nonlocal ends_by
        ends_by = loop.time() + grace  # the whole stop, calls and deliveries, fits in the grace
        servicer.calls.stopping = True
        servicer.exchanges.drain()

    async def close() -> None:
        # The calls have ended (each settled into the journal); what is left of the grace delivers it to billing,
        # which is still up (it stops after the router); what billing does not take stays journaled for the next run.
        watcher.cancel()
        await watch.close()
        await running.aclose()
        await billing.close(max(0.5, ends_by - loop.time()))
        await auth.close(max(0.5, ends_by - loop.time()))
        for channel in peers:
            await channel.close()

    await run_until_stopped(service, grace * CALLS_SHARE, close, on_drain=drain, lifecycle=lifecycle)


def hosted(listen: str | None, metrics_port: int, lifecycle: Lifecycle) -> Coroutine[Any, Any, None]:
    """The router as one of the services of a shared process (switchboard_common.shared_process): its own gRPC
    address, the process's metrics port or none, stopped by its host. A broken catalog ends the process as it
    ends a router alone."""
    overrides: dict[str, Any] = {"metrics_port": metrics_port}
    if listen:
        overrides["grpc_listen"] = listen
    return refusing_invalid_catalog("router", serve(RouterSettings(**overrides), lifecycle))


def main() -> None:
    settings = RouterSettings()
    tracing.setup("switchboard-router")
    runtime.run("router", refusing_invalid_catalog("router", serve(settings)), settings.log_level)


if __name__ == "__main__":
    main()
