"""Router settings (environment variables SWITCHBOARD_*)."""

from __future__ import annotations

from pathlib import Path

from switchboard_common.settings import GrpcServiceSettings


class RouterSettings(GrpcServiceSettings):
    #: gRPC listen address of the router.
    grpc_listen: str = "127.0.0.1:50053"
    #: Model catalog YAML.
    config: Path = Path("config/switchboard.yaml")
    #: Largest number of pooled HTTP connections per deployment.
    max_connections_per_deployment: int = 200
    #: The shared service credential by which the router tells the facade from other gRPC callers
    #: (a Kubernetes Secret in production; see docs/deploy.md). Empty: none configured.
    internal_token: str = ""
