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


def load_or_create_secret(path: Path, prefix: str = "", nbytes: int = 32) -> str:
    """Reads a secret kept in the data directory, creating it (mode 0600) on first use.

    Used on the embedded default for the master key and the hashing pepper when
    the environment does not provide them.
    """
    import os
    import secrets

    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = prefix + secrets.token_urlsafe(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
    return value
