"""The README's "Try it" works as written on a fresh checkout with no provider account: its shell and
Python blocks run, in order, in one shell, against ``make run``'s supervisor and the shipped catalog
(only the port and the data directory differ, so that the test runs beside a developer's gateway)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.fakes.server import free_port
from tests.harness import ROOT, python_path

PROVIDER_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "MISTRAL_API_KEY", "GROQ_API_KEY",
                      "DEEPSEEK_API_KEY", "AZURE_API_KEY", "AWS_ACCESS_KEY_ID")


def try_it_script(port: int, data_dir: Path) -> str:
    """The "Try it" section's blocks as one bash script: shell blocks as they are, Python ones through the
    ``python`` that ``source .switchboard/env`` puts on PATH."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Try it"):readme.index("## Dashboard")]
    parts = ["set -euo pipefail"]
    for language, body in re.findall(r"```(sh|python)\n(.*?)```", section, flags=re.S):
        parts.append(body if language == "sh" else f"python - <<'PY'\n{body}PY")
    script = "\n".join(parts)
    script = script.replace("127.0.0.1:4000", f"127.0.0.1:{port}")
    return script.replace("source .switchboard/env", f"source {data_dir / 'env'}")


def test_the_readme_try_it_runs_as_written_against_make_run(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_") and k not in PROVIDER_VARIABLES}
    env.update({"PYTHONPATH": python_path(), "SWITCHBOARD_DATA_DIR": str(data_dir), "SWITCHBOARD_PORT": str(port),
                "SWITCHBOARD_AUTH_PORT": str(free_port()), "SWITCHBOARD_BILLING_PORT": str(free_port()),
                "SWITCHBOARD_ROUTER_PORT": str(free_port()), "OLLAMA_API_BASE": "http://127.0.0.1:9/v1"})
    gateway = subprocess.Popen([sys.executable, "-m", "switchboard_common.supervisor"], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(gateway.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while not any("Switchboard is ready" in line for line in lines):
            assert gateway.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        banner = "".join(lines)
        assert "models live:   demo" in banner and "no provider key found: the demo model answers" in banner
        assert (data_dir / "env").stat().st_mode & 0o777 == 0o600
        shell_env = {k: v for k, v in env.items() if not k.startswith("SWITCHBOARD_")}
        done = subprocess.run(["bash", "-c", try_it_script(port, data_dir)], env=shell_env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=60)
        reader.join(timeout=10)
        if gateway.stdout is not None:
            gateway.stdout.close()
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    out = done.stdout
    assert '"key":"sk-' in out.replace(" ", ""), "the curl created a key"
    assert out.count('You said: \\"say hi\\"') == 1, "the curl chat answered"
    assert 'You said: "say hi"' in out and 'You said: "count to 5"' in out, "the SDK blocks answered"
    assert "x-switchboard-deployment: demo/0" in out
    assert "TOTAL" in out and "demo" in out, "switchboard usage sums the demo's requests"
    assert "Checking the gateway" in out and "demo is live (demo)" in out
