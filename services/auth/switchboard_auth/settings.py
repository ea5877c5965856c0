"""Auth settings (environment variables SWITCHBOARD_*)."""

from __future__ import annotations

from switchboard_common.settings import AuditLogSettings


class AuthSettings(AuditLogSettings):
    #: gRPC listen address of the auth service.
    grpc_listen: str = "127.0.0.1:50051"
    #: Keys database; empty: SQLite file auth.db in the data directory.
    database_url: str = ""
    #: The master key (admin of everything). Empty on the embedded default: generated once into the data directory.
    master_key: str = ""
    #: Secret mixed into every key hash (HMAC-SHA256). Empty on the embedded default: generated once.
    key_pepper: str = ""
    #: Redis for rate-limit counters and change fan-out across replicas; empty: in-process (one replica).
    redis_url: str = ""
    #: Prefix of every Redis key and channel this service uses (several gateways may share one Redis).
    redis_prefix: str = "switchboard:"
    #: Seconds after which a parallel-request slot whose release never came is freed.
    parallel_slot_ttl_seconds: float = 960.0
    #: Upper bound on how long a cached key verification is trusted (changes are pushed sooner).
    verification_cache_ttl_seconds: float = 30.0
    #: Fernet key(s) sealing keys' own provider credentials (bring your own key), comma-separated, newest
    #: first (rotation: docs/privacy.md). Empty: provider credentials are refused.
    encryption_key: str = ""
    #: Privacy tier of every key whose key and team set none (a name from the catalog's privacy_tiers); empty: none.
    default_privacy_tier: str = ""
    #: Jurisdictions (comma-separated, e.g. "ca" or "ca,eu") every key whose key and team set none may be served
    #: in; empty: any.
    default_jurisdictions: str = ""
    #: Prefix of the keys this gateway issues (e.g. "ni_live_"); keys issued with another prefix keep working.
    key_prefix: str = "sk-"
    #: Self-serve keys (what users, not admins, may make for themselves; a team's metadata may override each, see
    #: docs/sso.md): live keys per user (0: no limit), the largest budget of a key in dollars (empty: no limit),
    #: the longest lifetime ("30d"; empty: no limit), and the models a key may list (comma-separated; empty: any).
    self_serve_max_keys_per_user: int = 0
    self_serve_max_budget: str = ""
    self_serve_max_duration: str = ""
    self_serve_models: str = ""
