"""Typed settings read from the environment, one object per service.

Every service subclasses :class:`ServiceSettings`; the field names, upper-cased
with the ``SWITCHBOARD_`` prefix, are the environment variables it reads (the
Kubernetes manifests are checked against these classes).
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings every service has."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    #: Directory of the embedded default's files (SQLite databases, master key, outbox).
    data_dir: Path = Path(".switchboard")
    #: Log level name.
    log_level: str = "INFO"
    #: Seconds to let in-flight work finish on SIGTERM.
    shutdown_grace_seconds: float = 20.0
    #: Port of the Prometheus /metrics endpoint; 0 disables it.
    metrics_port: int = 0

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.data_dir


class GrpcServiceSettings(ServiceSettings):
    """Settings of a gRPC service."""

    #: Address the gRPC server binds, host:port.
    grpc_listen: str = "127.0.0.1:0"
