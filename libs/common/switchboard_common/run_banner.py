"""What ``make run`` tells a person once the gateway answers: where it is, the master key, the file to
``source`` for the shell commands of the README, the live models, and a first request to copy.

The banner waits for the facade's readiness, then asks the gateway itself which models are live
(``GET /v1/models`` with the master key), so it says what the gateway really serves.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

#: The file ``make run`` writes for shells: ``source .switchboard/env``.
ENV_FILE = "env"
#: Provider variables the shipped catalog reads, named when only the demo model is live.
PROVIDER_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")


def write_env_file(data_dir: Path, url: str, master_key: str | None, bin_dir: Path) -> Path:
    """``<data dir>/env``: the exports that make the README's commands work in any shell (mode 0600):
    the gateway's URL, the master key (``None`` when the operator set it: their shell has it already, and a
    secret of theirs is not copied to a file), and ``bin_dir`` (where the ``switchboard`` CLI is) on ``PATH``."""
    path = data_dir / ENV_FILE
    text = (f"# Written by `make run`: `source {path}` in a shell to use the gateway's commands.\n"
            f"export SWITCHBOARD_URL={shlex.quote(url)}\n"
            + (f"export SWITCHBOARD_MASTER_KEY={shlex.quote(master_key)}\n" if master_key else "")
            + f"export PATH={shlex.quote(str(bin_dir))}:\"$PATH\"\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.chmod(path, 0o600)
    return path


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


async def wait_until_ready(url: str, timeout: float) -> bool:
    """Polls ``/health/readiness`` until the facade and the three services behind it answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = await asyncio.to_thread(_get, f"{url}/health/readiness")
        if status == 200:
            return True
        await asyncio.sleep(0.2)
    return False


def live_models(url: str, master_key: str) -> list[dict[str, Any]]:
    status, body = _get(f"{url}/v1/models", {"Authorization": f"Bearer {master_key}"})
    return list(body.get("data") or []) if status == 200 and isinstance(body, dict) else []


def banner(url: str, generated: tuple[str, str] | None, env_file: Path, models: list[dict[str, Any]],
           seconds: float) -> str:
    """The banner; ``generated`` is the master key and its file when ``make run`` generated it, ``None`` when it
    came from ``SWITCHBOARD_MASTER_KEY`` (the operator's secret: named, never printed)."""
    if generated is None:
        shown_key, credential = "from SWITCHBOARD_MASTER_KEY (not shown)", "$SWITCHBOARD_MASTER_KEY"
    else:
        shown_key, credential = f"{generated[0]}   (kept in {generated[1]})", generated[0]
    names = [str(m.get("id")) for m in models]
    providers = {d.get("provider") for m in models for d in (m.get("switchboard") or {}).get("deployments", [])}
    try:
        shown = env_file.relative_to(Path.cwd())
    except ValueError:
        shown = env_file
    lines = [
        "",
        f"Switchboard is ready on {url} (started in {seconds:.1f} s)",
        f"  master key:    {shown_key}",
        f"  in a shell:    source {shown}    # " + ("the master key and the switchboard CLI for your shell"
                                                   if generated is not None else
                                                   "the switchboard CLI; it reads the master key from "
                                                   "SWITCHBOARD_MASTER_KEY, so export it in that shell too"),
        f"  models live:   {', '.join(names) if names else '(none)'}",
    ]
    if providers == {"demo"}:
        lines.append(f"  no provider key found: the demo model answers; export {PROVIDER_VARIABLES[0]}=… "
                     f"(or {', '.join(PROVIDER_VARIABLES[1:])}, …) and restart to go live")
    elif not names:
        lines.append("  no model is live: export OPENAI_API_KEY=… (or another provider's key) and restart, "
                     "or add a deployment to SWITCHBOARD_CONFIG")
    lines += [
        f"  OpenAI base URL: {url}/v1    Cursor: {url}/cursor    dashboard: {url}/ui",
        f"  create a key:  curl -s {url}/key/generate -H \"Authorization: Bearer {credential}\" "
        "-d '{\"key_alias\": \"me\"}'",
        "",
    ]
    return "\n".join(lines)
