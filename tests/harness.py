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

import httpx
import yaml

from tests.fakes.server import free_port

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ROOTS = ["protos/gen", "libs/common", "libs/translate", "services/auth", "services/router",
                 "services/billing", "services/facade"]


def python_path() -> str:
    return os.pathsep.join(str(ROOT / p) for p in PACKAGE_ROOTS)


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

    def create_key(self, **spec: object) -> str:
        response = httpx.post(f"{self.base_url}/key/generate", json=spec,
                              headers={"Authorization": f"Bearer {self.master_key}"}, timeout=10)
        response.raise_for_status()
        return str(response.json()["key"])

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.master_key}"}

    def logs(self) -> str:
        return "\n".join(f"==== {n} ====\n{p.log()}" for n, p in self.processes.items())

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for p in self.processes.values():
                if p.proc.poll() is not None:
                    raise RuntimeError(f"{p.name} exited early:\n{self.logs()}")
            try:
                r = httpx.get(f"{self.base_url}/health/readiness", timeout=2)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise RuntimeError(f"gateway not ready: {last}\n{self.logs()}")

    def start_service(self, name: str, extra_env: Mapping[str, str] | None = None) -> ServiceProcess:
        env = dict(self.env)
        if name != "facade":
            env["SWITCHBOARD_GRPC_LISTEN"] = env[f"SWITCHBOARD_{name.upper()}_ADDRESS"]
        env.update(extra_env or {})
        logs_dir = self.data_dir.parent / "logs"
        logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = logs_dir / f"{name}.log"
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen([sys.executable, "-m", f"switchboard_{name}"], env=env, stdout=log_file,
                                    stderr=subprocess.STDOUT, cwd=ROOT)
        sp = ServiceProcess(name, proc, log_path)
        self.processes[name] = sp
        return sp

    def stop(self) -> None:
        for name in ("facade", "router", "billing", "auth"):
            if name in self.processes:
                self.processes[name].terminate()


def start_gateway(tmp: Path, models: list[dict[str, object]], extra_env: Mapping[str, str] | None = None,
                  router_settings: Mapping[str, object] | None = None) -> Gateway:
    tmp.mkdir(parents=True, exist_ok=True)
    config_path = tmp / "switchboard.yaml"
    config: dict[str, object] = {"models": models}
    config["router_settings"] = dict(router_settings or {"max_attempts": 2, "backoff_initial_seconds": 0.05,
                                                          "cooldown_failures": 0})
    config_path.write_text(yaml.safe_dump(config))
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
    })
    env.update(extra_env or {})
    gw = Gateway(f"http://127.0.0.1:{port}", master, tmp / "data", config_path, env)
    for name in ("auth", "billing", "router", "facade"):
        gw.start_service(name)
    try:
        gw.wait_ready()
    except Exception:
        gw.stop()
        raise
    return gw
