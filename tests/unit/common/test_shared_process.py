"""Several gRPC services in one process (``make run``'s default layout): started in dependency order, stopped in
the reverse order, and a service that fails takes the process down with its failure, its companions stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from switchboard_common.shared_process import checked
from switchboard_common.supervisor import LAYOUTS, stop_stages
from tests.fakes.server import free_port
from tests.harness import ROOT, python_path


def test_the_services_are_hosted_in_start_order_and_only_grpc_services_are() -> None:
    assert checked(["router", "billing", "auth"]) == ["auth", "billing", "router"]
    with pytest.raises(ValueError, match="cannot host facade"):
        checked(["auth", "facade"])
    with pytest.raises(ValueError, match="cannot host nothing"):
        checked([])


def test_a_process_is_signalled_with_its_first_service_to_stop_and_given_a_grace_per_stage() -> None:
    shared = stop_stages(LAYOUTS["shared"])
    assert shared == [[(("facade",), 1)], [(("auth", "billing", "router"), 2)], []]
    separate = stop_stages(LAYOUTS["separate"])
    assert separate == [[(("facade",), 1)], [(("router",), 1)], [(("auth",), 1), (("billing",), 1)]]


def test_a_service_that_fails_to_start_stops_the_others_and_the_process(tmp_path: Path) -> None:
    """Billing cannot read its catalog: auth, started with it, is stopped in order, and the process exits as billing
    alone would (status 2, its reason in one line, no traceback), instead of hanging with two of three services up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update({"PYTHONPATH": python_path(), "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
                "SWITCHBOARD_CONFIG": str(tmp_path / "missing.yaml"),
                **{f"SWITCHBOARD_{n}_ADDRESS": f"127.0.0.1:{free_port()}" for n in ("AUTH", "BILLING", "ROUTER")}})
    done = subprocess.run([sys.executable, "-m", "switchboard_common.shared_process", "auth", "billing", "router"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out[-3000:]
    assert "switchboard billing: the model catalog is invalid: config file" in out, out[-3000:]
    assert "missing.yaml does not exist (set SWITCHBOARD_CONFIG)" in out and "Traceback" not in out, out[-3000:]
    assert '"service_ended":"billing"' in out, out[-3000:]
    assert '"service":"auth","logger":"switchboard_common.grpc_server","msg":"stopped"' in out, out[-3000:]
    assert '"msg":"router listening"' not in out, "the router, which needs billing, never started"
