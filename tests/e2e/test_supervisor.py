"""``make run``'s supervisor: the services in two processes (or four, ``SWITCHBOARD_LAYOUT=separate``), a master
key kept in the data directory (or taken from the environment, then never printed), log lines of any length, a
stop in order within the grace, no process outliving it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from switchboard_common.supervisor import CONTINUED, LAYOUTS
from tests.conftest import FAKE_PRICES
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import free_port, free_port_run
from tests.harness import ROOT, python_path
from tests.sdk_clients import openai_client

#: Enough models with long names that the router's "models live" line is longer than 64 KiB.
LONG_LINE_MODELS = 300


def start_supervisor(tmp_path: Path, api_base: str, *, many_models: bool = False,
                     extra_env: dict[str, str] | None = None,
                     upstream_models: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``make run``'s supervisor on free ports, ready; its process and the gateway's URL. ``upstream_models``
    serves more models (public name → the fake provider's model) beside ``fake-good``."""
    models = [{"name": name, "deployments": [
        {"provider": "openai", "model": upstream, "api_base": api_base, "api_key": "x", **FAKE_PRICES}]}
        for name, upstream in {"fake-good": "good", **(upstream_models or {})}.items()]
    if many_models:
        models += [{"name": f"long-{i:03d}-" + "n" * 240, "deployments": [
            {"provider": "openai", "model": "good", "api_base": api_base, "api_key": "x", **FAKE_PRICES}]}
            for i in range(LONG_LINE_MODELS)]
    config = tmp_path / "switchboard.yaml"
    config.write_text(yaml.safe_dump({"models": models}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update({"PYTHONPATH": python_path(), "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
                "SWITCHBOARD_CONFIG": str(config), "SWITCHBOARD_PORT": str(port),
                "SWITCHBOARD_AUTH_PORT": str(free_port()), "SWITCHBOARD_BILLING_PORT": str(free_port()),
                "SWITCHBOARD_ROUTER_PORT": str(free_port()), **(extra_env or {})})
    # Its output goes to a file, which never fills up as a pipe nobody reads would.
    with open(tmp_path / "supervisor.out", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "switchboard_common.supervisor"], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/health/readiness", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise AssertionError(f"the supervisor did not start:\n{output(tmp_path)}")


def output(tmp_path: Path) -> str:
    return (tmp_path / "supervisor.out").read_text(errors="replace")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_supervisor_serves_openai_and_cursor_and_stops_cleanly(tmp_path: Path, fake_openai: tuple[FakeOpenAI, str],
                                                                layout: str) -> None:
    proc, base = start_supervisor(tmp_path, fake_openai[1], many_models=True, extra_env={"SWITCHBOARD_LAYOUT": layout})
    try:
        running = processes_with_env(f"SWITCHBOARD_DATA_DIR={tmp_path / 'data'}")
        assert len(running) == 1 + len(LAYOUTS[layout]), "the supervisor and the layout's processes"
        master_file = tmp_path / "data" / "master_key"
        assert master_file.stat().st_mode & 0o777 == 0o600
        master = master_file.read_text()
        key = httpx.post(f"{base}/key/generate", json={"key_alias": "me"},
                         headers={"Authorization": f"Bearer {master}"}).json()["key"]
        for path in ("/v1", "/cursor"):
            sdk = openai_client(api_key=key, base_url=base + path, max_retries=0)
            reply = sdk.chat.completions.create(model="fake-good", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content == "Hello from the fake provider."
            text = "".join(c.choices[0].delta.content or "" for c in sdk.chat.completions.create(
                model="fake-good", messages=[{"role": "user", "content": "hi"}], stream=True) if c.choices)
            assert text == "Hello from the fake provider."
        # The banner follows readiness (it lists the live models, asked of the gateway itself).
        deadline = time.monotonic() + 30
        while master not in output(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    text = output(tmp_path)
    assert proc.returncode == 0, text
    assert master in text, "the master key generated at start is printed"
    assert re.search(r"models live:\s+fake-good", text), text[-3000:]
    for name in ("auth", "billing", "router", "facade"):
        assert f"{name:>7} | " in text, f"{name} logs are prefixed"
    assert "SIGTERM: stopping the gateway" in text, text[-3000:]  # the operator is told what the stop does
    # Stopped in order, whatever process each runs in: the router before the auth and billing it settles with.
    stopped = [line.split(" | ")[0].strip() for line in text.splitlines() if '"msg":"stopped"' in line]
    assert stopped.index("router") < min(stopped.index("auth"), stopped.index("billing")), stopped
    # The router's "models live" line is longer than 64 KiB: it passes through in pieces, and the router's later
    # lines (its shutdown) still come through.
    pieces = [line for line in text.splitlines() if line.startswith(" router | ") and "long-" in line]
    assert len(pieces) > 1 and all(p.endswith(CONTINUED.decode()) for p in pieces[:-1]), pieces[-1][-200:]
    assert "long-299-" in "".join(pieces), "nothing of the long line is lost"
    after = text[text.index(pieces[-1]) + len(pieces[-1]):].splitlines()
    assert any(line.startswith(" router | ") and '"stopped"' in line for line in after), text[-3000:]
    assert processes_with_env(f"SWITCHBOARD_DATA_DIR={tmp_path / 'data'}") == [], "no process is left behind"


def test_master_key_from_the_environment_is_not_printed_and_a_stuck_service_is_killed_in_the_grace(
        tmp_path: Path, fake_openai: tuple[FakeOpenAI, str]) -> None:
    master = "sk-master-from-env-" + os.urandom(8).hex()
    proc, _ = start_supervisor(tmp_path, fake_openai[1], extra_env={
        "SWITCHBOARD_MASTER_KEY": master, "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "4"})
    deadline = time.monotonic() + 30
    while "Switchboard is ready" not in output(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)  # the banner comes once the gateway answers its models
    router = next(pid for pid in processes_with_env(f"SWITCHBOARD_DATA_DIR={tmp_path / 'data'}")
                  if b"router" in Path(f"/proc/{pid}/cmdline").read_bytes())  # its own process, or the shared one
    os.kill(router, signal.SIGSTOP)  # a service that will never answer SIGTERM
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)  # the grace is 4 s (twice for the shared process): the supervisor must not wait longer
    text = output(tmp_path)
    assert master not in text, "a master key from the environment is the operator's secret"
    assert re.search(r"master key:\s+from SWITCHBOARD_MASTER_KEY", text), text[-3000:]
    assert master not in (tmp_path / "data" / "env").read_text(), "nor copied to the shell's env file"
    assert processes_with_env(f"SWITCHBOARD_DATA_DIR={tmp_path / 'data'}") == [], "the stuck router was killed"


def test_services_die_with_a_killed_supervisor(tmp_path: Path, fake_openai: tuple[FakeOpenAI, str]) -> None:
    proc, base = start_supervisor(tmp_path, fake_openai[1])
    marker = f"SWITCHBOARD_DATA_DIR={tmp_path / 'data'}"
    assert len(processes_with_env(marker)) == 1 + len(LAYOUTS["shared"])
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30
    while processes_with_env(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with_env(marker) == [], "the services stop when the supervisor is SIGKILLed"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/health/liveness", timeout=2)


def processes_with_env(entry: str) -> list[int]:
    """PIDs whose environment contains ``entry`` (the services inherit the supervisor's)."""
    found = []
    needle = entry.encode()
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            environ = (proc_dir / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(proc_dir.name))
    return found


@pytest.mark.parametrize("layout", LAYOUTS)
def test_one_metrics_port_setting_serves_every_grpc_services_metrics(
        tmp_path: Path, fake_openai: tuple[FakeOpenAI, str], layout: str) -> None:
    """SWITCHBOARD_METRICS_PORT under make run. Separate processes cannot share one port (billing failed to bind it
    and took the gateway down): auth gets it, billing the next, the router the one after. The shared process
    serves its one registry, all three services' series, on the port itself."""
    first = free_port_run(3)
    proc, base = start_supervisor(tmp_path, fake_openai[1], extra_env={"SWITCHBOARD_METRICS_PORT": str(first),
                                                                      "SWITCHBOARD_LAYOUT": layout})
    try:
        master = (tmp_path / "data" / "master_key").read_text().strip()
        assert httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {master}"}).status_code == 200
        for offset, service in enumerate(("auth", "billing", "router")):
            port = first + offset if layout == "separate" else first
            scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            assert scraped.status_code == 200, (service, scraped.text[:200])
            assert f'service="{service}"' in scraped.text, (service, scraped.text[:500])  # its own RPCs
        assert proc.poll() is None, output(tmp_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_a_second_gateway_on_the_same_ports_says_which_port_and_starts_nothing(
        tmp_path: Path, fake_openai: tuple[FakeOpenAI, str]) -> None:
    """A second make run next to a running one: it used to take the first one's gRPC services' health for its own,
    print "Switchboard is ready" with its master key, and only then fail on the HTTP port."""
    (tmp_path / "first").mkdir()
    proc, base = start_supervisor(tmp_path / "first", fake_openai[1])
    try:
        first_env = {k: v for k, v in (line.split("=", 1) for line in
                     Path(f"/proc/{proc.pid}/environ").read_bytes().decode().split("\0") if "=" in line)}
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        env.update({k: v for k, v in first_env.items() if k.startswith("SWITCHBOARD_") or k == "PYTHONPATH"})
        env["SWITCHBOARD_DATA_DIR"] = str(tmp_path / "second")
        second = subprocess.run([sys.executable, "-m", "switchboard_common.supervisor"], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        out = second.stdout + second.stderr
        assert second.returncode == 1, out[-3000:]
        port = first_env["SWITCHBOARD_PORT"]
        assert f"cannot listen on 127.0.0.1:{port}: it is held by pid" in out and "SWITCHBOARD_PORT" in out, out
        assert f"127.0.0.1:{first_env['SWITCHBOARD_ROUTER_PORT']}" in out and "SWITCHBOARD_ROUTER_PORT" in out, out
        assert "is ready" not in out and "master key" not in out, out
        assert httpx.get(f"{base}/health/readiness", timeout=5).status_code == 200, "the first one is untouched"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
