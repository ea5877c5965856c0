"""Starting the real gateway for tests: four processes on loopback ports.

Each service runs as its own process exactly as in production (``python -m
switchboard_<name>``), configured only through environment variables.
Nothing of ours is mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.fakes.server import free_port

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ROOTS = ["protos/gen", "libs/common", "libs/rules", "libs/translate", "services/auth", "services/router",
                 "services/billing", "services/facade"]


def python_path() -> str:
    return os.pathsep.join(str(ROOT / p) for p in PACKAGE_ROOTS)


#: The tokens the facade and the router present to the services they call (switchboard_common.identity).
SERVICE_TOKENS = {"facade": "facade-token-" + os.urandom(8).hex(), "router": "router-token-" + os.urandom(8).hex()}


@dataclass
class ServiceProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Gateway:
    """A running gateway: its URL, master key and processes."""

    base_url: str
    master_key: str
    data_dir: Path
    config_path: Path
    env: dict[str, str]
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    #: Every facade's URL (several when replicated; the first is base_url).
    base_urls: list[str] = field(default_factory=list)

    def create_key(self, **spec: object) -> str:
        response = httpx.post(f"{self.base_url}/key/generate", json=spec,
                              headers={"Authorization": f"Bearer {self.master_key}"}, timeout=10)
        response.raise_for_status()
        return str(response.json()["key"])

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.master_key}"}

    def ledger_row(self, request_id: str, timeout: float = 10) -> dict[str, Any]:
        """The ``/spend/logs`` row of one request (settlement is asynchronous, so this polls briefly)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = httpx.get(f"{self.base_url}/spend/logs", headers=self.admin(), params={"limit": 1000}).json()
            row = next((r for r in rows if r["request_id"] == request_id), None)
            if row is not None:
                return dict(row)
            time.sleep(0.05)
        raise AssertionError(f"no ledger row for {request_id}")

    def logs(self) -> str:
        return "\n".join(f"==== {n} ====\n{p.log()}" for n, p in self.processes.items())

    def wait_ready(self, timeout: float = 30, url: str | None = None) -> None:
        base_url = url or self.base_url
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for p in self.processes.values():
                if p.proc.poll() is not None:
                    raise RuntimeError(f"{p.name} exited early:\n{self.logs()}")
            try:
                r = httpx.get(f"{base_url}/health/readiness", timeout=2)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise RuntimeError(f"gateway not ready: {last}\n{self.logs()}")

    def start_service(self, name: str, extra_env: Mapping[str, str] | None = None) -> ServiceProcess:
        env: dict[str, str] = {}
        if name != "facade":
            env["SWITCHBOARD_GRPC_LISTEN"] = self.env[f"SWITCHBOARD_{name.upper()}_ADDRESS"]
        env.update(extra_env or {})
        return self.start_named(name, name, env)

    def start_named(self, label: str, service: str, extra_env: Mapping[str, str] | None = None) -> ServiceProcess:
        """Starts one more process of ``service`` under its own label (a replica), with its own log."""
        env = dict(self.env)
        if service in SERVICE_TOKENS:  # its identity, as a Kubernetes Secret would give it (replicas share it)
            env["SWITCHBOARD_SERVICE_TOKEN"] = SERVICE_TOKENS[service]
        env.update(extra_env or {})
        logs_dir = self.data_dir.parent / "logs"
        logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = logs_dir / f"{label}.log"
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen([sys.executable, "-m", f"switchboard_{service}"], env=env, stdout=log_file,
                                    stderr=subprocess.STDOUT, cwd=ROOT)
        sp = ServiceProcess(label, proc, log_path)
        self.processes[label] = sp
        return sp

    def stop(self) -> None:
        order = ("facade", "router", "billing", "auth")
        def rank(label: str) -> int:
            return next((i for i, o in enumerate(order) if label.startswith(o)), len(order))

        for label in sorted(self.processes, key=rank):
            self.processes[label].terminate()


def _prepare(tmp: Path, models: list[dict[str, object]], extra_env: Mapping[str, str] | None,
             router_settings: Mapping[str, object] | None, extra_config: Mapping[str, object] | None = None,
             document: Mapping[str, object] | None = None) -> Gateway:
    tmp.mkdir(parents=True, exist_ok=True)
    config_path = tmp / "switchboard.yaml"
    config: dict[str, object] = {**(extra_config or {}), "models": models}
    config["router_settings"] = dict(router_settings or {"max_attempts": 2, "backoff_initial_seconds": 0.05,
                                                          "cooldown_failures": 0})
    config_path.write_text(yaml.safe_dump(dict(document) if document is not None else config))
    port = free_port()
    master = "sk-master-test-" + os.urandom(8).hex()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update({
        "PYTHONPATH": python_path(),
        "PYTHONUNBUFFERED": "1",
        "SWITCHBOARD_DATA_DIR": str(tmp / "data"),
        "SWITCHBOARD_CONFIG": str(config_path),
        "SWITCHBOARD_MASTER_KEY": master,
        "SWITCHBOARD_KEY_PEPPER": "test-pepper-" + os.urandom(8).hex(),
        "SWITCHBOARD_PORT": str(port),
        "SWITCHBOARD_AUTH_ADDRESS": f"127.0.0.1:{free_port()}",
        "SWITCHBOARD_BILLING_ADDRESS": f"127.0.0.1:{free_port()}",
        "SWITCHBOARD_ROUTER_ADDRESS": f"127.0.0.1:{free_port()}",
        "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "3",
        "SWITCHBOARD_LOG_LEVEL": "INFO",
        "SWITCHBOARD_FACADE_TOKEN": SERVICE_TOKENS["facade"],
        "SWITCHBOARD_ROUTER_TOKEN": SERVICE_TOKENS["router"],
    })
    env.update(extra_env or {})
    return Gateway(f"http://127.0.0.1:{port}", master, tmp / "data", config_path, env, base_urls=[
        f"http://127.0.0.1:{port}"])


