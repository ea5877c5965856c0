"""What the manifests run works: the prod migration Job's script migrates a real
database, and the catalog shipped in the ConfigMap is one the router accepts."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from switchboard_router.catalog.config import load_catalog
from tests.deploy.manifests import K8S, REPO, Rendered

PYTHONPATH = os.pathsep.join(str(REPO / p) for p in (
    "protos/gen", "libs/common", "libs/translate", "services/auth", "services/billing", "services/router"))


def _run_migration(rendered: dict[str, Rendered], service: str, dsn: str) -> subprocess.CompletedProcess[str]:
    job = rendered["prod"].get("Job", "switchboard-migrate")
    container = next(c for c in job["spec"]["template"]["spec"]["containers"] if c["name"] == service)
    assert container["image"].rsplit("/", 1)[-1].split(":")[0] == f"switchboard-{service}"
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "SWITCHBOARD_DATABASE_URL": dsn}
    return subprocess.run([sys.executable, *container["command"][1:], *container["args"]], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def _versions(dsn: str, service: str) -> list[int]:
    engine = sa.create_engine(dsn)
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(sa.text(f"SELECT version FROM {service}_schema_migrations")).scalars())
    finally:
        engine.dispose()


@pytest.mark.parametrize("service", ["auth", "billing"])
def test_migration_job_migrates_a_fresh_database_once(rendered: dict[str, Rendered], service: str,
                                                     tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first = _run_migration(rendered, service, dsn)
    assert first.returncode == 0, first.stderr
    assert "applied migrations [1" in first.stdout
    again = _run_migration(rendered, service, dsn)
    assert again.returncode == 0 and "none (up to date)" in again.stdout, again.stderr
    assert _versions(dsn, service)[0] == 1


@pytest.mark.postgres
def test_migration_job_migrates_postgres(rendered: dict[str, Rendered]) -> None:
    base = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("SWITCHBOARD_TEST_POSTGRES_URL is not set")
    name = f"sb_deploy_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    dsn = base.rsplit("/", 1)[0] + "/" + name
    try:
        done = _run_migration(rendered, "billing", dsn)
        assert done.returncode == 0, done.stderr
        assert _versions(dsn.replace("postgresql://", "postgresql+psycopg://", 1), "billing")[0] == 1
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migration_job_refuses_to_run_without_a_database(rendered: dict[str, Rendered]) -> None:
    done = _run_migration(rendered, "auth", "")
    assert done.returncode != 0 and "SWITCHBOARD_DATABASE_URL is not set" in done.stderr


def test_kubernetes_catalog_is_accepted_by_the_router(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "MISTRAL_API_KEY", "DEEPSEEK_API_KEY", "GROQ_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    catalog = load_catalog(K8S / "base" / "config" / "switchboard.yaml")
    assert "gpt-4o-mini" in catalog.live_models()
    assert "mistral-small" not in catalog.live_models(), "a provider without a key stays out"
