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


def _failed(report: object) -> list[str]:
    reports = report if isinstance(report, list) else [report]
    out = []
    for r in reports:
        if not isinstance(r, dict):
            continue
        for check in r.get("results", {}).get("failed_checks", []):
            out.append(f"{check['check_id']} {check['check_name']}: {check['resource']} ({check['file_path']})")
    return out


def _run(binary: str, args: list[str]) -> object:
    done = subprocess.run([binary, *args, "--output", "json", "--quiet", "--compact", "--skip-download"],
                          capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"})
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise AssertionError(f"checkov did not run (exit {done.returncode}):\n{done.stderr[-2000:]}")
    text = done.stdout.strip()
    return json.loads(text) if text.startswith(("{", "[")) else {}


@pytest.fixture(scope="module")
def checkov() -> str:
    binary = checkov_binary()
    if binary is None:
        pytest.skip("checkov is not installed: `python -m venv .venv-tools && .venv-tools/bin/pip install "
                    "checkov` (or set $CHECKOV)")
    return binary


def test_rendered_overlays_pass_checkov(checkov: str, rendered: dict[str, Rendered], tmp_path: Path) -> None:
    for overlay in OVERLAYS:
        (tmp_path / f"{overlay}.yaml").write_text(yaml.safe_dump_all(rendered[overlay].docs, sort_keys=False))
    report = _run(checkov, ["--directory", str(tmp_path), "--framework", "kubernetes"])
    assert _failed(report) == []
    summaries = report if isinstance(report, list) else [report]
    assert sum(s.get("summary", {}).get("passed", 0) for s in summaries if isinstance(s, dict)) > 100


def test_dockerfiles_pass_checkov(checkov: str) -> None:
    files = [str(REPO / "services" / s / "Dockerfile") for s in SERVICES]
    report = _run(checkov, [arg for f in files for arg in ("--file", f)] + ["--framework", "dockerfile"])
    assert _failed(report) == []
