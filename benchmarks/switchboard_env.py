"""Switchboard as a gateway under test: all four services under the supervisor, one process group.

The gateway is started exactly as ``make run`` starts it (``python -m switchboard_common.supervisor``)
with a config whose only model points at the fake provider; a virtual key with limits far above
what the benchmark can reach is created through the admin API, so the measured path is the real
one (key check, rate limits, budget reservation, routing, settlement) and never a shortcut.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.gateway import GatewayUnavailable, RunningGateway, generate_key
from benchmarks.processes import REPO_ROOT, ManagedProcess, free_port, wait_http_ok

MASTER_KEY = "sk-master-bench"
OVERHEAD_HEADER = "x-switchboard-overhead-ms"
STREAM_OVERHEAD_HEADER = "x-switchboard-ttfb-overhead-ms"
POSTGRES_SERVER_URL = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/15"

#: Source folders of the workspace packages, for a Python that has not installed them.
_SOURCE_PATHS = (
    "protos/gen",
    "libs/common",
    "libs/translate",
    "libs/rules",
    "services/auth",
    "services/router",
    "services/billing",
    "services/facade",
)


def switchboard_config(provider_base_url: str, model: str) -> dict[str, object]:
    """The gateway config: one priced model with one OpenAI-compatible deployment at the fake provider."""
    deployment = {"provider": "openai", "model": model, "api_base": provider_base_url, "api_key": "x",
                  # Priced, so that every request holds and settles a real cost against the key's budget.
                  "input_cost_per_million": 0.15, "output_cost_per_million": 0.6, "max_output_tokens": 4096}
    return {"models": [{"name": model, "deployments": [deployment]}]}


def ensure_postgres_database(server_url: str, database: str) -> str:
    """Create ``database`` on the server if it is missing (with psql); returns its URL."""
    exists = subprocess.run(
        ["psql", server_url + "/postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{database}'"],
        capture_output=True,
        text=True,
        check=False,
    )
    if exists.returncode != 0:
        raise GatewayUnavailable(f"PostgreSQL at {server_url} is not reachable: {exists.stderr.strip()}")
    if exists.stdout.strip() != "1":
        created = subprocess.run(
            ["psql", server_url + "/postgres", "-c", f'CREATE DATABASE "{database}"'],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode != 0:
            raise GatewayUnavailable(f"cannot create database {database}: {created.stderr.strip()}")
    return f"{server_url}/{database}"


def start_switchboard(
    provider_base_url: str,
    model: str,
    work_dir: Path,
    python: str = sys.executable,
    source_root: Path = REPO_ROOT,
    database_url: str | None = None,
    redis_url: str | None = None,
    ready_timeout_s: float = 90.0,
    wrapper: Sequence[str] = (),
) -> RunningGateway:
    """Start the supervisor on a free port, wait for readiness, create a virtual key, return how to call it.

    ``wrapper`` is a command the supervisor runs under (and its services with it), e.g. valgrind's."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / "switchboard.yaml"
    # JSON is valid YAML.
    config_path.write_text(json.dumps(switchboard_config(provider_base_url, model), indent=2))
    port = free_port()
    source_paths = os.pathsep.join(str(source_root / path) for path in _SOURCE_PATHS)
    existing = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        "PYTHONPATH": source_paths + (os.pathsep + existing if existing else ""),
        "SWITCHBOARD_CONFIG": str(config_path),
        "SWITCHBOARD_PORT": str(port),
        "SWITCHBOARD_MASTER_KEY": MASTER_KEY,
        "SWITCHBOARD_DATA_DIR": str(work_dir / "data"),
        "SWITCHBOARD_LOG_LEVEL": os.environ.get("SWITCHBOARD_LOG_LEVEL", "WARNING"),
        # Free ports for the internal gRPC services, so a gateway already running here is not hit.
        "SWITCHBOARD_AUTH_PORT": str(free_port()),
        "SWITCHBOARD_BILLING_PORT": str(free_port()),
        "SWITCHBOARD_ROUTER_PORT": str(free_port()),
    }
    if database_url is not None:
        env["SWITCHBOARD_DATABASE_URL"] = database_url
    if redis_url is not None:
        env["SWITCHBOARD_REDIS_URL"] = redis_url
    name = "switchboard+postgres" if database_url else "switchboard"
    argv = [*wrapper, python, "-m", "switchboard_common.supervisor"]
    process = ManagedProcess(name, argv, work_dir / f"{name}.log", env=env, cwd=source_root)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/health/readiness", ready_timeout_s, process)
        api_key = generate_key(base, MASTER_KEY, _key_request(model))
        pii_api_key = generate_key(base, MASTER_KEY, {**_key_request(model), "key_alias": "bench-pii",
                                                      "pii_policy": "substitute"})
    except Exception as exc:
        process.stop()
        raise GatewayUnavailable(f"{name} did not start: {exc}") from exc
    return RunningGateway(
        name,
        f"{base}/v1/chat/completions",
        api_key,
        process,
        overhead_header=OVERHEAD_HEADER,
        stream_overhead_header=STREAM_OVERHEAD_HEADER,
        # The four services are the gateway; the supervisor is how `make run` starts them.
        meter_root=False,
        pii_api_key=pii_api_key,
    )


def _key_request(model: str) -> dict[str, object]:
    """A key for the benchmark model whose limits and budget the run cannot reach."""
    return {
        "models": [model],
        "key_alias": "bench",
        "rpm_limit": 10_000_000,
        "tpm_limit": 10_000_000_000,
        "max_budget": 1_000_000,
    }
