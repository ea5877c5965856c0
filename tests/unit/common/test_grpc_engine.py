"""Every service process runs gRPC on the I/O engine Switchboard chose, unless the operator chose another.

Each check is a fresh interpreter started as a service starts (its package first), because gRPC reads the
choice once, when ``grpc`` is imported: what matters is what that interpreter held at that moment.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from switchboard_common.grpc_engine import EXPERIMENTS
from tests.harness import python_path

#: Prints the ``GRPC_EXPERIMENTS`` the environment held when ``grpc`` was first imported, in a process that imports
#: ``first`` (as ``python -m`` imports a service's package) and then grpc itself.
PROBE = """
import os, sys

class FirstImportOfGrpc:
    seen = None
    def find_spec(self, name, path=None, target=None):
        if name == "grpc" and FirstImportOfGrpc.seen is None:
            FirstImportOfGrpc.seen = repr(os.environ.get("GRPC_EXPERIMENTS"))
        return None

sys.meta_path.insert(0, FirstImportOfGrpc())
import {first}
import grpc
print(FirstImportOfGrpc.seen)
"""


def probe(first: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "GRPC_EXPERIMENTS"}
    environment.update(env, PYTHONPATH=python_path())
    return subprocess.run([sys.executable, "-c", PROBE.format(first=first)], env=environment, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("package", ["switchboard_auth", "switchboard_billing", "switchboard_router",
                                     "switchboard_facade", "switchboard_common.shared_process"])
def test_a_service_chooses_the_engine_before_grpc_is_imported_and_grpc_accepts_it(package: str) -> None:
    done = probe(package)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(EXPERIMENTS)
    assert "Unknown experiment" not in done.stderr, "this grpcio no longer has the engine: see grpc_engine.py"


def test_the_operators_choice_wins() -> None:
    done = probe("switchboard_router", GRPC_EXPERIMENTS="")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr("")
