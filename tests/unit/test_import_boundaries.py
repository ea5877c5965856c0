"""One owner per protocol: a service's generated stubs are imported only by that service (its server and the
client package it ships); everything else — the other services, the shared libraries — goes through the client
package. A service never imports another service's internals either, only its ``client``.

Read from the source with ``ast`` (imports under ``TYPE_CHECKING`` included), so a forbidden import fails this
test before it ever runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("auth", "billing", "router", "facade")
#: Generated modules every package may use: the shared message types (Error, Usage).
SHARED_STUBS = {"common_pb2"}


def packages() -> Iterator[tuple[str, Path]]:
    """(owner, source file) of every module of the services and the shared libraries."""
    for service in SERVICES:
        for path in sorted((ROOT / "services" / service / f"switchboard_{service}").rglob("*.py")):
            yield service, path
    for lib in sorted((ROOT / "libs").iterdir()):
        for path in sorted(lib.rglob("switchboard_*/**/*.py")):
            yield f"lib:{lib.name}", path


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every module a file imports, ``from X import y`` giving ``X.y`` too."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def violations(files: Iterable[tuple[str, Path]] | None = None, root: Path = ROOT) -> list[str]:
    found = []
    for owner, path in packages() if files is None else files:
        where = path.relative_to(root)
        for line, name in imported_modules(path):
            parts = name.split(".")
            if parts[:2] == ["switchboard", "v1"] and len(parts) > 2:
                stub = parts[2]
                if stub in SHARED_STUBS:
                    continue
                service = stub.removesuffix("_pb2_grpc").removesuffix("_pb2")
                if service in SERVICES and service != owner:
                    found.append(f"{where}:{line} imports {name}: use switchboard_{service}.client instead")
            elif parts[0].startswith("switchboard_") and parts[0] != f"switchboard_{owner}":
                service = parts[0].removeprefix("switchboard_")
                if service in SERVICES and (len(parts) < 2 or parts[1] != "client"):
                    found.append(f"{where}:{line} imports {name}: only switchboard_{service}.client is public")
    return found


def test_every_package_reaches_another_service_only_through_its_client() -> None:
    assert violations() == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from switchboard.v1 import auth_pb2\n"
                      "from switchboard_billing.budgets import Budgets\n")
    assert {name for _, name in imported_modules(sample)} == {
        "typing", "typing.TYPE_CHECKING", "switchboard.v1", "switchboard.v1.auth_pb2", "switchboard_billing.budgets",
        "switchboard_billing.budgets.Budgets"}
    found = " ".join(violations([("router", sample)], tmp_path))
    assert "sample.py:3 imports switchboard.v1.auth_pb2" in found and "sample.py:4 imports switchboard_billing" in found
    allowed = tmp_path / "allowed.py"
    allowed.write_text("from switchboard.v1 import common_pb2, router_pb2\n"
                       "from switchboard_billing.client import Hold\n")
    assert violations([("router", allowed)], tmp_path) == []


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_modules_to_check(service: str) -> None:
    assert any(owner == service for owner, _ in packages())
