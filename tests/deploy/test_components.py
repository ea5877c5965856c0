"""The optional components render on top of the prod overlay and stay consistent with the code."""

from __future__ import annotations

import shutil
from pathlib import Path

import kubernetes_validate

from switchboard_common import tracing
from tests.deploy.manifests import K8S, SERVICES, Rendered, env_of, render
from tests.deploy.test_render import KUBERNETES_VERSION


def render_with(component: str, tmp_path: Path) -> Rendered:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    overlay = copy / "overlays" / f"prod-{component}"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - ../prod\ncomponents:\n  - ../../components/{component}\n")
    return Rendered(f"prod+{component}", render(overlay))


def test_tracing_component_turns_tracing_on_everywhere(tmp_path: Path, rendered: dict[str, Rendered]) -> None:
    traced = render_with("tracing", tmp_path)
    for doc in traced.docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    for service in SERVICES:
        env = env_of(traced.container(service))
        assert env[tracing.ENDPOINT_ENV]["value"].startswith("http://")
        assert {n for n in env if n.startswith("OTEL_")} <= tracing.ENVIRONMENT
        assert tracing.ENDPOINT_ENV not in env_of(rendered["prod"].container(service)), "off unless the component"
    policy = traced.get("NetworkPolicy", "allow-otlp-export")
    endpoint_port = int(env_of(traced.container("router"))[tracing.ENDPOINT_ENV]["value"].rsplit(":", 1)[1])
    assert policy["spec"]["egress"][0]["ports"][0]["port"] == endpoint_port
