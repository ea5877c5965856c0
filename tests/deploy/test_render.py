"""Every overlay renders, validates against the Kubernetes schemas, and keeps the
production promises of the base: hardened pods, probes, limits, spread, budgets."""

from __future__ import annotations

import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.manifests import K8S, OVERLAYS, SERVICES, Rendered, render

#: The oldest Kubernetes minor the manifests are written for (native sleep preStop hooks).
KUBERNETES_VERSION = "1.33.0"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_the_kubernetes_schemas(rendered: dict[str, Rendered], overlay: str) -> None:
    docs = rendered[overlay].docs
    assert docs, f"{overlay} rendered nothing"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_committed(rendered: dict[str, Rendered], overlay: str) -> None:
    assert rendered[overlay].of_kind("Secret") == [], "Secrets are created by the operator, never rendered"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_hardened(rendered: dict[str, Rendered], overlay: str) -> None:
    for resource, pod in rendered[overlay].pod_specs():
        where = f"{overlay}: {resource['kind']}/{resource['metadata']['name']}"
        assert pod["automountServiceAccountToken"] is False, where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert sc.get("privileged", False) is False, where
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert {"cpu", "memory"} <= limits.keys() and {"cpu", "memory"} <= requests.keys(), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_have_probes_spread_and_a_graceful_stop(rendered: dict[str, Rendered], overlay: str) -> None:
    for service in SERVICES:
        pod = rendered[overlay].deployment(service)["spec"]["template"]["spec"]
        container = rendered[overlay].container(service)
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert probe in container, f"{overlay}/{service}: no {probe}"
        keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        assert container["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
        grace = float(next(e["value"] for e in container["env"] if e["name"] == "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS"))
        assert pod["terminationGracePeriodSeconds"] > grace + container["lifecycle"]["preStop"]["sleep"]["seconds"], \
            f"{overlay}/{service}: Kubernetes would kill the pod before its drain ends"


def test_prod_runs_several_replicas_with_budgets_and_autoscalers(rendered: dict[str, Rendered]) -> None:
    prod = rendered["prod"]
    for service in ("auth", "billing"):
        assert prod.deployment(service)["spec"]["replicas"] >= 2
        assert prod.get("PodDisruptionBudget", f"switchboard-{service}")["spec"]["maxUnavailable"] == 1
    for service in ("facade", "router"):
        assert "replicas" not in prod.deployment(service)["spec"], "the autoscaler owns the replica count"
        hpa = prod.get("HorizontalPodAutoscaler", f"switchboard-{service}")
        assert hpa["spec"]["scaleTargetRef"]["name"] == f"switchboard-{service}"
        assert hpa["spec"]["minReplicas"] >= 2
        pdb = prod.get("PodDisruptionBudget", f"switchboard-{service}")
        labels = prod.deployment(service)["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    job = prod.get("Job", "switchboard-migrate")
    assert {c["name"] for c in job["spec"]["template"]["spec"]["containers"]} == {"auth", "billing"}


def test_dev_runs_one_replica_each_and_in_cluster_datastores(rendered: dict[str, Rendered]) -> None:
    dev = rendered["dev"]
    for service in SERVICES:
        assert dev.deployment(service)["spec"]["replicas"] == 1
    assert dev.of_kind("HorizontalPodAutoscaler") == [] and dev.of_kind("PodDisruptionBudget") == []
    assert dev.get("StatefulSet", "switchboard-postgres") and dev.get("Deployment", "switchboard-redis")
    for service in SERVICES:
        image = dev.container(service)["image"]
        assert image == f"switchboard-{service}:dev", image


def test_ingress_streams_without_buffering(rendered: dict[str, Rendered]) -> None:
    ingress = rendered["prod"].get("Ingress", "switchboard")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert notes["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600


def _catalog_configmap_name(docs: list[dict]) -> str:  # type: ignore[type-arg]
    router = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "switchboard-router")
    volumes = router["spec"]["template"]["spec"]["volumes"]
    return next(v["configMap"]["name"] for v in volumes if "configMap" in v)


def test_a_catalog_change_rolls_the_router(tmp_path: Path, rendered: dict[str, Rendered]) -> None:
    """The router mounts the generated, content-hashed ConfigMap: new content, new name, new pods."""
    before = _catalog_configmap_name(rendered["prod"].docs)
    assert before.startswith("switchboard-models-") and rendered["prod"].get("ConfigMap", before)
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    catalog = copy / "base" / "config" / "switchboard.yaml"
    data = yaml.safe_load(catalog.read_text())
    data["router_settings"]["max_attempts"] = data["router_settings"].get("max_attempts", 3) + 1
    catalog.write_text(yaml.safe_dump(data))
    after = _catalog_configmap_name(render(copy / "overlays" / "prod"))
    assert after.startswith("switchboard-models-") and after != before
