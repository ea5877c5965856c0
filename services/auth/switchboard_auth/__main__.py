"""Entry point: ``python -m switchboard_auth`` (or ``switchboard-auth``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from switchboard.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.cache import VerificationCache
from switchboard_auth.invalidation import InvalidationBus
from switchboard_auth.limits import Limiter, MemoryLimiter
from switchboard_auth.policy import GatewayDefaults, checked_key_prefix
from switchboard_auth.selfserve import SelfServe
from switchboard_auth.servicer import AuthServicer
from switchboard_auth.settings import AuthSettings
from switchboard_auth.store import AUDIT, KeyStore
from switchboard_common import audit_chain, metrics, runtime, tracing
from switchboard_common.credential_cipher import CredentialCipher
from switchboard_common.database import default_sqlite_dsn, make_engine
from switchboard_common.database_errors import DatabaseUnreachable
from switchboard_common.grpc_server import run_until_stopped, start_server
from switchboard_common.identity import CALLERS, RequireServiceToken, load_identity
from switchboard_common.lifecycle import Lifecycle
from switchboard_common.settings import load_or_create_secret

log = logging.getLogger("switchboard_auth")


async def serve(settings: AuthSettings, lifecycle: Lifecycle | None = None) -> None:
    try:
        defaults = GatewayDefaults.from_settings(settings.default_privacy_tier, settings.default_jurisdictions)
        key_prefix = checked_key_prefix(settings.key_prefix)
        self_serve = SelfServe.from_settings(settings.self_serve_max_keys_per_user, settings.self_serve_max_budget,
                                             settings.self_serve_max_duration, settings.self_serve_models)
    except ValueError as exc:
        log.error("cannot start: %s", exc)
        raise SystemExit(1) from None
    data_dir = settings.ensure_data_dir()
    master = settings.master_key or load_or_create_secret(data_dir / "master_key", prefix="sk-master-")
    pepper = settings.key_pepper or load_or_create_secret(data_dir / "key_pepper")
    store = KeyStore(make_engine(settings.database_url or default_sqlite_dsn(data_dir, "auth.db")))
    await store.migrate()
    limiter: Limiter
    bus: InvalidationBus
    if settings.redis_url:
        # Imported only here: the embedded default (in-process limits) never loads the Redis client.
        import redis.asyncio as aioredis

        from switchboard_auth.invalidation import RedisInvalidationBus
        from switchboard_auth.redis_limits import RedisLimiter

        client = aioredis.from_url(settings.redis_url)
        limiter = RedisLimiter(client, settings.redis_prefix, settings.parallel_slot_ttl_seconds)
        bus = RedisInvalidationBus(aioredis.from_url(settings.redis_url), settings.redis_prefix + "auth:changes")
    else:
        limiter = MemoryLimiter(settings.parallel_slot_ttl_seconds)
        bus = InvalidationBus()
    await bus.start()
    cache = VerificationCache(bus, settings.verification_cache_ttl_seconds)
    identity = load_identity("auth", settings, accepts=CALLERS)
    servicer = AuthServicer(store, master, pepper, limiter, bus, cache,
                            CredentialCipher.from_setting(settings.encryption_key), identity, defaults, key_prefix,
                            self_serve)
    name = auth_pb2.DESCRIPTOR.services_by_name["Auth"].full_name
    metrics.serve(settings.metrics_port)  # first: a port in use stops the start before anything listens
    service = await start_server(
        settings.grpc_listen, lambda server: auth_pb2_grpc.add_AuthServicer_to_server(servicer, server), [name],
        [RequireServiceToken(identity), DatabaseUnreachable("auth")])
    log.info("auth listening", extra={"port": service.port, "limits": "redis" if settings.redis_url else "memory",
                                      "default_privacy_tier": defaults.privacy_tier,
                                      "default_jurisdictions": list(defaults.jurisdictions), "key_prefix": key_prefix})
    retention = (asyncio.get_running_loop().create_task(audit_chain.keep_for(
        store.engine, AUDIT, settings.audit_retention_days, settings.audit_prune_interval_seconds))
        if settings.audit_retention_days > 0 else None)

    async def close() -> None:
        if retention is not None:
            retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retention
        await bus.close()
        await limiter.close()
        await store.close()

    # Watch streams never end by themselves: they are ended first (on_drain), so that the grace period is spent
    # on real requests and watchers reconnect to another replica at once.
    await run_until_stopped(service, settings.shutdown_grace_seconds, close, on_drain=bus.end_streams,
                            lifecycle=lifecycle)


def hosted(listen: str | None, metrics_port: int, lifecycle: Lifecycle) -> Coroutine[Any, Any, None]:
    """Auth as one of the services of a shared process (switchboard_common.shared_process): its own gRPC address,
    the process's metrics port or none, stopped by its host."""
    overrides: dict[str, Any] = {"metrics_port": metrics_port}
    if listen:
        overrides["grpc_listen"] = listen
    return serve(AuthSettings(**overrides), lifecycle)


def main() -> None:
    settings = AuthSettings()
    tracing.setup("switchboard-auth")
    runtime.run("auth", serve(settings), settings.log_level)


if __name__ == "__main__":
    main()
