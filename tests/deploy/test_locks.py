"""The dependency locks (requirements/*.lock) pin everything with hashes and cover what is declared.

Each ``requirements/<name>.in`` says what its lock installs: our packages (``-e ./path``, whose
pyproject.toml dependencies count, recursively), other ``.in`` or requirement files (``-r``), and plain
requirements. Every declared third-party requirement must be pinned in the lock at a version its specifier
allows, so a dependency added to a pyproject.toml without ``make lock`` fails here rather than at install time.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.manifests import REPO

LOCKS = sorted((REPO / "requirements").glob("*.lock"))
#: What the markers of a lock are evaluated for: the Python and platform of the images and of CI.
ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.7", "sys_platform": "linux",
               "platform_system": "Linux", "implementation_name": "cpython", "platform_machine": "x86_64",
               "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def pins(lock: Path) -> dict[str, str]:
    """Package → version of every requirement line; each must carry sha256 hashes."""
    found: dict[str, str] = {}
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text())
    for entry in entries:
        first = entry.splitlines()[0]
        if first.startswith("#") or not first.strip():
            continue
        match = _PIN.match(first)
        assert match, f"{lock.name}: not an exact pin: {first}"
        assert "--hash=sha256:" in entry, f"{lock.name}: {first} has no hash"
        found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def ours() -> dict[str, Path]:
    return {canonicalize_name(tomllib.loads(p.read_text())["project"]["name"]): p.parent
            for p in [*REPO.glob("*/pyproject.toml"), *REPO.glob("*/*/pyproject.toml")]}


def declared(source: Path) -> list[Requirement]:
    """The third-party requirements an ``.in`` (or requirements) file brings in, transitively through ours."""
    local = ours()
    requirements: list[Requirement] = []
    todo: list[tuple[str, Path]] = [("file", source)]
    seen: set[Path] = set()
    while todo:
        kind, path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if kind == "project":
            for text in tomllib.loads((path / "pyproject.toml").read_text())["project"].get("dependencies", []):
                requirement = Requirement(text)
                name = canonicalize_name(requirement.name)
                todo.append(("project", local[name])) if name in local else requirements.append(requirement)
            continue
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("-e "):
                todo.append(("project", (REPO / line[3:].strip()).resolve()))
            elif line.startswith("-r "):
                todo.append(("file", (path.parent / line[3:].strip()).resolve()))
            elif line:
                requirements.append(Requirement(line))
    return requirements


@pytest.mark.parametrize("lock", LOCKS, ids=[p.name for p in LOCKS])
def test_every_lock_pins_what_its_input_declares(lock: Path) -> None:
    pinned = pins(lock)
    source = lock.with_suffix(".in")
    assert source.is_file(), f"{lock.name} has no {source.name}"
    for requirement in declared(source):
        if requirement.marker is not None and not requirement.marker.evaluate(ENVIRONMENT):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{lock.name}: {requirement} is declared but not locked: run `make lock`"
        assert requirement.specifier.contains(pinned[name], prereleases=True), \
            f"{lock.name}: {name}=={pinned[name]} does not satisfy {requirement}: run `make lock`"


def test_a_package_has_one_version_in_every_lock_of_the_gateway() -> None:
    versions: dict[str, dict[str, str]] = {}
    for lock in LOCKS:
        if lock.name == "tools.lock":  # the manifest checkers' own venv (checkov pins an older botocore)
            continue
        for name, version in pins(lock).items():
            versions.setdefault(name, {})[lock.name] = version
    split = {name: where for name, where in versions.items() if len(set(where.values())) > 1}
    assert not split, f"packages locked at different versions: {split}"


def test_make_installs_from_the_locks() -> None:
    makefile = (REPO / "Makefile").read_text()
    for lock in ("gateway", "test", "tools"):
        assert re.search(rf"install --require-hashes --no-deps -r requirements/{lock}\.lock", makefile), lock
    installs = [line for line in makefile.splitlines() if "pip install" in line and "--require-hashes" not in line]
    assert all("--no-deps" in line for line in installs if "-e ./" in line or "$(foreach" in line), installs


def _module_imports(path: Path) -> set[str]:
    """Full names of the modules one file imports (``from a.b import c`` counts ``a.b`` and ``a.b.c``)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def third_party_imports(service: str) -> set[str]:
    """Top-level third-party modules reachable from the service's package through the modules it imports
    of our libraries (a library module the service never imports does not count)."""
    import sys

    roots = {p.name: p for d in ours().values() for p in d.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    roots["switchboard"] = REPO / "protos" / "gen" / "switchboard"

    def file_of(module: str) -> Path | None:
        head, *rest = module.split(".")
        if head not in roots:
            return None
        base = roots[head].joinpath(*rest)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    todo = list((roots[f"switchboard_{service}"]).rglob("*.py"))
    seen: set[Path] = set()
    found: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _module_imports(path):
            head = module.split(".")[0]
            if head in roots:
                target = file_of(module)
                if target is not None:
                    todo.append(target)
            elif head not in sys.stdlib_module_names and head != "__future__":
                found.add(head)
    return found


@pytest.mark.parametrize("service", ["auth", "billing", "router", "facade"])
def test_every_module_a_service_imports_is_in_its_image_lock(service: str) -> None:
    """What the image installs (requirements/<service>.lock) provides every third-party module its code
    imports, through its libraries too: a missing declaration fails here, not in a cluster."""
    import importlib.metadata

    lock = pins(REPO / "requirements" / f"{service}.lock")
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for module in sorted(third_party_imports(service)):
        providers = {canonicalize_name(d) for d in distributions.get(module, [])}
        if not providers & lock.keys():
            missing.append(f"{module} (from {sorted(providers) or 'no installed distribution'})")
    assert not missing, f"{service}: imported but not in requirements/{service}.lock: {missing}"
