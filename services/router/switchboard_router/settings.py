"""Router settings (environment variables SWITCHBOARD_*)."""

from __future__ import annotations

from pathlib import Path

from switchboard_common.settings import PeerSettings


class RouterSettings(PeerSettings):
    #: gRPC listen address of the router.
    grpc_listen: str = "127.0.0.1:50053"
    #: Model catalog YAML.
    config: Path = Path("config/switchboard.yaml")
    #: Largest number of pooled HTTP connections per deployment.
    max_connections_per_deployment: int = 200
