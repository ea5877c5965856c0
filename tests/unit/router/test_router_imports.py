"""A router loads what every deployment needs at start and the rest at first use: google-auth (with requests and
cryptography) only when a Vertex deployment is called, botocore only for Bedrock. Each is several megabytes in
every router process that never needs it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.harness import python_path

OPTIONAL = ("google.auth", "requests", "cryptography", "botocore", "redis")


def test_starting_a_router_loads_no_optional_provider_library() -> None:
    probe = ("import sys, switchboard_router.__main__, switchboard_router.providers.registry\n"
             f"print(','.join(m for m in {OPTIONAL!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": python_path()})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"loaded at start: {done.stdout.strip()}"
