"""The Dockerfiles build what the services are: every copied file exists and is in
the build context, the installed packages cover each service's dependencies, and
the entry point, exposed port and environment match the service's code."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from tests.deploy import service_code as code
from tests.deploy.manifests import REPO, SERVICES

PACKAGE_DIRS = [p.parent for p in REPO.glob("*/pyproject.toml")] + [p.parent for p in REPO.glob("*/*/pyproject.toml")]


def instructions(service: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, line continuations joined, comments dropped."""
    text = (REPO / "services" / service / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerignore_allows(path: str) -> bool:
    """Whether ``path`` (relative to the repository) is sent in the build context (last matching rule wins)."""
    allowed = True
    for rule in (REPO / ".dockerignore").read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pattern == "**" or any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace("**/", ""))
                                  for p in prefixes):
            allowed = negate
    return allowed


def project(directory: Path) -> dict:  # type: ignore[type-arg]
    return tomllib.loads((directory / "pyproject.toml").read_text())["project"]


def local_dependencies(directory: Path) -> set[Path]:
    """The repository's own packages that ``directory``'s package needs, transitively."""
    by_name = {project(d)["name"]: d for d in PACKAGE_DIRS}
    seen: set[Path] = set()
    todo = [directory]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for requirement in project(current).get("dependencies", []):
            name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
            if name in by_name:
                todo.append(by_name[name])
    return seen


@pytest.mark.parametrize("service", SERVICES)
def test_every_copied_file_exists_and_is_in_the_build_context(service: str) -> None:
    copies = [args for word, args in instructions(service) if word == "COPY" and "--from=" not in args]
    assert copies
    for args in copies:
        sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
        for source in sources:
            path = REPO / source
            assert path.exists(), f"{service}: COPY {source}: no such file in the repository"
            files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
            sent = [f for f in files if dockerignore_allows(str(f.relative_to(REPO)))]
            assert sent, f"{service}: COPY {source}: .dockerignore leaves it out of the build context"


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_installs_the_service_and_everything_it_needs(service: str) -> None:
    steps = instructions(service)
    copied = {Path(shlex.split(a)[-2].rstrip("/")) for w, a in steps if w == "COPY" and "--from=" not in a}
    installs = " ".join(a for w, a in steps if w == "RUN" and "pip install" in a)
    needed = local_dependencies(REPO / "services" / service)
    for directory in needed:
        relative = directory.relative_to(REPO)
        assert f"./{relative}" in installs.split(), f"{service}: {relative} is not pip-installed"
        assert any(relative == c or c.is_relative_to(relative) for c in copied), f"{service}: {relative} not copied"


@pytest.mark.parametrize("service", SERVICES)
def test_stubs_are_generated_at_build_time_for_every_proto(service: str) -> None:
    runs = " ".join(a for w, a in instructions(service) if w == "RUN")
    assert "grpc_tools.protoc" in runs
    for proto in (REPO / "protos").glob("switchboard/v1/*.proto"):
        assert str(proto.relative_to(REPO)) in runs.split(), f"{service}: {proto.name} is not compiled"


@pytest.mark.parametrize("service", SERVICES)
def test_entry_point_port_user_and_environment_match_the_service(service: str) -> None:
    steps = instructions(service)
    entry = next(a for w, a in steps if w == "ENTRYPOINT")
    scripts = project(REPO / "services" / service).get("scripts", {})
    assert scripts.get(f"switchboard-{service}") == f"switchboard_{service}.__main__:main"
    assert entry == f'["switchboard-{service}"]'
    user = next(a for w, a in reversed(steps) if w == "USER")
    assert user.split(":")[0] not in ("", "0", "root")
    froms = [a for w, a in steps if w == "FROM"]
    assert len(froms) == 2 and all("slim" in f for f in froms), "a slim build stage and a slim final stage"
    final = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM"):]
    assert not any(w == "RUN" and re.search(r"\b(apt-get|pip|gcc|build-essential)\b", a) for w, a in final), \
        "the final stage installs nothing"
    exposed = {int(p) for w, a in final if w == "EXPOSE" for p in a.split()}
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for w, a in final if w == "ENV")))
    known = code.env_names(service)
    for name in env:
        if name.startswith(code.env_prefix(service)):
            assert name in known, f"{service}: ENV {name} is not a setting"
    if code.is_grpc(service):
        port = code.grpc_port(service)
        assert code.port_of(env["SWITCHBOARD_GRPC_LISTEN"]) == port and port in exposed
        assert int(env["SWITCHBOARD_METRICS_PORT"]) in exposed
    else:
        port = int(str(code.default(service, "port")))
        assert int(env["SWITCHBOARD_PORT"]) == port and port in exposed


@pytest.mark.parametrize("service", SERVICES)
def test_every_base_image_is_pinned_by_digest(service: str) -> None:
    froms = [a.split()[0] for w, a in instructions(service) if w == "FROM"]
    for image in froms:
        assert re.fullmatch(r"[\w.\-/:]+@sha256:[0-9a-f]{64}", image), f"{service}: FROM {image} has no digest"
    assert len({f.split("@")[1] for f in froms}) == 1, "the build and run stages share one base"


@pytest.mark.parametrize("service", SERVICES)
def test_every_python_package_comes_from_a_hashed_lock(service: str) -> None:
    """Third-party packages only from ``--require-hashes`` locks; our own on top with ``--no-deps``."""
    installs = [a for w, a in instructions(service) if w == "RUN" and "pip install" in a]
    for run in installs:
        for command in run.split("&&"):
            if "pip install" not in command:
                continue
            words = command.split()
            if "-r" in words:
                lock = words[words.index("-r") + 1]
                assert "--require-hashes" in words and "--no-deps" in words, command
                assert lock in (f"requirements/{service}.lock", "requirements/protoc.lock"), command
                assert (REPO / lock).is_file()
            else:
                assert "--no-deps" in words and "--no-build-isolation" in words, command
