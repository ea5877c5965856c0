"""Entry point: ``python -m switchboard_auth`` (or ``switchboard-auth``)."""

from __future__ import annotations

import logging

from switchboard.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.servicer import AuthServicer
from switchboard_auth.settings import AuthSettings
from switchboard_auth.store import KeyStore
from switchboard_common import metrics, runtime, tracing
from switchboard_common.database import default_sqlite_dsn, make_engine
from switchboard_common.grpc_server import run_until_signalled, start_server
from switchboard_common.settings import load_or_create_secret

log = logging.getLogger("switchboard_auth")


async def serve(settings: AuthSettings) -> None:
    data_dir = settings.ensure_data_dir()
    master = settings.master_key or load_or_create_secret(data_dir / "master_key", prefix="sk-master-")
    pepper = settings.key_pepper or load_or_create_secret(data_dir / "key_pepper")
    store = KeyStore(make_engine(settings.database_url or default_sqlite_dsn(data_dir, "auth.db")))
    await store.migrate()
    name = auth_pb2.DESCRIPTOR.services_by_name["Auth"].full_name
    service = await start_server(
        settings.grpc_listen,
        lambda server: auth_pb2_grpc.add_AuthServicer_to_server(AuthServicer(store, master, pepper), server),
        [name],
    )
    log.info("auth listening", extra={"port": service.port})
    metrics.serve(settings.metrics_port)
    await run_until_signalled(service, settings.shutdown_grace_seconds, store.close)


def main() -> None:
    settings = AuthSettings()
    tracing.setup("switchboard-auth")
    runtime.run("auth", serve(settings), settings.log_level)


if __name__ == "__main__":
    main()
