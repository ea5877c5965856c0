"""``make run``'s supervisor: four processes, a master key kept in the data directory, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import yaml

from tests.conftest import FAKE_PRICES
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import free_port
from tests.harness import ROOT, python_path


def test_supervisor_serves_openai_and_cursor_and_stops_cleanly(tmp_path: Path,
                                                                fake_openai: tuple[FakeOpenAI, str]) -> None:
    config = tmp_path / "switchboard.yaml"
    config.write_text(yaml.safe_dump({"models": [{"name": "fake-good", "deployments": [
        {"provider": "openai", "model": "good", "api_base": fake_openai[1], "api_key": "x", **FAKE_PRICES}]}]}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update({"PYTHONPATH": python_path(), "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
                "SWITCHBOARD_CONFIG": str(config), "SWITCHBOARD_PORT": str(port),
                "SWITCHBOARD_AUTH_PORT": str(free_port()), "SWITCHBOARD_BILLING_PORT": str(free_port()),
                "SWITCHBOARD_ROUTER_PORT": str(free_port())})
    proc = subprocess.Popen([sys.executable, "-m", "switchboard_common.supervisor"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health/readiness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        running = processes_with_env(f"SWITCHBOARD_DATA_DIR={tmp_path / 'data'}")
        assert len(running) >= 4, "the four services run as their own processes"
        master_file = tmp_path / "data" / "master_key"
        assert master_file.stat().st_mode & 0o777 == 0o600
        master = master_file.read_text()
        key = httpx.post(f"{base}/key/generate", json={"key_alias": "me"},
                         headers={"Authorization": f"Bearer {master}"}).json()["key"]
        for path in ("/v1", "/cursor"):
            sdk = openai.OpenAI(api_key=key, base_url=base + path, max_retries=0)
            reply = sdk.chat.completions.create(model="fake-good", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content == "Hello from the fake provider."
            text = "".join(c.choices[0].delta.content or "" for c in sdk.chat.completions.create(
                model="fake-good", messages=[{"role": "user", "content": "hi"}], stream=True) if c.choices)
            assert text == "Hello from the fake provider."
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    text = out.decode()
    assert proc.returncode == 0, text
    assert master in text, "the master key is printed at start"
    assert "models live: fake-good" in text
    for name in ("auth", "billing", "router", "facade"):
        assert f"{name:>7} | " in text, f"{name} logs are prefixed"
    assert processes_with_env(f"SWITCHBOARD_DATA_DIR={tmp_path / 'data'}") == [], "no process is left behind"


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