def start_gateway(tmp: Path, models: list[dict[str, object]], extra_env: Mapping[str, str] | None = None,
                  router_settings: Mapping[str, object] | None = None,
                  extra_config: Mapping[str, object] | None = None,
                  document: Mapping[str, object] | None = None) -> Gateway:
    """The four services on free loopback ports; ``extra_config`` adds top-level keys to the catalog file
    (``privacy_tiers``, ``access_groups``, ...); ``document``, when given, is the whole file written as it is (a
    LiteLLM config, say) instead of ``models``, ``router_settings`` and ``extra_config``."""
    gw = _prepare(tmp, models, extra_env, router_settings, extra_config, document)
    for name in ("auth", "billing", "router", "facade"):
        gw.start_service(name)
    try:
        gw.wait_ready()
    except Exception:
        gw.stop()
        raise
    return gw


def start_replicated_gateway(tmp: Path, models: list[dict[str, object]], *, auth_env: Mapping[str, str],
                             facade_env: Mapping[str, str] | None = None, auth_replicas: int = 2,
                             facades: int = 2) -> Gateway:
    """Several auth and facade processes (one router, one billing), as behind a load balancer.

    ``auth_env`` goes to the auth processes only (e.g. their PostgreSQL and Redis URLs, which
    other services must not share); every facade balances over every auth replica."""
    gw = _prepare(tmp, models, None, None)
    auth_addresses = [f"127.0.0.1:{free_port()}" for _ in range(auth_replicas)]
    gw.env["SWITCHBOARD_AUTH_ADDRESS"] = ",".join(auth_addresses)
    for i, address in enumerate(auth_addresses):
        gw.start_named(f"auth{i + 1}", "auth", {**auth_env, "SWITCHBOARD_GRPC_LISTEN": address})
    gw.start_service("billing")
    gw.start_service("router")
    ports = [int(gw.base_url.rsplit(":", 1)[1])] + [free_port() for _ in range(facades - 1)]
    gw.base_urls = [f"http://127.0.0.1:{p}" for p in ports]
    for i, port in enumerate(ports):
        env = {**(facade_env or {}), "SWITCHBOARD_PORT": str(port)}
        if i:
            env["SWITCHBOARD_DATA_DIR"] = str(tmp / f"facade{i + 1}-data")
        gw.start_named(f"facade{i + 1}", "facade", env)
    try:
        for url in gw.base_urls:
            gw.wait_ready(url=url)
    except Exception:
        gw.stop()
        raise
    return gw


@dataclass
class Cluster:
    """Several replicas of every service (labels ``auth1``, ``auth2``, ``billing1``, ... ``facade2``)."""

    gateway: Gateway
    #: How each replica was started (service, environment), to start it again under the same label.
    launches: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def start(self, label: str) -> ServiceProcess:
        service, env = self.launches[label]
        return self.gateway.start_named(label, service, env)

    def wait_ready(self, label: str, timeout: float = 30) -> None:
        """Waits for one facade replica's readiness (other replicas may be down)."""
        url = self.gateway.base_urls[int(label.removeprefix("facade")) - 1]
        process = self.gateway.processes[label]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.proc.poll() is not None:
                raise RuntimeError(f"{label} exited early:\n{process.log()}")
            try:
                if httpx.get(f"{url}/health/readiness", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{label} not ready:\n{process.log()}")


def start_cluster(tmp: Path, models: list[dict[str, object]], *, replicas: int = 2,
                  service_env: Mapping[str, Mapping[str, str]] | None = None,
                  router_settings: Mapping[str, object] | None = None) -> Cluster:
    """``replicas`` processes of each of the four services on loopback, as behind headless Services.

    Every facade is given every replica's address as a comma-separated list (one balanced gRPC
    channel per service). ``service_env`` maps a service name to the environment only its
    processes get (e.g. auth's PostgreSQL and Redis URLs); each replica has its own data directory."""
    gw = _prepare(tmp, models, None, router_settings)
    cluster = Cluster(gw)
    env_of = service_env or {}
    for service in ("auth", "billing", "router"):
        addresses = [f"127.0.0.1:{free_port()}" for _ in range(replicas)]
        gw.env[f"SWITCHBOARD_{service.upper()}_ADDRESS"] = ",".join(addresses)
        for i, address in enumerate(addresses):
            cluster.launches[f"{service}{i + 1}"] = (service, {
                **env_of.get(service, {}), "SWITCHBOARD_GRPC_LISTEN": address,
                "SWITCHBOARD_DATA_DIR": str(tmp / f"{service}{i + 1}-data")})
    ports = [int(gw.base_url.rsplit(":", 1)[1])] + [free_port() for _ in range(replicas - 1)]
    gw.base_urls = [f"http://127.0.0.1:{p}" for p in ports]
    for i, port in enumerate(ports):
        cluster.launches[f"facade{i + 1}"] = ("facade", {
            **env_of.get("facade", {}), "SWITCHBOARD_PORT": str(port),
            "SWITCHBOARD_DATA_DIR": str(tmp / f"facade{i + 1}-data")})
    for label in cluster.launches:
        cluster.start(label)
    try:
        for url in gw.base_urls:
            gw.wait_ready(url=url)
    except Exception:
        gw.stop()
        raise
    return cluster
