"""LiteLLM's proxy as the comparison point: its own venv, a config aimed at the fake provider.

LiteLLM is installed in ``benchmarks/.venvs/litellm`` (never in the project's environment) at a
pinned release, and started with the settings its production guide recommends for one machine:
one worker (uvicorn with uvloop and httptools), a master key, no access/debug logging, the
bundled model-cost map (no network at start-up). The "virtual keys on PostgreSQL" variant additionally needs Prisma's generated client
and its query-engine binary, which are downloaded from binaries.prisma.sh on first use; where
that download is impossible the variant reports itself unavailable instead of failing the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.gateway import GatewayUnavailable, RunningGateway, generate_key
from benchmarks.processes import REPO_ROOT, ManagedProcess, free_port, wait_http_ok

LITELLM_VERSION = "1.100.5"
LITELLM_VENV = REPO_ROOT / "benchmarks" / ".venvs" / "litellm"
MASTER_KEY = "sk-master-bench"


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def litellm_venv(base_python: str | None) -> Path:
    """LiteLLM's venv: ``benchmarks/.venvs/litellm``, or one per interpreter when another is asked for."""
    if base_python is None:
        return LITELLM_VENV
    try:
        version = subprocess.run(
            [base_python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
            capture_output=True, text=True, check=False,
        )
    except OSError as exc:
        raise GatewayUnavailable(f"cannot run {base_python}: {exc}") from exc
    if version.returncode != 0:
        raise GatewayUnavailable(f"cannot run {base_python}: {version.stderr.strip()[-300:]}")
    return LITELLM_VENV.with_name(f"litellm-py{version.stdout.strip()}")


def ensure_litellm_installed(venv: Path = LITELLM_VENV, base_python: str | None = None) -> Path:
    """Create the venv and install ``litellm[proxy]`` at the pinned version if needed; returns its python.

    ``base_python``: the interpreter the venv is made from (default: the one running the benchmark).
    """
    python = _venv_python(venv)
    check = [
        str(python),
        "-c",
        f"import httptools, importlib.metadata as m; assert m.version('litellm') == '{LITELLM_VERSION}'",
    ]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    interpreter = base_python or str(getattr(sys, "_base_executable", None) or sys.executable)
    steps: list[list[str]] = [
        [interpreter, "-m", "venv", str(venv)],
        # httptools: uvicorn's C HTTP parser, what a production uvicorn (uvicorn[standard]) runs on.
        [str(python), "-m", "pip", "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}", "httptools"],
    ]
    for step in steps:
        print(f"[bench] {' '.join(step)}", flush=True)
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise GatewayUnavailable(f"installing LiteLLM failed: {' '.join(step)}\n{done.stderr[-2000:]}")
    return python


def ensure_prisma_client(python: Path) -> None:
    """Make LiteLLM's Prisma client usable (needed for its database); raise ``GatewayUnavailable`` if it cannot be."""
    probe = [str(python), "-c", "from prisma import Prisma; Prisma()"]
    if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "prisma"], capture_output=True, text=True, check=False
    )
    if pip.returncode != 0:
        raise GatewayUnavailable(f"cannot install prisma for LiteLLM's database: {pip.stderr[-800:]}")
    schema_dir = _litellm_proxy_dir(python)
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    generate = subprocess.run(
        [str(python.parent / "prisma"), "generate"],
        cwd=schema_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if generate.returncode != 0 or subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        output = (generate.stdout + generate.stderr).strip()[-800:]
        raise GatewayUnavailable(f"LiteLLM's database needs Prisma's generated client and engines: {output}")


def _litellm_proxy_dir(python: Path) -> Path:
    found = subprocess.run(
        [str(python), "-c", "import litellm.proxy, os; print(os.path.dirname(litellm.proxy.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip())


def litellm_config(provider_base_url: str, model: str, database_url: str | None) -> dict[str, object]:
    """The proxy config: one OpenAI-compatible deployment at the fake provider, no callbacks."""
    general: dict[str, object] = {"master_key": MASTER_KEY, "disable_error_logs": True}
    if database_url is not None:
        general.update({"database_url": database_url, "proxy_batch_write_at": 60, "database_connection_pool_limit": 10})
    else:
        general["disable_spend_logs"] = True
    return {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {"model": f"openai/{model}", "api_base": provider_base_url, "api_key": "x"},
            }
        ],
        "litellm_settings": {"set_verbose": False, "json_logs": False, "request_timeout": 600, "telemetry": False},
        "general_settings": general,
    }


#: uvicorn logging at WARNING: no access-log line per request (a production proxy ships access
#: logs from its load balancer, not from a Python logger on the hot path).
UVICORN_LOG_CONFIG: dict[str, object] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}


def start_litellm(
    provider_base_url: str,
    model: str,
    work_dir: Path,
    database_url: str | None = None,
    ready_timeout_s: float = 180.0,
    base_python: str | None = None,
) -> RunningGateway:
    """Install if needed, start the proxy on a free port, wait for readiness, return how to call it.

    With ``database_url`` the proxy keeps virtual keys in PostgreSQL and a key is generated for
    the benchmark; without it requests use the master key (LiteLLM's fastest auth path).
    """
    python = ensure_litellm_installed(litellm_venv(base_python), base_python)
    if database_url is not None:
        ensure_prisma_client(python)
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / "litellm_config.yaml"
    # JSON is valid YAML, and needs no YAML library here.
    config_path.write_text(json.dumps(litellm_config(provider_base_url, model, database_url), indent=2))
    log_config_path = work_dir / "uvicorn_log_config.json"
    log_config_path.write_text(json.dumps(UVICORN_LOG_CONFIG))
    port = free_port()
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "LITELLM_LOG": "ERROR",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_MODE": "PRODUCTION",
        "DISABLE_ADMIN_UI": "True",
        "NO_DOCS": "True",
    }
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    argv = [
        str(python.parent / "litellm"),
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
        "--log_config",
        str(log_config_path),
    ]
    name = "litellm+postgres" if database_url else "litellm"
    process = ManagedProcess(name, argv, work_dir / f"{name}.log", env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/health/readiness", ready_timeout_s, process)
        api_key = MASTER_KEY
        if database_url is not None:
            limits = {"rpm_limit": 10_000_000, "tpm_limit": 10_000_000_000}
            api_key = generate_key(base, MASTER_KEY, {"models": [model], "key_alias": "bench", **limits})
    except Exception as exc:
        process.stop()
        raise GatewayUnavailable(f"{name} did not start: {exc}") from exc
    return RunningGateway(
        name, f"{base}/v1/chat/completions", api_key, process,
        pii_unsupported="LiteLLM's PII masking is a Presidio guardrail that needs Presidio's analyzer and "
                        "anonymizer services, which this benchmark does not run",
    )
