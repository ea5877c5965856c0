"""A facade without single sign-on does not load the OpenID Connect libraries (Authlib and joserfc, about 12 MB per
facade) nor the HTTP client they fetch the provider's documents with (httpx, about 6 MB with what it imports):
they are imported at the first sign-in (the SSO tests sign in through them)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.harness import python_path

OPTIONAL = ("authlib", "joserfc", "httpx")


def test_starting_a_facade_loads_no_single_sign_on_library() -> None:
    probe = ("import sys, switchboard_facade.__main__, switchboard_facade.app\n"
             f"print(','.join(m for m in {OPTIONAL!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": python_path()})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"loaded at start: {done.stdout.strip()}"
