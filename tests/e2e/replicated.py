"""PostgreSQL and Redis for the tests of replicated gateways: fresh databases and a Redis key prefix per run,
removed after. Needs SWITCHBOARD_TEST_POSTGRES_URL and SWITCHBOARD_TEST_REDIS_URL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
import redis

POSTGRES_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "")

#: The marks of a module that needs both.
NEEDS_DATASTORES = [
    pytest.mark.postgres, pytest.mark.redis,
    pytest.mark.skipif(not (POSTGRES_URL and REDIS_URL), reason=(
        "needs SWITCHBOARD_TEST_POSTGRES_URL and SWITCHBOARD_TEST_REDIS_URL (e.g. "
        "postgresql://postgres@127.0.0.1:5432/test and redis://127.0.0.1:6379/0)")),
]


def with_database(url: str, name: str) -> str:
    return f"{url.rpartition('/')[0]}/{name}"


@dataclass(frozen=True)
class Datastores:
    auth_dsn: str
    billing_dsn: str
    redis_prefix: str

    def service_env(self) -> dict[str, dict[str, str]]:
        """Auth on its database and Redis, billing on its own database, as a cluster's ``service_env``."""
        return {"auth": {"SWITCHBOARD_DATABASE_URL": self.auth_dsn, "SWITCHBOARD_REDIS_URL": REDIS_URL,
                         "SWITCHBOARD_REDIS_PREFIX": self.redis_prefix},
                "billing": {"SWITCHBOARD_BILLING_DATABASE_URL": self.billing_dsn}}


@contextmanager
def datastores() -> Iterator[Datastores]:
    """An auth and a billing database and a Redis prefix of their own, dropped (and emptied) afterwards."""
    auth_db = "sb_" + secrets.token_hex(6)
    billing_db = auth_db + "_billing"
    prefix = f"sbtest:{secrets.token_hex(6)}:"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for name in (auth_db, billing_db):
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Datastores(with_database(POSTGRES_URL, auth_db), with_database(POSTGRES_URL, billing_db), prefix)
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            for name in (auth_db, billing_db):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
