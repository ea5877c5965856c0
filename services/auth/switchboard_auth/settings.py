"""Auth settings (environment variables SWITCHBOARD_*)."""

from __future__ import annotations

from switchboard_common.settings import GrpcServiceSettings


class AuthSettings(GrpcServiceSettings):
    #: gRPC listen address of the auth service.
    grpc_listen: str = "127.0.0.1:50051"
    #: Keys database; empty: SQLite file auth.db in the data directory.
    database_url: str = ""
    #: The master key (admin of everything). Empty on the embedded default: generated once into the data directory.
    master_key: str = ""
    #: Secret mixed into every key hash (HMAC-SHA256). Empty on the embedded default: generated once.
    key_pepper: str = ""
