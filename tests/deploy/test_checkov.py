"""checkov finds no failed check in the rendered overlays or the Dockerfiles.

Every exception is a ``checkov.io/skipN`` annotation (or ``checkov:skip``
comment) with its reason next to it in the manifests. checkov lives in a venv
of its own (it pins a boto3 older than the router's): the test runs the binary
named by ``$CHECKOV``, else ``.venv-tools/bin/checkov``, else ``checkov`` on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import OVERLAYS, REPO, SERVICES, Rendered


def checkov_binary() -> str | None:
    for candidate in (os.environ.get("CHECKOV"), str(REPO / ".venv-tools" / "bin" / "checkov")):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("checkov")


def _results(report: object) -> dict[str, dict]:  # type: ignore[type-arg]
    """checkov's JSON report by framework (``kubernetes``, ``dockerfile``)."""
    reports = report if isinstance(report, list) else [report]
    return {r["check_type"]: r for r in reports if isinstance(r, dict) and "check_type" in r}


def _failed(result: dict) -> list[str]:  # type: ignore[type-arg]
    return [f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})"
            for c in result.get("results", {}).get("failed_checks", [])]


@pytest.fixture(scope="module")
def report(rendered: dict[str, Rendered], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:  # type: ignore[type-arg]
    """One checkov run (its start-up dominates) over the rendered overlays and the Dockerfiles."""
    binary = checkov_binary()
    if binary is None:
        pytest.skip("checkov is not installed: `python3 -m venv .venv-tools && .venv-tools/bin/pip install "
                    "-r deploy/requirements-tools.txt` (or set $CHECKOV)")
    scan = tmp_path_factory.mktemp("checkov")
    for overlay in OVERLAYS:
        (scan / f"{overlay}.yaml").write_text(yaml.safe_dump_all(rendered[overlay].docs, sort_keys=False))
    for service in SERVICES:
        (scan / service).mkdir()
        shutil.copy(REPO / "services" / service / "Dockerfile", scan / service / "Dockerfile")
    done = subprocess.run(
        [binary, "--directory", str(scan), "--framework", "kubernetes", "dockerfile", "--output", "json",
         "--quiet", "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=180, check=False, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    if done.returncode not in (0, 1) or not done.stdout.strip().startswith(("{", "[")):
        raise AssertionError(f"checkov did not run (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return _results(json.loads(done.stdout))


def test_rendered_overlays_pass_checkov(report: dict[str, dict]) -> None:  # type: ignore[type-arg]
    assert _failed(report["kubernetes"]) == []
    assert report["kubernetes"]["summary"]["passed"] > 100


def test_dockerfiles_pass_checkov(report: dict[str, dict]) -> None:  # type: ignore[type-arg]
    assert _failed(report["dockerfile"]) == []
    assert report["dockerfile"]["summary"]["passed"] > 50
