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
    #: This service's own token, presented on every call it makes to the others (the facade's and the router's;
    #: see switchboard_common.identity). Empty: the embedded default creates one in the data directory.
    service_token: str = ""
    #: The facade's and the router's tokens, for the services they call (auth and billing accept both, the router
    #: the facade's). Empty: read from the data directory, where the embedded default creates them.
    facade_token: str = ""
    router_token: str = ""

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.data_dir


class GrpcServiceSettings(ServiceSettings):
    """Settings of a gRPC service."""

    #: Address the gRPC server binds, host:port.
    grpc_listen: str = "127.0.0.1:0"


class AuditLogSettings(GrpcServiceSettings):
    """Settings of a service that keeps an audit log of its administrative changes (auth, billing)."""

    #: Days the audit log keeps its rows; older rows are pruned (a checkpoint row keeps the chain verifiable).
    #: 0: kept for ever.
    audit_retention_days: float = 0.0
    #: Seconds between two prunings of the audit log.
    audit_prune_interval_seconds: float = 3600.0


class PeerSettings(ServiceSettings):
    """Settings of a service that calls auth and billing for its callers (the facade, and the router for its
    own gRPC callers): where they are, and how their clients cache and lease."""

    #: Address of the auth service (host:port, a comma-separated list, or dns:///name:port).
    auth_address: str = "127.0.0.1:50051"
    #: Address of the billing service.
    billing_address: str = "127.0.0.1:50052"
    #: Seconds a call to auth or billing may take before the caller's request fails with 503.
    service_timeout_seconds: float = 5.0
    #: Seconds a whole completion may take (the router applies per-deployment timeouts inside).
    completion_timeout_seconds: float = 900.0
    #: Longest life, seconds, of a cached key verification (changes are pushed by auth sooner); 0 turns the cache off.
    key_cache_ttl_seconds: float = 30.0
    #: Most requests one budget lease is sized for (see switchboard_billing.client.leases); 0: a billing
    #: reservation per request.
    budget_lease_units: int = 1024
    #: Most requests one rate-limit lease may cover (see switchboard_auth.client.rate_leases); 0: an auth
    #: admission per request.
    rate_lease_units: int = 256
    #: Seconds a rate-limit lease admits requests before its unused part is returned.
    rate_lease_seconds: float = 10.0


def load_or_create_secret(path: Path, prefix: str = "", nbytes: int = 32) -> str:
    """Reads a secret kept in the data directory, creating it (mode 0600) on first use.

    Used on the embedded default for the master key, the hashing pepper and the
    services' tokens when the environment does not provide them. Processes that
    start together may create the same secret at the same moment (the router its
    token, billing the token it accepts from the router): the secret is written
    whole to a file of its own and then linked into place, which succeeds for one
    of them; the others read what it wrote, never an empty or partial file.
    """
    import os
    import secrets

    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = prefix + secrets.token_urlsafe(nbytes)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(draft, path)
    except FileExistsError:  # another process created it first: its value is the secret
        return path.read_text(encoding="utf-8").strip()
    finally:
        draft.unlink(missing_ok=True)
    return value
